"""SLA's MongoDB collections: ``tickets`` (state, clocks, the scheduler's ``next_check_at``),
``escalations``, ``reroutes``, ``openings`` and ``changes`` (outboxes of ``ticket.escalated``,
reroute requests, ``ticket.opened`` and ``ticket.changed``)."""

import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from pymongo import ASCENDING, DeleteOne, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.sla.duplicate_store import DuplicateLinks
from services.sla.inbox import ENTRY_SOURCE_FIELDS, OPEN_STATUSES, inbox_entry
from shared.mongo import DUPLICATE_KEY, Document, insert_new
from shared.transactions import in_transaction

TICKETS = "tickets"
ESCALATIONS = "escalations"
REROUTES = "reroutes"
PARKED = "parked_updates"
OPENINGS = "openings"
CHANGES = "changes"  # one per ticket: its latest public state, as ticket.changed to publish
INBOX = "inbox"  # the inbox read model: one small entry per open ticket (inbox.InboxEntry)
CLAIM = "claim"  # the scheduler's lease token; never written by ticket updates

# Tickets are written whole (replace, guarded by their version), never with $set: NX-27017 0.8
# stores a top-level datetime given to $set as a string, which breaks the next_check_at index
# order. Replacing the document keeps every instant a BSON date.


class TicketStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.tickets = db[TICKETS]
        self.escalations = db[ESCALATIONS]
        self.reroutes = db[REROUTES]
        self.parked = db[PARKED]
        self.openings = db[OPENINGS]
        self.changes = db[CHANGES]
        self.inbox = db[INBOX]
        self.duplicates = DuplicateLinks(db)  # complaints linked to an open ticket

    async def ensure_indexes(self, *, home_tenant: str | None = None) -> None:
        if home_tenant is not None:  # documents stored before tenants were recorded
            for collection in (self.tickets, self.escalations):
                await collection.update_many({"tenant": {"$exists": False}},
                                             {"$set": {"tenant": home_tenant}})
        await self.tickets.create_index([("tenant", ASCENDING), ("status", ASCENDING)])
        # The scheduler only ever asks "what is due now?": this index answers it without a scan.
        await self.tickets.create_index([("next_check_at", ASCENDING)])
        await self.tickets.create_index([("agency", ASCENDING), ("status", ASCENDING)])
        await self.escalations.create_index([("ticket_id", ASCENDING)])
        await self.escalations.create_index([("checked_epoch", ASCENDING)])
        await self.reroutes.create_index([("ticket_id", ASCENDING)])
        await self.parked.create_index([("ticket_id", ASCENDING)])
        await self.parked.create_index([("parked_at", ASCENDING)])
        await self.duplicates.ensure_indexes()

    async def add_new(self, tickets: Sequence[Document]) -> int:
        """Store tickets not stored yet (by ticket id); redelivered ones change nothing (their
        inbox entries are written again from what is stored: a crash in between heals)."""
        inserted = await insert_new(self.tickets, [{**t, **changed_now()} for t in tickets])
        await self.sync_inbox([t["_id"] for t in tickets])
        return inserted

    async def get(self, ticket_id: str, *, tenant: str | None = None) -> Document | None:
        """The ticket; with ``tenant``, only if it is that tenant's (else None, as if unknown)."""
        query = {"_id": ticket_id} if tenant is None else {"_id": ticket_id, "tenant": tenant}
        return await self.tickets.find_one(query)

    async def save_if_unchanged(self, ticket: Document, version: int) -> bool:
        """Write the ticket only if nobody wrote it since ``version`` was read; its inbox entry
        in the same transaction. A transaction the store gave up on counts as a conflict: the
        caller reads the ticket again and finds its event applied, or applies it again."""
        return await self.save_with_outbox(ticket, version, ())

    async def save_with_outbox(self, ticket: Document, version: int,
                               outbox: Sequence[Document]) -> bool:
        """The ticket change and the events it causes in one transaction: both or neither. A
        transaction the store gave up on counts as a conflict, as in ``save_if_unchanged``."""

        async def write(session: AsyncClientSession) -> bool:
            result = await self.tickets.replace_one(*_versioned_write(ticket, version),
                                                    session=session)
            if result.modified_count != 1:
                await session.abort_transaction()
                return False
            await self.sync_inbox([ticket["_id"]], session=session)
            for doc in outbox:  # ids are derived: a second writer finds the first one's
                if await self.reroutes.find_one({"_id": doc["_id"]}, {"_id": 1},
                                                session=session) is None:
                    await self.reroutes.insert_one(doc, session=session)
            return True

        return await in_transaction(self.db, write, what=f"ticket {ticket['_id']}") or False

    async def add_reroute(self, doc: Document) -> Document:
        """Store a reroute request once per id; returns the stored one (maybe an earlier twin)."""
        await insert_new(self.reroutes, [doc])
        stored = await self.reroutes.find_one({"_id": doc["_id"]})
        assert stored is not None
        return stored

    # --- the inbox read model ----------------------------------------------------------------

    async def sync_inbox(self, ticket_ids: Sequence[str], *,
                         session: AsyncClientSession | None = None) -> None:
        """Bring these tickets' inbox entries in step with the stored tickets: written while
        open, deleted once closed. An entry never goes back to an older version (two writers
        syncing the same ticket: the newer wins; upserting over a newer one is a duplicate key)."""
        if not ticket_ids:
            return
        stored = await self.tickets.find({"_id": {"$in": list(ticket_ids)}},
                                         dict.fromkeys(ENTRY_SOURCE_FIELDS, 1),
                                         session=session).to_list(None)
        writes: list[ReplaceOne[Document] | DeleteOne] = []
        for ticket in stored:
            entry = inbox_entry(ticket)
            if entry is None:
                writes.append(DeleteOne({"_id": ticket["_id"]}))
            else:
                writes.append(ReplaceOne({"_id": entry["_id"], "version": {"$lt": entry["version"]}},
                                         dict(entry), upsert=True))
        if not writes:
            return
        try:
            await self.inbox.bulk_write(writes, ordered=False, session=session)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise

    async def backfill_inbox(self, batch: int = 500) -> int:
        """Fill an empty inbox read model from the open tickets (a deployment from before it
        existed); once it holds anything, this is one lookup."""
        if await self.inbox.find_one({}, {"_id": 1}) is not None:
            return 0
        cursor = self.tickets.find({"status": {"$in": list(OPEN_STATUSES)}}, {"_id": 1})
        ids = [doc["_id"] for doc in await cursor.to_list(None)]
        for start in range(0, len(ids), batch):
            await self.sync_inbox(ids[start:start + batch])
        return len(ids)

    # --- announcements that a ticket is open -------------------------------------------------

    async def add_openings(self, docs: Sequence[Document]) -> None:
        """Store each ticket's ``ticket.opened`` outbox record once (keyed by ticket id)."""
        await insert_new(self.openings, docs)

    async def openings_for(self, ticket_ids: Sequence[str]) -> list[Document]:
        return await self.openings.find({"_id": {"$in": list(ticket_ids)}}).to_list(None)

    # --- the public state of tickets (ticket.changed) -----------------------------------------

    async def save_changes(self, docs: Sequence[Document]) -> None:
        """Keep each ticket's newest announcement (by ``version``): an older one, or one of the
        same version, leaves the stored one as it is (upserting over it is a duplicate key)."""
        if not docs:
            return
        writes = [ReplaceOne({"_id": d["_id"], "version": {"$lt": d["version"]}}, d, upsert=True)
                  for d in docs]
        try:
            await self.changes.bulk_write(writes, ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise

    async def changes_since(self, cutoff: datetime) -> list[Document]:
        """The announcements stored since ``cutoff`` (a scan: run only when the broker lost
        its log)."""
        return await self.changes.find({"created_at": {"$gte": cutoff}}).to_list(None)

    async def changes_for(self, ticket_ids: Sequence[str]) -> list[Document]:
        return await self.changes.find({"_id": {"$in": list(ticket_ids)}}).to_list(None)

    # --- updates that came before their ticket --------------------------------------------

    async def park(self, doc: Document) -> None:
        """Keep an update (by its event id, once) until its ticket is opened."""
        await insert_new(self.parked, [doc])

    async def parked_for(self, ticket_ids: Sequence[str]) -> list[Document]:
        cursor = self.parked.find({"ticket_id": {"$in": list(ticket_ids)}}).sort("parked_at", 1)
        return await cursor.to_list(None)

    async def has_parked(self, ticket_id: str) -> bool:
        return await self.parked.find_one({"ticket_id": ticket_id}, {"_id": 1}) is not None

    async def parked_among(self, ids: Sequence[str]) -> list[Document]:
        """Those of these parked updates that are still parked."""
        return await self.parked.find({"_id": {"$in": list(ids)}}).sort("parked_at", 1).to_list(None)

    async def parked_before(self, when: datetime, limit: int) -> list[Document]:
        cursor = self.parked.find({"parked_at": {"$lt": when}}).sort("parked_at", 1)
        return await cursor.limit(limit).to_list(None)

    async def unpark(self, ids: Sequence[str]) -> None:
        if ids:
            await self.parked.delete_many({"_id": {"$in": list(ids)}})

    # --- the scheduler ----------------------------------------------------------------------

    async def claim_due(self, now: datetime, *, limit: int, token: str,
                        lease_seconds: float) -> list[Document]:
        """Lease up to ``limit`` due tickets to ``token``: their next_check_at moves to the end
        of the lease, so no other replica sees them due until then (or until a crash makes
        the lease run out). Each claim is a conditional write (still due, same version), so
        of two replicas reading the same ticket only one gets it. At most four round trips,
        whatever the number of open tickets."""
        earliest = await self.earliest_check()
        if earliest is None or earliest > now:
            return []  # the common idle case: one index lookup
        # Walk the index in order and stop at ``limit``, then keep the due ones: NX-27017 0.8
        # scans the collection for a range condition ($lte) but walks the index for a sort.
        first = await self.tickets.find({"next_check_at": {"$ne": None}}).sort(
            "next_check_at", ASCENDING).limit(limit).to_list(None)
        candidates = [doc for doc in first if doc["next_check_at"] <= now]
        lease_end = now + timedelta(seconds=lease_seconds)
        result = await self.tickets.bulk_write([
            ReplaceOne({"_id": doc["_id"], "version": doc["version"], "next_check_at": {"$lte": now}},
                       {**doc, "next_check_at": lease_end, CLAIM: token})
            for doc in candidates], ordered=False)
        if result.modified_count == len(candidates):
            return [{**doc, "next_check_at": lease_end, CLAIM: token} for doc in candidates]
        return await self.tickets.find(
            {"_id": {"$in": [doc["_id"] for doc in candidates]}, CLAIM: token}).to_list(None)

    async def store_escalations(self, escalations: Sequence[Document], owner: str) -> list[Document]:
        """Insert escalations by their unique id; return those this owner stored and has yet to
        publish. A replica that loses the race for an id gets nothing back for it."""
        if not escalations:
            return []
        await insert_new(self.escalations, escalations)
        return await self.escalations.find({"_id": {"$in": [e["_id"] for e in escalations]},
                                            "published": False, "lease_owner": owner}).to_list(None)

    # --- escalations checked against the topic's log ----------------------------------------

    async def escalations_to_check(self, *, fired_since: datetime, fired_before: datetime,
                                   limit: int) -> list[Document]:
        """Published escalations fired in the window, least recently checked first."""
        cursor = self.escalations.find(
            # NX-27017 stores a $set true as 1 (which a query for true does not match)
            {"published": {"$in": [True, 1]},
             "fired_at": {"$gte": fired_since, "$lt": fired_before}}).sort(
            "checked_epoch", ASCENDING)
        return await cursor.limit(limit).to_list(None)

    async def note_checked(self, ids: Sequence[str], epoch: float) -> None:
        if ids:
            await self.escalations.update_many({"_id": {"$in": list(ids)}},
                                                {"$set": {"checked_epoch": epoch}})

    async def claim_reannouncement(self, doc: Document, epoch: float) -> bool:
        """Whether this replica re-announces the escalation: one conditional write decides
        (the previous re-announcement's time unchanged), so two replicas never both send it.
        Epochs, not datetimes: NX-27017 stores a ``$set`` datetime as a string."""
        result = await self.escalations.update_one(
            {"_id": doc["_id"], "reannounced_epoch": doc.get("reannounced_epoch")},
            {"$set": {"reannounced_epoch": epoch}, "$inc": {"reannouncements": 1}})
        return result.modified_count == 1

    async def finish(self, tickets: Sequence[tuple[Document, int]], token: str) -> int:
        """Write the scheduler's result and release the lease, for the tickets nobody changed
        meanwhile (an update in between wins; the next turn redoes the same work)."""
        if not tickets:
            return 0
        writes = []
        for ticket, version in tickets:
            where, whole = _versioned_write(ticket, version)
            writes.append(ReplaceOne({**where, CLAIM: token}, whole))
        result = await self.tickets.bulk_write(writes, ordered=False)
        await self.sync_inbox([ticket["_id"] for ticket, _ in tickets])
        return result.modified_count

    async def earliest_check(self) -> datetime | None:
        """When the next ticket needs attention (an index lookup, not a scan)."""
        first = await self.tickets.find_one({"next_check_at": {"$ne": None}}, {"next_check_at": 1},
                                            sort=[("next_check_at", ASCENDING)])
        return None if first is None else first["next_check_at"]


def _versioned_write(ticket: Document, version: int) -> tuple[Document, Document]:
    """Filter and replacement: the whole ticket, one version on, without any lease."""
    fields = {k: v for k, v in ticket.items() if k not in ("version", CLAIM)}
    return {"_id": ticket["_id"], "version": version}, {**fields, "version": version + 1,
                                                        **changed_now()}


def changed_now() -> Document:
    """The stamp of a ticket write, in the write itself (no crash can separate them): the
    report read model's open snapshot reads the tickets changed since its last read by it."""
    return {"changed_epoch": time.time()}
