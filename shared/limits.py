"""Abuse limits for every service's HTTP side: a request body limit (ASGI middleware) and
rate limits per address and per API key (the `limits` package, in memory).

Install once per app with ``install_abuse_limits(app, settings)``; protect an endpoint with
``dependencies=[Depends(rate_limit("rate_limit_submit", per_key="rate_limit_submit_per_key"))]``,
naming the settings fields that hold the limits. Limits are kept per process: with several
replicas behind a balancer, each allows the configured rate.
"""

import hashlib
import math
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request, status
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings import Settings

API_KEY_HEADER = "X-API-Key"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE,
                         f"request body larger than {limit} bytes")


# A refused body up to this size is read and dropped before the 413 is sent: a server that
# answers and closes while the client is still sending makes the client's kernel see a reset,
# so a citizen's too-large photo would show "connection lost" instead of "file too large".
# Bodies declared larger are refused unread (the connection closes; reading them would let one
# caller make the server swallow gigabytes).
DRAINED_AT_MOST = 8 * 1024 * 1024


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class BodyLimit:
    """Refuses a body over ``max_bytes`` with 413: at once when Content-Length says so, else
    as soon as the streamed bytes pass the limit, so a huge body is never read in full."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 uploads: tuple[Callable[[str, str], bool], int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads  # (method, path) -> is an upload; an upload's larger limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.uploads is not None and self.uploads[0](scope["method"], scope["path"]):
            await BodyLimit(self.app, self.uploads[1])(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            if declared.isdigit() and int(declared) <= DRAINED_AT_MOST:
                await _drain(receive)
            await self._refuse(scope, send, declared.isdigit())
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPException from body reading: the app answers 413.
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, send: Send, too_large: bool) -> None:
        response = (JSONResponse({"detail": f"request body larger than {self.max_bytes} bytes"},
                                 status_code=status.HTTP_413_CONTENT_TOO_LARGE,
                                 headers={"Connection": "close"})
                    if too_large else
                    JSONResponse({"detail": "invalid Content-Length"},
                                 status_code=status.HTTP_400_BAD_REQUEST,
                                 headers={"Connection": "close"}))

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, nothing, send)


class RateLimits:
    """Moving-window counters in memory, one per (limit, scope, identity)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def _item(self, field: str) -> RateLimitItem:
        text = getattr(self.settings, field)
        assert isinstance(text, str), f"settings.{field} is not a rate limit"
        return parse(text)

    def hit(self, field: str, *identity: str) -> float | None:
        """Count one event; None when within the limit, else seconds until one is allowed."""
        if not self.settings.rate_limits_enabled:
            return None
        item = self._item(field)
        if self.limiter.hit(item, field, *identity):
            return None
        return self.retry_after(field, *identity)

    def exhausted(self, field: str, *identity: str) -> float | None:
        """Seconds to wait when the limit is used up, without counting an event."""
        if not self.settings.rate_limits_enabled:
            return None
        item = self._item(field)
        return None if self.limiter.test(item, field, *identity) else self.retry_after(field, *identity)

    def retry_after(self, field: str, *identity: str) -> float:
        stats = self.limiter.get_window_stats(self._item(field), field, *identity)
        return max(1.0, stats.reset_time - time.time())


def too_many(seconds: float, what: str = "too many requests") -> HTTPException:
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, f"{what}: try again later",
                         headers={"Retry-After": str(math.ceil(seconds))})


def limits_of(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def client_address(request: Request) -> str:
    # Behind a reverse proxy, run uvicorn with --proxy-headers and --forwarded-allow-ips so
    # that this is the citizen's address, not the proxy's.
    return request.client.host if request.client else "unknown"


def _key_identity(key: str) -> str:
    # Counters are keyed by a hash: the limiter never holds a usable key.
    return hashlib.sha256(key.encode(errors="replace")).hexdigest()[:32]


def rate_limit(per_address: str, *, per_key: str | None = None
               ) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency: 429 with Retry-After past the settings' limit ``per_address``
    for the caller's address (trusted addresses exempt) and, when the request carries an
    X-API-Key, past ``per_key`` for that key. Both are settings field names."""

    async def check(request: Request) -> None:
        limits = limits_of(request)
        address = client_address(request)
        waits = []
        if address not in limits.settings.trusted_addresses:
            waits.append(limits.hit(per_address, "address", address))
        key = request.headers.get(API_KEY_HEADER)
        if per_key is not None and key:
            waits.append(limits.hit(per_key, "key", _key_identity(key)))
        longest = max((w for w in waits if w is not None), default=None)
        if longest is not None:
            raise too_many(longest)

    return check


def install_abuse_limits(app: FastAPI, settings: Settings, *,
                         uploads: Callable[[str, str], bool] | None = None) -> None:
    """The body limit on every request, and the counters ``rate_limit`` dependencies use.
    Requests ``uploads(method, path)`` names carry files: theirs is the attachment size (and
    room for the form around it)."""
    app.state.rate_limits = RateLimits(settings)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       uploads=None if uploads is None else
                       (uploads, settings.attachment_max_bytes + settings.max_body_bytes))
