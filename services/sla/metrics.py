"""What the SLA service reports to Prometheus beyond what every service does: escalations
fired (by clock and level), breaches, the scheduler's delay, open tickets by agency and clock
state (see shared/metrics.py for the families)."""

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection

from services.sla.inbox import OPEN_STATUSES, DueState
from services.sla.policy import Level, Policy
from services.sla.report_store import find_open
from shared.metrics import FiredNotice, Metrics
from shared.mongo import Document

OpenCounts = dict[tuple[str, str, str], int]


def breach_level(levels: Iterable[Level], clock: str) -> int | None:
    """The level of ``clock`` whose first notice marks its deadline passing: the earliest
    rung at or past the target (``at`` >= 1, else the first ``after_breach`` rung); None when
    the policy has no such rung for the clock."""
    mine = [level for level in levels if level.clock == clock]
    at_target = [level for level in mine if level.at is not None and level.at >= 1.0]
    if at_target:
        return min(at_target, key=lambda level: (level.at, level.level)).level
    after = [level for level in mine if level.after_breach is not None]
    return min(after, key=lambda level: level.level).level if after else None


def fired_notices(docs: Sequence[Document], policy_for: Callable[[str], Policy]) -> list[FiredNotice]:
    """The stored escalation documents a scheduler turn fired, as the metrics count them."""
    notices = []
    for doc in docs:
        policy = policy_for(doc["tenant"])
        breach = doc["repeat"] == 0 and doc["level"] == breach_level(policy.escalation, doc["clock"])
        notices.append(FiredNotice(
            clock=doc["clock"], level=int(doc["level"]), breach=breach,
            delay_seconds=(doc["fired_at"] - doc["triggered_at"]).total_seconds()))
    return notices


def due_state(ticket: Document, now: datetime) -> DueState:
    """An open ticket's clock state, as the inbox filters it (services/sla/inbox.py)."""
    if ticket.get("status") == "needs_info":
        return DueState.PAUSED
    due, soon = ticket.get("due_next_at"), ticket.get("due_soon_at")
    if due is not None and due < now:
        return DueState.OVERDUE
    if soon is not None and soon <= now:
        return DueState.DUE_SOON
    return DueState.ON_TIME


_STATE_FIELDS = {"_id": 0, "tenant": 1, "agency": 1, "status": 1, "due_next_at": 1, "due_soon_at": 1}


async def open_ticket_counts(tickets: AsyncCollection[Document], tenants: Iterable[str],
                             now: datetime) -> OpenCounts:
    """Open tickets by (tenant, agency, clock state) read from the store: one query per tenant
    and open status on the (tenant, status) index (``find_open``), five small fields of each
    open ticket, classified here. (Grouping in the store would be cheaper, but NX-27017 0.8
    matches dates wrongly inside an aggregation whose $group has a key, while find and count
    match them right.) The service counts from the report read model's snapshot instead
    (``count_open``); this is the full read it is checked against."""
    counts: OpenCounts = {}
    for tenant in tenants:
        for ticket in await find_open(tickets, _STATE_FIELDS, tenant=tenant):
            key = (tenant, str(ticket.get("agency")), due_state(ticket, now).value)
            counts[key] = counts.get(key, 0) + 1
    return counts


def count_open(docs: Iterable[Document], tenants: Iterable[str], now: datetime) -> OpenCounts:
    """Open tickets by (tenant, agency, clock state), of these tenants, from documents in
    memory (the report read model's open snapshot): no store query."""
    wanted, counts = set(tenants), OpenCounts()
    for ticket in docs:
        tenant = str(ticket.get("tenant"))
        if tenant in wanted and ticket.get("status") in OPEN_STATUSES:
            key = (tenant, str(ticket.get("agency")), due_state(ticket, now).value)
            counts[key] = counts.get(key, 0) + 1
    return counts


OpenDocuments = Callable[[], Awaitable[list[Document] | None]]


def report_open_tickets(metrics: Metrics, tickets: AsyncCollection[Document],
                        tenants: Sequence[str], clock: Callable[[], datetime],
                        snapshot: OpenDocuments | None = None) -> None:
    """The open-ticket gauges, from ``snapshot`` (the open tickets kept by the report read
    model, caught up by the tickets changed since: no full read every refresh) when given,
    else by reading every open ticket."""
    async def refresh() -> None:
        docs = None if snapshot is None else await snapshot()
        if docs is None:
            metrics.sla.set_open(await open_ticket_counts(tickets, tenants, clock()))
        else:
            metrics.sla.set_open(count_open(docs, tenants, clock()))

    metrics.refresh_with("open_tickets", refresh)
