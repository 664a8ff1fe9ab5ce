"""What every store of things to send (or submit) again and again repeats: chat's messages and
drafts, the mailbox's mails both ways, notify's deliveries. Each document carries
``due_epoch`` (when it is next tried; None once finished) and ``version`` (each write is
whole, guarded by the version it read); each service keeps its own base, ceiling and number
of attempts in the settings."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from shared.mongo import Document


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
