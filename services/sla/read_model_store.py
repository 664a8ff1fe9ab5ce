"""The store side of the compliance read model (``read_model``): counting resolved tickets and
fired escalations once, the catch-up that builds the counters from existing documents, and
the report read from them.

Once: every counted source gets a ledger document (``t:<ticket>`` or ``e:<escalation>``,
unique by ``_id``) inserted in the same transaction as the counters' ``$inc``; a redelivered
event, a second replica or a catch-up after a crash finds the ledger entry and adds nothing,
and a crash before the commit leaves neither.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, InsertOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.sla.read_model import (
    Increments,
    OpenFigures,
    OpenPart,
    escalation_increments,
    local_day,
    merge,
    open_part,
    report_rows,
    ticket_increments,
)
from services.sla.report_store import find_open
from services.sla.reports import (
    OPEN_STATUSES,
    ComplianceReport,
    ComplianceZones,
    GroupBy,
    ReportPeriod,
)
from shared.contracts import utc_now
from shared.mongo import Document
from shared.transactions import in_transaction

log = logging.getLogger(__name__)
COUNTERS, LEDGER, META = "report_counters", "report_ledger", "report_meta"
_RETRIES = 5
BUILT = "built"  # the meta document saying the first catch-up over everything finished
BACK_FILL = "back_fill"  # how far the first catch-up got, per collection (its last _id)
OPEN_FIELDS = {name: 1 for name in (
    "status", "agency", "assignment", "category", "channel", "submitted_at", "assigned_at",
    "first_response_at", "resolved_at", "response_working_seconds", "response_met",
    "resolution_met", "response_due_at", "resolution_due_at", "assignments", "pauses")}
# The gauges' fields too (the clock state: ``metrics.due_state``).
SNAPSHOT_FIELDS = OPEN_FIELDS | {"tenant": 1, "due_next_at": 1, "due_soon_at": 1, "version": 1}
_SNAPSHOT_KEYS = frozenset(SNAPSHOT_FIELDS) | {"_id"}
CHANGED = "changed_epoch"  # stamped by every ticket write (store.py), indexed


PartOf = Callable[[Document], OpenPart]
TenantOf = Callable[[Document], str]


@dataclass(frozen=True)
class OpenNow:
    """A tenant's open tickets for one report: their summed figures, as of when."""

    figures: OpenFigures
    as_of: datetime | None  # when the snapshot last read the changes


