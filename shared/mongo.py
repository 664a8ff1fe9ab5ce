"""MongoDB adapter: one async client per process, duplicate-tolerant bulk inserts."""

from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.settings import Settings

Document = dict[str, Any]
DUPLICATE_KEY = 11000


def connect(settings: Settings) -> AsyncMongoClient[Document]:
    # tz_aware: instants come back as UTC-aware datetimes, never naive local times.
    return AsyncMongoClient(settings.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=10_000)


def database(client: AsyncMongoClient[Document], settings: Settings) -> AsyncDatabase[Document]:
    return client[settings.mongodb_database]


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
