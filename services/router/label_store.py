"""The router's own collection of labelled examples (labels.py): inserted by event id, so a
redelivered reroute request records nothing twice. No other service reads or writes it."""

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.router.labels import LabelDoc
from shared.mongo import Document, insert_new

LABELS = "routing_labels"


class LabelStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.labels: AsyncCollection[Document] = db[LABELS]

    async def ensure_indexes(self) -> None:
        await self.labels.create_index([("tenant", ASCENDING), ("corrected_at", ASCENDING)])

    async def record(self, docs: Sequence[LabelDoc]) -> int:
        """Store the examples not stored yet; returns how many were new."""
        return await insert_new(self.labels, [cast(Document, dict(doc)) for doc in docs])

    async def examples(self, tenant: str, *, since: datetime | None = None) -> list[LabelDoc]:
        where: Document = {"tenant": tenant}
        if since is not None:
            where["corrected_at"] = {"$gte": since}
        found = self.labels.find(where).sort([("corrected_at", ASCENDING), ("_id", ASCENDING)])
        return [cast(LabelDoc, doc) async for doc in found]

    async def count(self, tenant: str) -> int:
        return await self.labels.count_documents({"tenant": tenant})