@dataclass
class OpenSnapshot:
    """The open tickets, kept in memory with their parts summed per tenant into
    ``OpenFigures``: a report reads those sums, whose cost grows with groups and days, not
    with open tickets. Read whole once (``rebuild``: at the first use, then every
    ``DISPOSISI_REPORT_OPEN_REBUILD_SECONDS`` to heal anything missed, off the request path);
    in between, ``catch_up`` reads only the tickets written since its last read, by the
    indexed ``changed_epoch`` every ticket write stamps (``store._versioned_write``), and
    replaces their parts. A report, the open-ticket gauges and the periodic refresh call
    ``catch_up``: each read touches what changed, never every open ticket, so it does not hold
    up the store (a full read of the open tickets did, for seconds, every 30 s)."""

    tickets: AsyncCollection[Document]
    inbox: AsyncCollection[Document] | None = None  # the inbox read model (store.INBOX)
    page: int = 200  # tickets per read of a rebuild
    parts: dict[str, tuple[str, OpenPart]] = field(default_factory=dict)  # id -> (tenant, part)
    docs: dict[str, Document] = field(default_factory=dict)  # as read for ``parts``
    figures: dict[str, OpenFigures] = field(default_factory=dict)  # by tenant
    since: float | None = None  # changes stamped from this epoch on are yet to be read
    taken_at: datetime | None = None
    rebuilt: float | None = None  # time.monotonic() of the last full read
    margin_seconds: float = 5.0  # writers' clocks and transactions may lag this one's a little
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one read of changes at a time
    rebuilding: asyncio.Lock = field(default_factory=asyncio.Lock)  # one full read at a time

    async def rebuild(self, part_of: PartOf, tenant_of: TenantOf) -> None:
        """Read every open ticket and sum their parts afresh (a ticket unchanged since the last
        read keeps its part); then the changes written during the read."""
        async with self.rebuilding:
            await self._rebuild(part_of, tenant_of)

    async def _rebuild(self, part_of: PartOf, tenant_of: TenantOf) -> None:
        started = time.time() - self.margin_seconds
        docs = await self._read_open()
        # Meanwhile reports go on from the snapshot as it was (no lock held until the swap).
        earlier = _Earlier(dict(self.docs), dict(self.parts))
        parts, figures = await asyncio.to_thread(_summed, docs, part_of, tenant_of, earlier)
        async with self.lock:
            self.parts, self.figures = parts, figures
            self.docs = {d["_id"]: d for d in docs}
            self.since, self.rebuilt = started, time.monotonic()
            await self._read_changes(part_of, tenant_of)

    async def _read_open(self) -> list[Document]:
        """Every open ticket. With the inbox (one small entry per open ticket, written with the
        ticket, with its version): the inbox's entries, then only the tickets whose version
        the snapshot does not hold (all of them the first time) and those it holds that left
        the inbox, by ``_id`` a page at a time. Reading 8,000 whole open tickets in one query
        holds NX-27017 up for about 3 s; small entries and short pages let other requests in
        between. (An open ticket missing from the inbox and from the reads of changes, a
        crash's double fault, is not found.)"""
        if self.inbox is None:
            return await find_open(self.tickets, SNAPSHOT_FIELDS)
        listed = {e["_id"]: int(e.get("version") or 0)
                  for e in await self.inbox.find({}).to_list(None)}
        held = dict(self.docs)
        fetch = [i for i, version in listed.items() if _version(held.get(i)) != version]
        fetch += [i for i in held if i not in listed]
        fresh: dict[str, Document] = {}
        for start in range(0, len(fetch), self.page):
            # Whole documents, trimmed here: NX-27017 copies every document it projects.
            for doc in await self.tickets.find({"_id": {"$in": fetch[start:start + self.page]}}
                                               ).to_list(None):
                fresh[doc["_id"]] = {k: v for k, v in doc.items() if k in _SNAPSHOT_KEYS}
        kept = [held[i] for i in listed if i in held and i not in fresh]
        return kept + [d for d in fresh.values() if d.get("status") in OPEN_STATUSES]

    async def catch_up(self, part_of: PartOf, tenant_of: TenantOf) -> None:
        """The tickets written since the last read, their parts replaced (a resolved one's
        taken away: the counters have it). The first call reads everything."""
        if self.since is None:
            async with self.rebuilding:  # several first callers: one full read
                if self.since is None:
                    await self._rebuild(part_of, tenant_of)
                    return
        async with self.lock:
            await self._read_changes(part_of, tenant_of)

    async def _read_changes(self, part_of: PartOf, tenant_of: TenantOf) -> None:
        assert self.since is not None
        started, taken_at = time.time() - self.margin_seconds, utc_now()
        changed = await self.tickets.find({CHANGED: {"$gte": self.since}},
                                          SNAPSHOT_FIELDS).to_list(None)
        for doc in changed:
            self._replace(doc, part_of, tenant_of)
        self.since, self.taken_at = started, taken_at

    def _replace(self, doc: Document, part_of: PartOf, tenant_of: TenantOf) -> None:
        ticket_id = doc["_id"]
        if self.docs.get(ticket_id) == doc:
            return  # read again within the margin, unchanged
        earlier = self.parts.pop(ticket_id, None)
        self.docs.pop(ticket_id, None)
        if earlier is not None:
            self.figures[earlier[0]].add(earlier[1], -1)
        if doc.get("status") in OPEN_STATUSES:
            tenant, part = tenant_of(doc), part_of(doc)
            self.figures.setdefault(tenant, OpenFigures()).add(part)
            self.parts[ticket_id], self.docs[ticket_id] = (tenant, part), doc

    async def current(self, tenant: str, part_of: PartOf, tenant_of: TenantOf) -> OpenNow:
        await self.catch_up(part_of, tenant_of)
        return OpenNow(self.figures.get(tenant, OpenFigures()), self.taken_at)

    async def open_documents(self, part_of: PartOf, tenant_of: TenantOf) -> list[Document]:
        """The open tickets as last read (after reading the changes): what the gauges count."""
        await self.catch_up(part_of, tenant_of)
        return list(self.docs.values())


