"""The store side of compliance reports: fetch only what a period needs, aggregate in Python.

Every query filters on top-level indexed fields, and the ranges are on numbers: a ticket
carries epoch-second copies of its instants (``submitted_epoch``, ``assigned_epoch``,
``resolved_epoch``, written with it by ``timing.refresh``; an escalation ``fired_epoch``),
because NX-27017 answers a number range from an index but reads the whole collection for a
date range, which made a report's cost grow with every ticket ever stored and stalled the store
for everyone meanwhile. Documents stored before these fields get them at start-up
(``backfill_report_fields``). NX-27017 (the embedded store) matches neither
ranges on fields inside arrays (``assignments.assigned_at``) nor ``$elemMatch``, and drops
dotted projections into arrays, so the period is found through the ticket's own fields:

- an assignment that began in [start, end) means the ticket was submitted before ``end`` and
  its current assignment (``assigned_at``, the latest) began at or after ``start``;
- a re-pause or hand-over in the period of a ticket that is closed now means it was resolved
  at or after ``start``;
- open tickets are fetched whole for the backlog (by ``status``).

Each query returns a superset; ``reports.compliance_report`` applies the exact rules.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from services.sla.reports import OPEN_STATUSES, EscalationTally, ReportPeriod, tally_escalations
from services.sla.timing import epoch, report_epochs
from shared.mongo import Document

# Top-level fields only (see above); history, the biggest part of a ticket, stays on the server.
TICKET_FIELDS = {name: 1 for name in (
    "status", "agency", "assignment", "category", "channel", "submitted_at", "assigned_at",
    "first_response_at", "resolved_at", "response_working_seconds", "response_met",
    "resolution_met", "response_due_at", "resolution_due_at", "assignments", "pauses")}
ESCALATION_FIELDS = {name: 1 for name in ("ticket_id", "agency", "clock", "level", "repeat")}


@dataclass(frozen=True)
class ReportInputs:
    tickets: list[Document]
    escalations: list[EscalationTally]


async def ensure_report_indexes(tickets: AsyncCollection[Document],
                                escalations: AsyncCollection[Document]) -> None:
    """The indexes the report queries use, and the epoch fields of documents stored before
    them; idempotent, call at start-up."""
    await tickets.create_index([("assigned_epoch", ASCENDING)])
    await tickets.create_index([("resolved_epoch", ASCENDING)])
    await tickets.create_index([("status", ASCENDING)])
    await tickets.create_index([("changed_epoch", ASCENDING)])  # the open snapshot's catch-up
    await escalations.create_index([("fired_epoch", ASCENDING)])
    await backfill_report_fields(tickets, escalations)


async def backfill_report_fields(tickets: AsyncCollection[Document],
                                 escalations: AsyncCollection[Document], *,
                                 batch: int = 500) -> int:
    """Give tickets and escalations stored before the epoch fields theirs; returns how many
    were updated (none on a second run)."""
    updated = 0
    for collection, marker, fields in (
        (tickets, "submitted_epoch", {"submitted_at": 1, "assigned_at": 1, "resolved_at": 1}),
        (escalations, "fired_epoch", {"fired_at": 1}),
    ):
        writes: list[UpdateOne] = []
        async for doc in collection.find({marker: {"$exists": False}}, fields):
            epochs = report_epochs(doc) if marker == "submitted_epoch" else \
                {"fired_epoch": epoch(doc.get("fired_at"))}
            writes.append(UpdateOne({"_id": doc["_id"]}, {"$set": epochs}))
            if len(writes) >= batch:
                updated += (await collection.bulk_write(writes, ordered=False)).modified_count
                writes = []
        if writes:
            updated += (await collection.bulk_write(writes, ordered=False)).modified_count
    return updated


async def find_open(tickets: AsyncCollection[Document], fields: Mapping[str, int] | None = None,
                    **scope: str) -> list[Document]:
    """The open tickets (those matching ``scope``, e.g. a tenant), one query per open status:
    NX-27017 answers an equality on the indexed status from the index, but a ``$in`` of the
    statuses by reading the whole collection, holding up every other request meanwhile (4 s
    at a million tickets: the stall of submissions the report benchmark measured)."""
    found: list[Document] = []
    for status in OPEN_STATUSES:
        found += await tickets.find({**scope, "status": status}, fields).to_list(None)
    return found


async def load_report_inputs(tickets: AsyncCollection[Document],
                             escalations: AsyncCollection[Document],
                             period: ReportPeriod, *, tenant: str | None = None) -> ReportInputs:
    """Tickets that may count in ``period`` (plus every open one) and the period's escalations
    tallied by agency, ticket category and channel, and level; of ``tenant`` only, if given."""
    own = {} if tenant is None else {"tenant": tenant}
    found: dict[str, Document] = {}
    start, end = period.start.timestamp(), period.end.timestamp()
    for query in (
        {"assigned_epoch": {"$gte": start}, "submitted_epoch": {"$lt": end}, **own},
        {"resolved_epoch": {"$gte": start}, "submitted_epoch": {"$lt": end}, **own},
    ):
        async for ticket in tickets.find(query, TICKET_FIELDS):
            found[ticket["_id"]] = ticket
    for ticket in await find_open(tickets, TICKET_FIELDS, **own):
        found[ticket["_id"]] = ticket
    fired = await escalations.find(
        {"fired_epoch": {"$gte": start, "$lt": end}, **own},
        ESCALATION_FIELDS).to_list(None)
    # An escalation in the period may concern a ticket received long before it.
    missing = sorted({e["ticket_id"] for e in fired} - found.keys())
    dimensions = {t["_id"]: t for t in found.values()}
    if missing:
        async for ticket in tickets.find({"_id": {"$in": missing}, **own},
                                         {"category": 1, "channel": 1}):
            dimensions[ticket["_id"]] = ticket
    return ReportInputs(list(found.values()), tally_escalations(fired, dimensions))
