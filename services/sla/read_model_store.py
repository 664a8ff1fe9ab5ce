"""The store side of the compliance read model (``read_model``): counting resolved tickets and
fired escalations once, the catch-up that builds the counters from existing documents, and
the report read from them.

Once: every counted source gets a ledger document (``t:<ticket>`` or ``e:<escalation>``,
unique by ``_id``) inserted in the same transaction as the counters' ``$inc``; a redelivered
event, a second replica or a catch-up after a crash finds the ledger entry and adds nothing,
and a crash before the commit leaves neither.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.sla.read_model import (
    Increments,
    escalation_increments,
    local_day,
    merge,
    report_rows,
    ticket_increments,
)
from services.sla.reports import (
    OPEN_STATUSES,
    ComplianceReport,
    ComplianceZones,
    GroupBy,
    ReportPeriod,
    _count_ticket,
    _Tally,
)
from shared.mongo import Document

log = logging.getLogger(__name__)
COUNTERS, LEDGER, META = "report_counters", "report_ledger", "report_meta"
_RETRIES = 5
BUILT = "built"  # the meta document saying the first catch-up over everything finished
OPEN_FIELDS = {name: 1 for name in (
    "status", "agency", "assignment", "category", "channel", "submitted_at", "assigned_at",
    "first_response_at", "resolved_at", "response_working_seconds", "response_met",
    "resolution_met", "response_due_at", "resolution_due_at", "assignments", "pauses")}
SNAPSHOT_FIELDS = OPEN_FIELDS | {"tenant": 1}


@dataclass
class OpenSnapshot:
    """The open tickets, read whole every ``DISPOSISI_REPORT_OPEN_REFRESH_SECONDS`` off the
    request path (reading thousands of them per report took seconds on NX-27017 and held up
    the store for everyone). A report takes the snapshot and, by two indexed range queries,
    the tickets opened or re-assigned since it (added as they are now) and resolved since it
    (dropped: the counters have them). Other changes of an open ticket since the snapshot (a
    first response, a pause) show in the report after the next refresh."""

    tickets: AsyncCollection[Document]
    docs: dict[str, Document] = field(default_factory=dict)
    taken_epoch: float | None = None
    margin_seconds: float = 5.0  # writers' clocks may lag this one's a little

    async def refresh(self) -> None:
        started = time.time() - self.margin_seconds
        found = {d["_id"]: d async for d in self.tickets.find(
            {"status": {"$in": list(OPEN_STATUSES)}}, SNAPSHOT_FIELDS)}
        self.docs, self.taken_epoch = found, started

    async def current(self, tenant: str | None) -> list[Document]:
        if self.taken_epoch is None:
            await self.refresh()
        docs, since = dict(self.docs), self.taken_epoch
        own = {} if tenant is None else {"tenant": tenant}
        async for doc in self.tickets.find({"assigned_epoch": {"$gte": since}, **own},
                                           SNAPSHOT_FIELDS):
            docs[doc["_id"]] = doc
        async for doc in self.tickets.find({"resolved_epoch": {"$gte": since}, **own}, {"_id": 1}):
            docs.pop(doc["_id"], None)
        return [d for d in docs.values() if d["status"] in OPEN_STATUSES
                and (tenant is None or d.get("tenant") == tenant)]


@dataclass(frozen=True)
class ReportCounters:
    """Counters of one deployment; ``timezone_of(tenant)`` gives the tenant's report days."""

    db: AsyncDatabase[Document]
    timezone_of: Callable[[str], str]
    home_tenant: str = ""  # of documents stored without a tenant
    open_tickets: OpenSnapshot | None = None  # None: the open tickets are read per report

    @property
    def counters(self) -> AsyncCollection[Document]:
        return self.db[COUNTERS]

    async def ensure_indexes(self) -> None:
        await self.counters.create_index([("tenant", ASCENDING), ("dimension", ASCENDING),
                                          ("day", ASCENDING)])
        await self.counters.create_index([("day", ASCENDING)])

    async def refresh_open(self) -> None:
        if self.open_tickets is not None:
            await self.open_tickets.refresh()

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
                return await self._count_once(sources)
            except BulkWriteError as error:  # another writer counted one of them meanwhile
                if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
                    raise
        raise RuntimeError(f"counting {len(sources)} report sources kept racing other writers")

    async def _count_once(self, sources: list[tuple[str, str, Increments]]) -> int:
        """The ledger entries first, then the counters, in one transaction: a duplicate ledger
        key (counted meanwhile) aborts both. The ledger is read before the transaction, since
        NX-27017 fails a transaction that contains a find."""
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
        async with self.db.client.start_session() as session, await session.start_transaction():
            await ledger.bulk_write([InsertOne({"_id": key}) for key, _, _ in new],
                                    session=session)
            await self.counters.bulk_write(writes, ordered=False, session=session)
        return len(new)

    async def catch_up(self, tickets: AsyncCollection[Document],
                       escalations: AsyncCollection[Document], *, since: float,
                       batch: int = 500) -> int:
        """Count what a crash left uncounted: resolved tickets and escalations since the epoch
        ``since``, or every one of them the first time (the back-fill). Idempotent."""
        built = await self.db[META].find_one({"_id": BUILT}) is not None
        resolved: dict[str, Any] = {"status": "resolved"}
        fired: dict[str, Any] = {}  # re-notifications are skipped when counting
        if built:
            resolved["resolved_epoch"] = {"$gte": since}
            fired["fired_epoch"] = {"$gte": since}
        counted = 0
        page: list[Document] = []
        async for ticket in tickets.find(resolved, OPEN_FIELDS | {"tenant": 1}):
            page.append(ticket)
            if len(page) >= batch:
                counted, page = counted + await self.count_tickets(page), []
        counted += await self.count_tickets(page)
        page = []
        async for escalation in escalations.find(fired):
            page.append(escalation)
            if len(page) >= batch:
                counted, page = counted + await self._count_fired(tickets, page), []
        counted += await self._count_fired(tickets, page)
        if not built:
            await self.db[META].update_one({"_id": BUILT}, {"$set": {"done": 1}}, upsert=True)
        return counted

    async def _count_fired(self, tickets: AsyncCollection[Document], page: list[Document]) -> int:
        ids = sorted({e["ticket_id"] for e in page})
        dims = {t["_id"]: t async for t in tickets.find({"_id": {"$in": ids}},
                                                        {"category": 1, "channel": 1})}
        return await self.count_escalations(page, dims)

    # --- reading ----------------------------------------------------------------------------

    async def report(self, tickets: AsyncCollection[Document], *, tenant: str | None,
                     period: ReportPeriod, now: datetime, by: GroupBy, timezone: str,
                     zones: ComplianceZones) -> ComplianceReport:
        """The report from the period's counters plus the open tickets computed live (from
        the snapshot, if there is one)."""
        zone = ZoneInfo(timezone)
        start_day, end_day = local_day(period.start, zone), local_day(period.end, zone)
        counters = await self.counters.find({
            "tenant": tenant or self.home_tenant, "dimension": {"$in": [by, "total"]},
            "day": {"$gte": start_day, "$lt": end_day}}).to_list(None)
        live: defaultdict[str, _Tally] = defaultdict(_Tally)
        live_totals = _Tally()
        own = {} if tenant is None else {"tenant": tenant}
        open_now = await self.open_tickets.current(tenant) if self.open_tickets is not None \
            else await tickets.find({"status": {"$in": list(OPEN_STATUSES)}, **own},
                                    OPEN_FIELDS).to_list(None)
        for ticket in open_now:
            _count_ticket(ticket, by, period, now, live, live_totals)
        rows, totals = report_rows(counters, live, live_totals, by=by, start_day=start_day,
                                   zones=zones)
        return ComplianceReport(by=by, period=period, generated_at=now, zones=zones, rows=rows,
                                totals=totals)