def _version(doc: Document | None) -> int | None:
    return None if doc is None else int(doc.get("version") or 0)


@dataclass(frozen=True)
class _Earlier:
    docs: Mapping[str, Document]
    parts: Mapping[str, tuple[str, OpenPart]]


def _summed(docs: list[Document], part_of: PartOf, tenant_of: TenantOf, earlier: "_Earlier",
            ) -> tuple[dict[str, tuple[str, OpenPart]], dict[str, OpenFigures]]:
    """Each ticket's part (that of the last snapshot when the ticket has not changed since:
    most open tickets wait), then their sums per tenant."""
    parts: dict[str, tuple[str, OpenPart]] = {}
    for doc in docs:
        ticket_id = doc["_id"]
        unchanged = earlier.docs.get(ticket_id) == doc and ticket_id in earlier.parts
        parts[ticket_id] = earlier.parts[ticket_id] if unchanged \
            else (tenant_of(doc), part_of(doc))
    by_tenant: defaultdict[str, list[OpenPart]] = defaultdict(list)
    for tenant, part in parts.values():
        by_tenant[tenant].append(part)
    return parts, {tenant: OpenFigures.of(some) for tenant, some in by_tenant.items()}


@dataclass(frozen=True)
class ReportCounters:
    """Counters of one deployment; ``timezone_of(tenant)`` gives the tenant's report days."""

    db: AsyncDatabase[Document]
    timezone_of: Callable[[str], str]
    home_tenant: str = ""  # of documents stored without a tenant
    open_tickets: OpenSnapshot | None = None  # None: the open tickets are read per report
    flights: dict[Any, "asyncio.Future[ComplianceReport]"] = field(default_factory=dict,
                                                                   compare=False)

    @property
    def counters(self) -> AsyncCollection[Document]:
        return self.db[COUNTERS]

    async def ensure_indexes(self) -> None:
        await self.counters.create_index([("tenant", ASCENDING), ("dimension", ASCENDING),
                                          ("day", ASCENDING)])
        await self.counters.create_index([("day", ASCENDING)])

    async def refresh_open(self, *, rebuild_after: float | None = None) -> None:
        """The periodic refresh: read the open tickets written since the last read; or, when
        the last full read is ``rebuild_after`` seconds old, every open ticket again, which
        heals a change the reads of changes missed (one whose transaction committed later
        than the margin allows)."""
        snapshot = self.open_tickets
        if snapshot is None:
            return
        if rebuild_after is not None and snapshot.rebuilt is not None \
                and time.monotonic() - snapshot.rebuilt >= rebuild_after:
            await snapshot.rebuild(self.open_part, self._tenant)
        else:
            await snapshot.catch_up(self.open_part, self._tenant)

    async def open_documents(self) -> list[Document] | None:
        """The open tickets as the snapshot holds them (None without a snapshot)."""
        if self.open_tickets is None:
            return None
        return await self.open_tickets.open_documents(self.open_part, self._tenant)

    # --- counting ---------------------------------------------------------------------------

    async def count_tickets(self, tickets: Sequence[Document]) -> int:
        """Count these resolved tickets, those not counted before; returns how many."""
        sources = [(f"t:{t['_id']}", self._tenant(t),
                    ticket_increments(t, self.timezone_of(self._tenant(t))))
                   for t in tickets if t.get("status") == "resolved"]
        return await self._count(sources)

    async def count_escalations(self, escalations: Sequence[Document],
                                tickets: dict[str, Document]) -> int:
        """Count these first notices (re-notifications add nothing) not counted before."""
        sources = [(f"e:{e['_id']}", self._tenant(e),
                    escalation_increments(e, tickets.get(e["ticket_id"], {}),
                                          self.timezone_of(self._tenant(e))))
                   for e in escalations if not e.get("repeat", 0)]
        return await self._count(sources)

    def _tenant(self, doc: Document) -> str:
        return str(doc.get("tenant") or self.home_tenant)

    async def _count(self, sources: list[tuple[str, str, Increments]]) -> int:
        for _ in range(_RETRIES):
            try:
                counted = await self._count_once(sources)
            except BulkWriteError as error:  # another writer counted one of them meanwhile
                if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
                    raise
                continue
            if counted is not None:  # else the store gave the transaction up: count again
                return counted
        raise RuntimeError(f"counting {len(sources)} report sources kept racing other writers")

    async def _count_once(self, sources: list[tuple[str, str, Increments]]) -> int | None:
        """The ledger entries first, then the counters, in one transaction: a duplicate ledger
        key (counted meanwhile) aborts both. The ledger is read before the transaction, since
        NX-27017 fails a transaction that contains a find. None: the store gave it up."""
        if not sources:
            return 0
        ledger = self.db[LEDGER]
        seen = {d["_id"] for d in await ledger.find(
            {"_id": {"$in": [key for key, _, _ in sources]}}, {"_id": 1}).to_list(None)}
        new = [(key, tenant, inc) for key, tenant, inc in sources if key not in seen]
        if not new:
            return 0
        by_tenant: defaultdict[str, Increments] = defaultdict(dict)
        for _, tenant, increments in new:
            merge(by_tenant[tenant], increments)
        writes = [UpdateOne(
            {"_id": f"{tenant}|{key.doc_id}"},
            {"$setOnInsert": {"tenant": tenant, "dimension": key.dimension, "group": key.group,
                              "day": key.day, "prev": key.prev},
             "$inc": dict(counts)}, upsert=True)
            for tenant, increments in by_tenant.items() for key, counts in increments.items()]

        async def write(session: AsyncClientSession) -> int:
            await ledger.bulk_write([InsertOne({"_id": key}) for key, _, _ in new],
                                    session=session)
            await self.counters.bulk_write(writes, ordered=False, session=session)
            return len(new)

        return await in_transaction(self.db, write, what=f"counting {len(new)} report sources")

    async def catch_up(self, tickets: AsyncCollection[Document],
                       escalations: AsyncCollection[Document], *, since: float,
                       batch: int = 500) -> int:
        """Count what a crash left uncounted: resolved tickets and escalations since the epoch
        ``since``, or every one of them the first time (the back-fill). Idempotent; the
        back-fill walks each collection by ``_id`` and records how far it got, so a restart
        goes on from there."""
        if await self.db[META].find_one({"_id": BUILT}) is not None:
            counted = 0
            async for page in _pages(tickets.find({"status": "resolved",
                                                   "resolved_epoch": {"$gte": since}},
                                                  OPEN_FIELDS | {"tenant": 1}), batch):
                counted += await self.count_tickets(page)
            async for page in _pages(escalations.find({"fired_epoch": {"$gte": since}}), batch):
                counted += await self._count_fired(tickets, page)
            return counted
        counted = await self._back_fill(tickets, "tickets_after", batch, self.count_tickets,
                                        OPEN_FIELDS | {"tenant": 1})
        counted += await self._back_fill(escalations, "escalations_after", batch,
                                         lambda page: self._count_fired(tickets, page), None)
        await self.db[META].update_one({"_id": BUILT}, {"$set": {"done": 1}}, upsert=True)
        return counted

    async def _back_fill(self, collection: AsyncCollection[Document], mark: str, batch: int,
                         count: Callable[[list[Document]], Awaitable[int]],
                         fields: dict[str, int] | None) -> int:
        """Every document of ``collection`` in ``_id`` order from the recorded mark on, a page
        at a time (an ``_id`` range walks the index), the mark moved after each page."""
        progress = await self.db[META].find_one({"_id": BACK_FILL}) or {}
        after, counted = progress.get(mark), 0
        while True:
            query = {} if after is None else {"_id": {"$gt": after}}
            page = await collection.find(query, fields).sort("_id", ASCENDING).limit(
                batch).to_list(None)
            if not page:
                return counted
            counted += await count(page)
            after = page[-1]["_id"]
            await self.db[META].update_one({"_id": BACK_FILL}, {"$set": {mark: after}},
                                           upsert=True)

    async def _count_fired(self, tickets: AsyncCollection[Document], page: list[Document]) -> int:
        ids = sorted({e["ticket_id"] for e in page})
        dims = {t["_id"]: t async for t in tickets.find({"_id": {"$in": ids}},
                                                        {"category": 1, "channel": 1})}
        return await self.count_escalations(page, dims)

    # --- reading ----------------------------------------------------------------------------

    async def report(self, tickets: AsyncCollection[Document], *, tenant: str | None,
                     period: ReportPeriod, now: datetime, by: GroupBy, timezone: str,
                     zones: ComplianceZones) -> ComplianceReport:
        """The report from the period's counters plus the open tickets (from the snapshot, if
        there is one). Identical requests at the same time share one computation."""
        key = (tenant, by, period.start, period.end, timezone, zones.model_dump_json())
        running = self.flights.get(key)
        if running is None:
            running = asyncio.ensure_future(self._report(
                tickets, tenant=tenant, period=period, now=now, by=by, timezone=timezone,
                zones=zones))
            self.flights[key] = running
            running.add_done_callback(lambda _: self.flights.pop(key, None))
        return await asyncio.shield(running)

    async def _report(self, tickets: AsyncCollection[Document], *, tenant: str | None,
                      period: ReportPeriod, now: datetime, by: GroupBy, timezone: str,
                      zones: ComplianceZones) -> ComplianceReport:
        zone = ZoneInfo(timezone)
        start_day, end_day = local_day(period.start, zone), local_day(period.end, zone)
        counters = await self.counters.find({
            "tenant": tenant or self.home_tenant, "dimension": {"$in": [by, "total"]},
            "day": {"$gte": start_day, "$lt": end_day}}).to_list(None)
        open_now = await self._open_now(tickets, tenant)
        dimensions = (by, "total")
        counts, backlog = open_now.figures.at(now, dimensions, start_day, end_day)
        rows, totals = report_rows(counters, counts, backlog, by=by, start_day=start_day,
                                   zones=zones)
        return ComplianceReport(by=by, period=period, generated_at=now, zones=zones, rows=rows,
                                totals=totals, open_tickets_as_of=open_now.as_of)

    async def _open_now(self, tickets: AsyncCollection[Document], tenant: str | None) -> OpenNow:
        own = tenant or self.home_tenant
        if self.open_tickets is not None:
            return await self.open_tickets.current(own, self.open_part, self._tenant)
        scope = {} if tenant is None else {"tenant": tenant}
        docs = await find_open(tickets, OPEN_FIELDS, **scope)
        return OpenNow(OpenFigures.of(self.open_part(d) for d in docs), None)

    def open_part(self, ticket: Document) -> OpenPart:
        return open_part(ticket, self.timezone_of(self._tenant(ticket)))


