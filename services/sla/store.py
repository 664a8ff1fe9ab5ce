"""SLA's MongoDB collections: ``tickets`` (state and clocks) and ``escalations`` (outbox)."""

from collections.abc import Sequence
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document, insert_new

TICKETS = "tickets"
ESCALATIONS = "escalations"


class TicketStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.tickets = db[TICKETS]
        self.escalations = db[ESCALATIONS]

    async def ensure_indexes(self) -> None:
        # The scheduler only ever asks "what is due now?": this index answers it without a scan.
        await self.tickets.create_index([("next_check_at", ASCENDING)])
        await self.tickets.create_index([("agency", ASCENDING), ("status", ASCENDING)])
        await self.escalations.create_index([("ticket_id", ASCENDING)])

    async def add_new(self, tickets: Sequence[Document]) -> int:
        """Store tickets not stored yet (by ticket id); redelivered ones change nothing."""
        return await insert_new(self.tickets, tickets)

    async def get(self, ticket_id: str) -> Document | None:
        return await self.tickets.find_one({"_id": ticket_id})

    async def due(self, now: datetime, limit: int) -> list[Document]:
        cursor = self.tickets.find({"next_check_at": {"$lte": now}}).sort("next_check_at", 1)
        return await cursor.limit(limit).to_list(None)

    async def save_if_unchanged(self, ticket: Document, version: int) -> bool:
        """Write the ticket only if nobody wrote it since ``version`` was read."""
        fields = {k: v for k, v in ticket.items() if k not in ("_id", "version")}
        result = await self.tickets.update_one(
            {"_id": ticket["_id"], "version": version},
            {"$set": {**fields, "version": version + 1}},
        )
        return result.modified_count == 1

    async def claim(self, escalations: Sequence[Document], owner: str) -> list[Document]:
        """Store escalations by their unique id; return the ones this owner stored (and so
        must publish). A replica that loses the race gets none of them back."""
        if not escalations:
            return []
        await insert_new(self.escalations, escalations)
        ids = [e["_id"] for e in escalations]
        return await self.escalations.find(
            {"_id": {"$in": ids}, "published": False, "lease_owner": owner}).to_list(None)
