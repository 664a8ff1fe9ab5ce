"""Intake's MongoDB collections: ``complaints``, each accepted complaint with its outbox event
and ``ticketed_at``, set when the SLA service announces the complaint's ticket (null until
then: the reconciliation walks the null ones, oldest first); ``replies``, citizens' answers
with their outbox event and ``settled_at``, set when the SLA service announces it applied (or
refused) the reply; ``tracking``, intake's own copy of each ticket's public state, fed by
``ticket.changed`` (never the SLA service's collections)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.intake.domain import Withheld
from shared.contracts import (
    Complaint,
    Envelope,
    EventType,
    TicketChanged,
    TicketUpdate,
    Topics,
    derived_event_id,
    envelope,
    utc_now,
)
from shared.mongo import DUPLICATE_KEY, Document, as_stored, insert_new, insert_new_or_taken
from shared.outbox import outbox_fields
from shared.settings import Settings

COMPLAINTS = "complaints"
REPLIES = "replies"  # citizens' answers to needs_info, each with its outbox event
TRACKING = "tracking"  # the public state of tickets, as the SLA service announces it


@dataclass(frozen=True)
class Accepted:
    """A complaint to store under an idempotency key (a fresh random key when it has none)."""

    key: str
    complaint: Complaint  # as published: masked, without reporter, when identity is hidden
    fingerprint: str
    extra: Document = field(default_factory=dict)  # stored beside it, e.g. who submitted it
    withheld: Withheld | None = None
    tracking_code_hash: str | None = None
    tenant: str = ""  # whose complaint; "" only in tests that store for the home tenant


class ComplaintStore:
    def __init__(self, db: AsyncDatabase[Document], settings: Settings) -> None:
        self.collection = db[COMPLAINTS]
        self.settings = settings

    async def _indexes(self) -> None:
        await self.collection.create_index([("ticket_id", ASCENDING)], unique=True)
        # "Which complaints still wait for a ticket, oldest first?": an equality and a sort,
        # answered from this index without a scan however many complaints are ticketed.
        await self.collection.create_index([("ticketed_at", ASCENDING), ("submitted_at", ASCENDING)])
        # Open311: a request by its token, and a tenant's requests by date.
        await self.collection.create_index([("open311.token", ASCENDING)])
        await self.collection.create_index([("tenant", ASCENDING), ("submitted_at", DESCENDING)])

    async def ensure_indexes(self) -> None:
        await self._indexes()
        # Complaints stored before tenants were recorded are the home tenant's.
        await self.collection.update_many({"tenant": {"$exists": False}},
                                          {"$set": {"tenant": self.settings.tenant}})

    def _document(self, item: Accepted) -> Document:
        complaint = item.complaint
        tenant = item.tenant or self.settings.tenant
        event = envelope(complaint, type=EventType.COMPLAINT_RECEIVED, tenant=tenant,
                         ticket_id=complaint.ticket_id,
                         event_id=derived_event_id("received", complaint.ticket_id))
        now = utc_now()
        return {
            "_id": item.key, "ticket_id": complaint.ticket_id, "tenant": tenant,
            "fingerprint": item.fingerprint,
            "submitted_at": complaint.submitted_at, "created_at": now, "ticketed_at": None,
            "withheld": item.withheld,
            "tracking_codes": [item.tracking_code_hash] if item.tracking_code_hash else [],
            **item.extra,
            **outbox_fields(Topics.RECEIVED, event, lease_seconds=self.settings.outbox_lease_seconds,
                            owner=self.settings.instance_id, now=now),
        }

    async def save(self, items: Sequence[Accepted],
                   reissue: Callable[[Accepted], Accepted]) -> dict[str, Document]:
        """Store new complaints; return the stored document of every key, new or earlier.

        A tracking number that collides with an existing one is reissued and stored again.
        """
        stored: dict[str, Document] = {}
        pending = list(items)
        for _ in range(5):
            docs = [self._document(i) for i in pending]
            # One round trip when every key is new: what was inserted is what is stored.
            taken = await insert_new_or_taken(self.collection, docs)
            for index, doc in enumerate(docs):
                if index not in taken:
                    stored[doc["_id"]] = {**as_stored(doc), "duplicate": False}
            refused = [pending[index] for index in sorted(taken)]
            if refused:
                await self._read_back(refused, stored)
            pending = [reissue(i) for i in refused if i.key not in stored]
            if not pending:
                return stored
        raise RuntimeError("could not allocate unique tracking numbers")

    async def _read_back(self, refused: Sequence[Accepted], stored: dict[str, Document]) -> None:
        """The earlier documents of keys seen before; a key not found collided on its tracking
        number only (it is reissued)."""
        found = await self.collection.find({"_id": {"$in": [i.key for i in refused]}}).to_list(None)
        mine = {i.key: i.complaint.ticket_id for i in refused}
        for doc in found:
            # Not persisted: tells the caller this key had been stored before.
            doc["duplicate"] = doc["ticket_id"] != mine[doc["_id"]]
            stored[doc["_id"]] = doc

    async def add_tracking_code(self, key: str, code_hash: str) -> None:
        """A retried submission gets a code of its own (the first answer may never have
        arrived); the last few stay valid."""
        await self.collection.update_one(
            {"_id": key}, {"$push": {"tracking_codes": {"$each": [code_hash], "$slice": -5}}})

    async def by_ticket(self, ticket_id: str) -> Document | None:
        return await self.collection.find_one({"ticket_id": ticket_id})

    async def by_tickets(self, ticket_ids: Sequence[str], tenant: str) -> list[Document]:
        """These complaints of ``tenant``, newest first (unknown numbers are left out)."""
        cursor = self.collection.find({"ticket_id": {"$in": list(ticket_ids)}, "tenant": tenant})
        return sorted(await cursor.to_list(None), key=lambda d: d["submitted_at"], reverse=True)

    async def by_open311_token(self, token: str) -> Document | None:
        return await self.collection.find_one({"open311.token": token})

    async def submitted_between(self, tenant: str, start: datetime, end: datetime,
                                limit: int) -> list[Document]:
        """Up to ``limit`` complaints of ``tenant`` submitted in [start, end], newest first."""
        cursor = self.collection.find(
            {"tenant": tenant, "submitted_at": {"$gte": start, "$lte": end}}
        ).sort("submitted_at", DESCENDING)
        return await cursor.limit(limit).to_list(None)

    async def mark_ticketed(self, ticket_ids: Sequence[str], now: datetime, *,
                            tenant: str | None = None) -> int:
        """Record that these complaints (of ``tenant``; None: the home tenant) have their
        ticket; a repeated announcement changes nothing. Returns how many were newly marked."""
        if not ticket_ids:
            return 0
        result = await self.collection.update_many(
            {"ticket_id": {"$in": list(ticket_ids)}, "ticketed_at": None,
             "tenant": tenant or self.settings.tenant},
            {"$set": {"ticketed_at": now}})
        return result.modified_count

    async def oldest_waiting(self, limit: int) -> list[Document]:
        """Up to ``limit`` complaints without a ticket, oldest first. (A range condition on
        submitted_at would make NX-27017 scan; the sort walks the index.)"""
        cursor = self.collection.find({"ticketed_at": None}).sort("submitted_at", ASCENDING)
        return await cursor.limit(limit).to_list(None)

    async def count_waiting_before(self, cutoff: datetime) -> int:
        return await self.collection.count_documents(
            {"ticketed_at": None, "submitted_at": {"$lt": cutoff}})

    async def note_republished(self, ids: Sequence[str], epoch: float) -> None:
        # Epoch seconds, not a datetime: NX-27017 stores a datetime given to $set as a string.
        await self.collection.update_many({"_id": {"$in": list(ids)}},
                                          {"$set": {"republished_epoch": epoch},
                                           "$inc": {"republished": 1}})


def complaint_of(doc: Document) -> dict[str, Any]:
    data: dict[str, Any] = doc["event"]["data"]
    return data


class ReplyStore:
    """Citizens' replies, stored before they are answered 202 and published by the outbox as
    ``citizen_replied`` updates."""

    def __init__(self, db: AsyncDatabase[Document], settings: Settings) -> None:
        self.collection = db[REPLIES]
        self.settings = settings

    async def ensure_indexes(self) -> None:
        # As for complaints: the replies still waiting for the SLA service, oldest first.
        await self.collection.create_index([("settled_at", ASCENDING), ("submitted_at", ASCENDING)])

    async def save(self, ticket_id: str, update: TicketUpdate, event_id: str, *,
                   tenant: str | None = None) -> Document:
        """Store the reply once per event id; a retry returns the stored one."""
        event = envelope(update, type=EventType.TICKET_UPDATE, tenant=tenant or self.settings.tenant,
                         ticket_id=ticket_id, event_id=event_id)
        now = utc_now()
        doc: Document = {
            "_id": event_id, "ticket_id": ticket_id, "created_at": now, "submitted_at": now,
            "settled_at": None, "outcome": None,
            **outbox_fields(Topics.UPDATES, event, lease_seconds=self.settings.outbox_lease_seconds,
                            owner=self.settings.instance_id, now=now)}
        await insert_new(self.collection, [doc])
        stored = await self.collection.find_one({"_id": event_id})
        assert stored is not None
        return stored

    async def mark_settled(self, event_ids: Sequence[str], outcome: str, now: datetime) -> int:
        """The SLA service applied (or refused) these replies: reconciliation leaves them be.
        Ids of replies this intake does not hold (an officer's citizen_replied) match nothing."""
        if not event_ids:
            return 0
        result = await self.collection.update_many(
            {"_id": {"$in": list(event_ids)}, "settled_at": None},
            {"$set": {"settled_at": now, "outcome": outcome}})
        return result.modified_count

    async def oldest_waiting(self, limit: int) -> list[Document]:
        """Up to ``limit`` replies the SLA service has not settled, oldest first."""
        cursor = self.collection.find({"settled_at": None}).sort("submitted_at", ASCENDING)
        return await cursor.limit(limit).to_list(None)

    async def count_waiting_before(self, cutoff: datetime) -> int:
        return await self.collection.count_documents(
            {"settled_at": None, "submitted_at": {"$lt": cutoff}})

    async def note_republished(self, ids: Sequence[str], epoch: float) -> None:
        await self.collection.update_many({"_id": {"$in": list(ids)}},
                                          {"$set": {"republished_epoch": epoch},
                                           "$inc": {"republished": 1}})


class TrackedTicket(TypedDict):
    """A ticket's public state in intake's ``tracking`` collection (from ``ticket.changed``)."""

    _id: str  # the tracking number
    tenant: str
    version: int
    status: str
    agency: str
    agency_name: str | None
    priority: str | None
    category: str | None
    assignment: int
    routing: dict[str, Any] | None
    deadlines: dict[str, datetime | None]
    history: list[dict[str, Any]]
    changed_at: datetime
    duplicate_of: NotRequired[str | None]  # linked to this ticket, whose state this is


def tracked(event: Envelope[TicketChanged]) -> TrackedTicket:
    state = event.data
    return TrackedTicket(
        _id=str(event.ticket_id), tenant=event.tenant, version=state.version, status=state.status,
        agency=state.agency,
        agency_name=state.agency_name, priority=state.priority.value if state.priority else None,
        category=state.category, assignment=state.assignment,
        routing=state.routing.model_dump(mode="json") if state.routing else None,
        deadlines=dict(state.deadlines), history=[s.model_dump() for s in state.history],
        changed_at=event.time, duplicate_of=state.duplicate_of)


class TrackingStore:
    """Intake's read model of tickets for the public tracking view: the newest state the SLA
    service announced, so the view keeps answering while the SLA service is down."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db[TRACKING]

    async def save(self, ticket: TrackedTicket) -> bool:
        """Keep the newer state: an older or equal version (a redelivery, or an announcement
        overtaken by a later one) changes nothing. Written whole, never ``$set`` (NX-27017
        would store the dates inside as strings). True when stored."""
        document: Document = dict(ticket)
        try:
            result = await self.collection.replace_one(
                {"_id": ticket["_id"], "version": {"$lt": ticket["version"]}}, document, upsert=True)
        except DuplicateKeyError:  # a newer (or the same) version is already stored
            return False
        return result.modified_count == 1 or result.upserted_id is not None

    async def save_all(self, tickets: Sequence[TrackedTicket]) -> int:
        """``save`` for a batch of distinct tickets in one round trip; returns how many were
        stored (the others had a newer or the same version already)."""
        if not tickets:
            return 0
        writes = [ReplaceOne({"_id": t["_id"], "version": {"$lt": t["version"]}}, dict(t), upsert=True)
                  for t in tickets]
        try:
            result = await self.collection.bulk_write(writes, ordered=False)
        except BulkWriteError as error:  # a duplicate key: that ticket's stored version is newer
            if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise
            return int(error.details.get("nModified", 0)) + int(error.details.get("nUpserted", 0))
        return result.modified_count + result.upserted_count

    async def get(self, ticket_id: str, tenant: str | None) -> Document | None:
        """The ticket's public state, only within the complaint's tenant (a document written
        before tenants existed has none and belongs to the home tenant)."""
        found = await self.collection.find_one({"_id": ticket_id})
        if found is None or found.get("tenant", tenant) != tenant:
            return None
        return found

    async def many(self, ticket_ids: Sequence[str], tenant: str) -> dict[str, Document]:
        """The public state of these tickets of ``tenant``, by tracking number."""
        found = await self.collection.find({"_id": {"$in": list(ticket_ids)}}).to_list(None)
        return {d["_id"]: d for d in found if d.get("tenant", tenant) == tenant}