async def _pages(cursor: AsyncIterable[Document], size: int) -> AsyncIterator[list[Document]]:
    page: list[Document] = []
    async for doc in cursor:
        page.append(doc)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


@dataclass
class CatchUp:
    """The start-up catch-up (on a first start, the back-fill of every resolved ticket and
    escalation, minutes at a million tickets) as a background task: the service starts at
    once, counts new resolutions as they come (the ledger keeps the two from counting one
    twice), and says ``backfilling`` in its readiness until the catch-up is done. A failed
    attempt (the store away) is retried; a restart resumes the back-fill where it stopped."""

    counters: ReportCounters
    tickets: AsyncCollection[Document]
    escalations: AsyncCollection[Document]
    window_seconds: float
    retry_seconds: float = 5.0
    done: bool = False

    async def run(self) -> None:
        since = utc_now().timestamp() - self.window_seconds
        while True:
            try:
                counted = await self.counters.catch_up(self.tickets, self.escalations, since=since)
            except Exception as error:  # the store away: try again, from the recorded mark
                log.warning("report counters' catch-up failed, retrying: %s", error)
                await asyncio.sleep(self.retry_seconds)
                continue
            self.done = True
            log.info("report counters caught up: %d counted", counted)
            return

    async def readiness(self) -> str | None:
        return None if self.done else "backfilling"
