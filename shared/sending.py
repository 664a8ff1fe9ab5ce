"""What every store of things to send (or submit) again and again repeats: chat's messages and
drafts, the mailbox's mails both ways, notify's deliveries. Each document carries
``due_epoch`` (when it is next tried; None once finished) and ``version`` (each write is
whole, guarded by the version it read); each service keeps its own base, ceiling and number
of attempts in the settings."""

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from shared.contracts import utc_now
from shared.mongo import Document

log = logging.getLogger(__name__)


def retry_delay(attempts: int, *, base: float, ceiling: float) -> float:
    """Seconds to wait after the ``attempts``-th failure: base, 2 base, 4 base... at most
    ``ceiling``."""
    return float(min(ceiling, base * 2 ** max(0, attempts - 1)))


Sent = Literal["sent", "retrying", "failed"]


@dataclass(frozen=True)
class Outcome:
    status: Sent
    due_epoch: float | None  # when to try again; None once sent or given up
    last_error: str | None


def after_attempt(attempts: int, error: str | None, now_epoch: float, *, max_attempts: int,
                  base: float, ceiling: float) -> Outcome:
    """The document after its ``attempts``-th attempt (``error`` None: it was sent): tried
    again after the backoff, or given up after ``max_attempts``."""
    if error is None:
        return Outcome("sent", None, None)
    if attempts >= max_attempts:
        return Outcome("failed", None, error)
    return Outcome("retrying", now_epoch + retry_delay(attempts, base=base, ceiling=ceiling), error)


async def due_documents(collection: AsyncCollection[Document], now_epoch: float,
                        limit: int) -> list[Document]:
    """Up to ``limit`` documents due by ``now_epoch``, the earliest first."""
    # Walk the index in order and keep the due ones: NX-27017 scans for a range condition.
    first = await collection.find({"due_epoch": {"$ne": None}}).sort(
        "due_epoch", ASCENDING).limit(limit).to_list(None)
    return [d for d in first if d["due_epoch"] <= now_epoch]


async def replace_if_version(collection: AsyncCollection[Document], doc: Mapping[str, Any],
                             read_version: int) -> bool:
    """Write ``doc`` whole if nobody changed it since ``read_version``; its version in the
    store is then ``read_version + 1``."""
    result = await collection.replace_one({"_id": doc["_id"], "version": read_version},
                                          {**doc, "version": read_version + 1})
    return result.modified_count == 1


@dataclass(frozen=True)
class Backoff:
    base: float  # seconds before the second attempt, doubled each time
    ceiling: float  # the longest wait
    max_attempts: int  # then given up ("failed")


Send = Callable[[Document], Awaitable[str | None]]  # None: sent; else what failed (no address)
ERROR_MAX = 300  # characters of a failure kept in the document


class SendLoop:
    """Messages stored before they are sent (``due_epoch`` now), sent by this loop: each turn
    leases the due ones (due again only at the lease's end, so a sender that died leaves them
    to the next turn then; another sender's lease makes the claim fail), sends each through
    ``send``, and writes it back sent, to retry after the backoff, or failed for good.
    ``describe`` names one in the log (its id; never an address)."""

    def __init__(self, collection: AsyncCollection[Document], send: Send, backoff: Backoff, *,
                 lease_seconds: float, batch: int, describe: Callable[[Document], str]) -> None:
        self.collection, self.send, self.backoff = collection, send, backoff
        self.lease_seconds, self.batch, self.describe = lease_seconds, batch, describe

    async def send_due(self) -> int:
        now = utc_now()
        due = await due_documents(self.collection, now.timestamp(), self.batch)
        for found in due:
            claimed = {**found, "due_epoch": now.timestamp() + self.lease_seconds}
            if await replace_if_version(self.collection, claimed, found["version"]):
                await self._attempt({**claimed, "version": found["version"] + 1})
        return len(due)

    async def _attempt(self, doc: Document) -> None:
        error = await self.send(doc)
        attempts = doc["attempts"] + 1
        now = utc_now()
        b = self.backoff
        outcome = after_attempt(attempts, None if error is None else error[:ERROR_MAX],
                                now.timestamp(), max_attempts=b.max_attempts, base=b.base,
                                ceiling=b.ceiling)
        await replace_if_version(self.collection, {
            **doc, "status": outcome.status, "attempts": attempts, "due_epoch": outcome.due_epoch,
            "last_error": outcome.last_error, "sent_at": now if error is None else None},
            doc["version"])
        what = self.describe(doc)
        if outcome.status == "sent":
            log.info("%s sent", what)
        elif outcome.status == "failed":
            log.error("%s given up after %d attempts: %s", what, attempts, error)
        else:
            log.warning("%s: attempt %d failed, again in %.0f s: %s", what, attempts,
                        (outcome.due_epoch or 0) - now.timestamp(), error)
