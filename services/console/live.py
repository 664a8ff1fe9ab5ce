"""Live pages over server-sent events: a page's fragments are sent again whenever what they
show changed. Each stream reads through the APIs with the person's own token (so every
fragment stays behind the permission table) every few seconds, and sends only when the
rendered fragments differ: time alone turns a light from green to red, so the rendering, not
the data, is what is compared."""

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import Request

from services.console.flows import SignedOut
from shared.contracts import utc_now

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[dict[str, Any] | None]]
Render = Callable[[dict[str, Any], datetime], dict[str, str]]  # event name -> HTML


async def live_events(request: Request, fetch: Fetch, render: Render,
                      every: float) -> AsyncIterator[dict[str, str]]:
    last = ""
    while not await request.is_disconnected():
        try:
            found = await fetch()
        except SignedOut:
            yield {"event": "signed-out", "data": "1"}
            return
        except Exception as error:  # an API restarting: keep the page as it is, try again
            log.info("live page: %s", type(error).__name__)
            found = None
        if found is not None:
            fragments = render(found, utc_now())
            digest = hashlib.sha256(repr(sorted(fragments.items())).encode()).hexdigest()
            if digest != last:
                last = digest
                for event, html in fragments.items():
                    yield {"event": event, "data": html}
        await asyncio.sleep(every)
