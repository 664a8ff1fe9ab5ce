"""The gauges a service refreshes in a loop (see shared/metrics.py): outbox backlogs, the
reconciliation backlogs, the lag of the service's own consumer groups. Each query is bounded:
an indexed count capped at ``OUTBOX_COUNT_CAP``, a few documents for the oldest age, one
offsets request per group."""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

from shared.contracts import utc_now
from shared.lag import consumer_lag, groups_of
from shared.metrics import Metrics
from shared.mongo import Document
from shared.settings import Settings

OUTBOX_COUNT_CAP = 10_000  # beyond this the exact figure matters less than the alarm
_OLDEST_SAMPLE = 20  # lease order is near enough to age order to find the oldest among these


class HasBacklog(Protocol):
    """A reconciler: what it found overdue at its last turn (None before its first)."""

    backlog: Any


async def outbox_backlog(collection: AsyncCollection[Document], now: datetime) -> tuple[int, float]:
    """Unpublished events of one outbox (at most the cap) and the oldest one's age in seconds,
    by its event time. Both use the outbox's (published, lease_until) index."""
    unpublished = {"published": False}
    pending = await collection.find(unpublished, {"_id": 1}).limit(OUTBOX_COUNT_CAP).to_list(None)
    if not pending:
        return 0, 0.0
    oldest = await collection.find(unpublished, {"event.time": 1}).sort(
        "lease_until", 1).limit(_OLDEST_SAMPLE).to_list(None)
    times = [event_time(doc) for doc in oldest]
    ages = [(now - t).total_seconds() for t in times if t is not None]
    return len(pending), max(ages, default=0.0)


def event_time(doc: Document) -> datetime | None:
    raw = (doc.get("event") or {}).get("time")
    if isinstance(raw, datetime):
        return raw
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if raw else None
    except ValueError:
        return None


def report_outboxes(metrics: Metrics, outboxes: Mapping[str, AsyncCollection[Document]]) -> None:
    gauges = metrics.backlogs

    async def refresh() -> None:
        now = utc_now()
        for name, collection in outboxes.items():
            count, age = await outbox_backlog(collection, now)
            gauges.outbox.labels(name).set(count)
            gauges.outbox_age.labels(name).set(age)

    for name in outboxes:  # present from the first scrape, before the first refresh
        gauges.outbox.labels(name).set(0)
    metrics.refresh_with("outbox", refresh)


def report_reconcilers(metrics: Metrics, reconcilers: Mapping[str, HasBacklog],
                       count: Callable[[Any], int]) -> None:
    """What each reconciler found at its last turn (no query: it keeps its backlog)."""
    gauges = metrics.backlogs

    async def refresh() -> None:
        for name, reconciler in reconcilers.items():
            backlog = reconciler.backlog
            gauges.reconciliation.labels(name).set(count(backlog) if backlog else 0)
            gauges.reconciliation_age.labels(name).set(backlog.oldest_seconds if backlog else 0.0)

    metrics.refresh_with("reconciliation", refresh)


def report_consumer_lag(metrics: Metrics, settings: Settings, broker: Any) -> None:
    """The lag of the groups this service's subscribers belong to."""
    report_lag_of(metrics, settings, groups_of(broker))


def report_lag_of(metrics: Metrics, settings: Settings, groups: Mapping[str, Sequence[str]]) -> None:
    gauges = metrics.backlogs

    async def refresh() -> None:
        for lag in await consumer_lag(settings, groups, client_id=f"disposisi-{metrics.service}-lag",
                                      within=settings.metrics_refresh_timeout_seconds):
            gauges.consumer_lag.labels(lag.group, lag.topic).set(lag.behind)

    metrics.refresh_with("consumer_lag", refresh)

