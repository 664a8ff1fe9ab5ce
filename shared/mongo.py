"""MongoDB adapter: one async client per process, duplicate-tolerant bulk inserts."""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.credentials import mongo_client_options
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.metrics import Metrics

Document = dict[str, Any]
DUPLICATE_KEY = 11000


def connect(settings: Settings, *, metrics: "Metrics | None" = None) -> AsyncMongoClient[Document]:
    # tz_aware: instants come back as UTC-aware datetimes, never naive local times.
    # Short selection and connect timeouts: with the store down a request fails within a
    # second (503 to the client) instead of holding the caller for the driver's 30 s default.
    return AsyncMongoClient(settings.mongodb_url, tz_aware=True,
                            serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
                            connectTimeoutMS=settings.mongodb_timeout_ms,
                            socketTimeoutMS=settings.mongodb_socket_timeout_ms,
                            # Each command's round trip, for the service's metrics.
                            event_listeners=[metrics.store_listener()] if metrics else [],
                            **mongo_client_options(settings))


async def wait_until_reachable(db: AsyncDatabase[Document], *, within: float = 60.0) -> None:
    """At start-up the store may still be coming up: keep pinging it (the short timeouts of
    ``connect`` would otherwise fail the first index creation at once)."""
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(within), wait=wait_exponential(0.2, max=3),
        retry=retry_if_exception_type(ConnectionFailure), reraise=True,
    ):
        with attempt:
            await db.command("ping")


def database(client: AsyncMongoClient[Document], settings: Settings) -> AsyncDatabase[Document]:
    return client[settings.mongodb_database]


async def insert_new_or_taken(collection: AsyncCollection[Document],
                              docs: Sequence[Document]) -> set[int]:
    """Insert the documents (unordered, one round trip); returns the positions of those refused
    because a unique key (``_id`` or another unique index) was taken. Other errors are raised."""
    if not docs:
        return set()
    try:
        await collection.insert_many(list(docs), ordered=False)
    except BulkWriteError as error:
        errors = error.details["writeErrors"]
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {int(e["index"]) for e in errors}
    return set()


def as_stored(doc: Document) -> Document:
    """The document as the store would give it back: BSON dates hold milliseconds, so the
    top-level datetimes are cut to them (what a caller skipping the read-back sees is what
    one reading it later sees)."""
    return {k: v.replace(microsecond=v.microsecond // 1000 * 1000) if isinstance(v, datetime) else v
            for k, v in doc.items()}


async def insert_new(collection: AsyncCollection[Document], docs: Sequence[Document]) -> int:
    """Insert the documents whose ``_id`` is new; existing ones are left as they are.

    Returns how many were inserted. Errors other than duplicate keys are raised.
    """
    if not docs:
        return 0
    try:
        result = await collection.insert_many(list(docs), ordered=False)
        return len(result.inserted_ids)
    except BulkWriteError as error:
        others = [e for e in error.details["writeErrors"] if e.get("code") != DUPLICATE_KEY]
        if others:
            raise
        return int(error.details.get("nInserted", 0))
