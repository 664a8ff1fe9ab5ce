"""The notification service's own collections: deliveries (one per notice and contact), the
tickets' priorities and the citizens' addresses it learnt from events, and the escalation
steps acknowledged. It reads no other service's collections.

Deliveries are inserted by id (a repeat of the same notice inserts nothing) and written whole
afterwards, each write guarded by the version it read, so two senders (or a sender and an
acknowledgement) never both win."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict, cast

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.notify.domain import CitizenContact, DeliveryDoc, Status
from shared.mongo import Document, insert_new
from shared.sending import due_documents, replace_if_version

DELIVERIES = "notify_deliveries"


class AckDoc(TypedDict):
    _id: str  # the step
    tenant: str
    acknowledged_at: datetime


@dataclass(frozen=True)
class DeliveryFilter:
    tenant: str
    status: Status | None = None
    agency: str | None = None
    kind: str | None = None

    def query(self) -> Document:
        where: Document = {"tenant": self.tenant}
        for name in ("status", "agency", "kind"):
            value = getattr(self, name)
            if value is not None:
                where[name] = value
        return where


def _key(tenant: str, ticket_id: str) -> str:
    return f"{tenant}:{ticket_id}"


class NotifyStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.deliveries: AsyncCollection[Document] = db[DELIVERIES]
        self.tickets: AsyncCollection[Document] = db["notify_tickets"]
        self.citizens: AsyncCollection[Document] = db["notify_citizens"]
        self.acks: AsyncCollection[Document] = db["notify_acks"]

    async def ensure_indexes(self) -> None:
        await self.deliveries.create_index([("due_epoch", ASCENDING)])
        await self.deliveries.create_index([("step", ASCENDING)])
        await self.deliveries.create_index([("tenant", ASCENDING), ("status", ASCENDING),
                                            ("created_at", DESCENDING)])

    # --- what the events taught ----------------------------------------------------------

    async def note_priority(self, tenant: str, ticket_id: str, priority: str) -> None:
        await self.tickets.update_one({"_id": _key(tenant, ticket_id)},
                                      {"$set": {"priority": priority}}, upsert=True)

    async def priority(self, tenant: str, ticket_id: str) -> str | None:
        found = await self.tickets.find_one({"_id": _key(tenant, ticket_id)})
        return None if found is None else cast(str | None, found.get("priority"))

    async def note_citizen(self, tenant: str, ticket_id: str, contact: CitizenContact) -> None:
        await self.citizens.update_one({"_id": _key(tenant, ticket_id)},
                                       {"$set": {"email": contact.email, "sms": contact.sms}},
                                       upsert=True)

    async def citizen(self, tenant: str, ticket_id: str) -> CitizenContact | None:
        found = await self.citizens.find_one({"_id": _key(tenant, ticket_id)})
        if found is None:
            return None
        return CitizenContact(email=found.get("email"), sms=found.get("sms"))

    async def acknowledge(self, acks: Sequence[AckDoc]) -> None:
        await insert_new(self.acks, [dict(a) for a in acks])

    async def acknowledged(self, steps: Sequence[str]) -> set[str]:
        if not steps:
            return set()
        found = await self.acks.find({"_id": {"$in": sorted(set(steps))}}).to_list(None)
        return {str(a["_id"]) for a in found}

    # --- deliveries ------------------------------------------------------------------------

    async def add(self, deliveries: Sequence[DeliveryDoc]) -> int:
        """Insert the deliveries not stored yet; returns how many were new."""
        return await insert_new(self.deliveries, [dict(d) for d in deliveries])

    async def claim_due(self, now_epoch: float, *, limit: int, token: str,
                        lease_seconds: float) -> list[DeliveryDoc]:
        """Lease up to ``limit`` due deliveries to ``token``: while leased they are due only
        at the lease's end (so a sender that died leaves them to another then)."""
        due = await due_documents(self.deliveries, now_epoch, limit)
        if not due:
            return []
        lease_end = now_epoch + lease_seconds
        await self.deliveries.bulk_write([
            ReplaceOne({"_id": d["_id"], "version": d["version"]},
                       {**d, "due_epoch": lease_end, "lease_epoch": lease_end, "lease_owner": token,
                        "version": d["version"] + 1}) for d in due], ordered=False)
        held = await self.deliveries.find({"_id": {"$in": [d["_id"] for d in due]},
                                           "lease_owner": token}).to_list(None)
        return [cast(DeliveryDoc, d) for d in held]

    async def save(self, delivery: DeliveryDoc, *, read_version: int) -> bool:
        """Write the delivery whole if nobody changed it since ``read_version``."""
        return await replace_if_version(self.deliveries, delivery, read_version)

    async def open_of_step(self, step: str) -> list[DeliveryDoc]:
        found = await self.deliveries.find({"step": step, "due_epoch": {"$ne": None}}).to_list(None)
        return [cast(DeliveryDoc, d) for d in found]

    async def page(self, where: DeliveryFilter, *, offset: int,
                   limit: int) -> tuple[list[DeliveryDoc], bool]:
        found = await self.deliveries.find(where.query()).sort(
            [("created_at", DESCENDING), ("_id", ASCENDING)]).skip(offset).limit(
            limit + 1).to_list(None)
        return [cast(DeliveryDoc, d) for d in found[:limit]], len(found) > limit
