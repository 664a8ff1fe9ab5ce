"""The store side of compliance reports: fetch only what a period needs, aggregate in Python.

Every query filters on top-level indexed fields. NX-27017 (the embedded store) matches neither
ranges on fields inside arrays (``assignments.assigned_at``) nor ``$elemMatch``, and drops
dotted projections into arrays, so the period is found through the ticket's own fields:

- an assignment that began in [start, end) means the ticket was submitted before ``end`` and
  its current assignment (``assigned_at``, the latest) began at or after ``start``;
- a re-pause or hand-over in the period of a ticket that is closed now means it was resolved
  at or after ``start``;
- open tickets are fetched whole for the backlog (by ``status``).

Each query returns a superset; ``reports.compliance_report`` applies the exact rules.
On MongoDB the datetime ranges use the indexes below. NX-27017 stores a datetime as a
``{"$date": ...}`` object and scans for datetime ranges whatever the index (only equality,
``$in`` and number or string ranges use one), so there a report reads the collection once per
query; acceptable for a report asked on demand, not for a loop.
"""

from dataclasses import dataclass

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from services.sla.reports import OPEN_STATUSES, EscalationTally, ReportPeriod, tally_escalations
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
    """The indexes the report queries use; idempotent, call at start-up."""
    await tickets.create_index([("assigned_at", ASCENDING)])
    await tickets.create_index([("resolved_at", ASCENDING)])
    await tickets.create_index([("status", ASCENDING)])
    await escalations.create_index([("fired_at", ASCENDING)])


async def load_report_inputs(tickets: AsyncCollection[Document],
                             escalations: AsyncCollection[Document],
                             period: ReportPeriod, *, tenant: str | None = None) -> ReportInputs:
    """Tickets that may count in ``period`` (plus every open one) and the period's escalations
    tallied by agency, ticket category and channel, and level; of ``tenant`` only, if given."""
    own = {} if tenant is None else {"tenant": tenant}
    found: dict[str, Document] = {}
    for query in (
        {"assigned_at": {"$gte": period.start}, "submitted_at": {"$lt": period.end}, **own},
        {"resolved_at": {"$gte": period.start}, "submitted_at": {"$lt": period.end}, **own},
        {"status": {"$in": list(OPEN_STATUSES)}, **own},
    ):
        async for ticket in tickets.find(query, TICKET_FIELDS):
            found[ticket["_id"]] = ticket
    fired = await escalations.find(
        {"fired_at": {"$gte": period.start, "$lt": period.end}, **own},
        ESCALATION_FIELDS).to_list(None)
    # An escalation in the period may concern a ticket received long before it.
    missing = sorted({e["ticket_id"] for e in fired} - found.keys())
    dimensions = {t["_id"]: t for t in found.values()}
    if missing:
        async for ticket in tickets.find({"_id": {"$in": missing}, **own},
                                         {"category": 1, "channel": 1}):
            dimensions[ticket["_id"]] = ticket
    return ReportInputs(list(found.values()), tally_escalations(fired, dimensions))
