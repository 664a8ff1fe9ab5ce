"""End-to-end accounting, driven from the store: a complaint accepted long enough ago that
has no ticket yet gets its ``complaint.received`` published again, under the same event id
(the router and the SLA service treat a repeat as one event). This catches what the broker's
acknowledgement cannot: a log lost with a restarted broker, a routing decision the SLA
service never read, a consumer down longer than the topic's retention. What stays without a
ticket past the alarm threshold is logged by tracking number and makes intake not ready.

Citizens' replies are accounted the same way: a reply the SLA service has not settled
(applied, or refused because the ticket no longer waited) is published again under its
event id until ``ticket.changed`` lists it."""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.contracts import utc_now
from shared.mongo import Document
from shared.outbox import OutboxRelay
from shared.settings import Settings

log = logging.getLogger(__name__)
_IDS_IN_ALARM = 50  # a log line, not a report: the rest are counted


class Ledger(Protocol):
    """Stored documents (with their outbox event) that wait for a downstream confirmation,
    each with its ``submitted_at`` and ``ticket_id``."""

    async def oldest_waiting(self, limit: int) -> list[Document]: ...

    async def count_waiting_before(self, cutoff: datetime) -> int: ...

    async def note_republished(self, ids: Sequence[str], epoch: float) -> None: ...


@dataclass(frozen=True)
class Waiting:
    """How the log and the readiness check name what waits: "complaints" "without a ticket"."""

    items: str
    condition: str


COMPLAINTS_WAITING = Waiting("complaints", "without a ticket")
REPLIES_WAITING = Waiting("citizens' replies", "not applied by the SLA service")


@dataclass(frozen=True)
class Backlog:
    """What was accepted more than ``reconcile_after_seconds`` ago and still waits."""

    overdue: int
    oldest_seconds: float
    checked_at: datetime


def overdue(candidates: list[Document], cutoff: datetime) -> list[Document]:
    """The oldest-first candidates submitted before the cutoff."""
    return [doc for doc in candidates if doc["submitted_at"] < cutoff]


def due_again(docs: list[Document], *, now_epoch: float, after_seconds: float) -> list[Document]:
    """Those not republished within the last ``after_seconds``: each republish gets the
    pipeline that long to answer before the next."""
    return [doc for doc in docs if doc.get("republished_epoch", 0.0) <= now_epoch - after_seconds]


def readiness_problem(backlog: Backlog | None, *, alarm_seconds: float,
                      waiting: Waiting = COMPLAINTS_WAITING) -> str | None:
    if backlog is None:
        return "not checked yet"
    if backlog.oldest_seconds > alarm_seconds:
        return (f"{backlog.overdue} {waiting.items} {waiting.condition}, the oldest for "
                f"{backlog.oldest_seconds:.0f} s (alarm at {alarm_seconds:g} s)")
    return None


class Reconciler:
    def __init__(self, settings: Settings, ledger: Ledger, relay: OutboxRelay, *,
                 waiting: Waiting = COMPLAINTS_WAITING) -> None:
        self.settings = settings
        self.ledger = ledger
        self.relay = relay
        self.waiting = waiting
        self.backlog: Backlog | None = None

    async def turn(self) -> Backlog:
        """Count the backlog, raise the alarm if due, republish the overdue complaints."""
        now = utc_now()
        cutoff = now - timedelta(seconds=self.settings.reconcile_after_seconds)
        batch = self.settings.reconcile_batch_size
        late = overdue(await self.ledger.oldest_waiting(batch), cutoff)
        count = len(late)
        if count == batch:  # there may be more than one batch: count them all (rare, slower)
            count = await self.ledger.count_waiting_before(cutoff)
        oldest = (now - late[0]["submitted_at"]).total_seconds() if late else 0.0
        self.backlog = Backlog(overdue=count, oldest_seconds=oldest, checked_at=now)
        self._alarm(late, now)
        await self._republish(late)
        return self.backlog

    async def after_log_lost(self) -> None:
        """The broker came back without its log (the embedded broker restarted empty): what it
        had acknowledged and nobody had read yet is gone, and waiting out
        ``reconcile_after_seconds`` would keep those citizens waiting minutes. Every one already
        published and still waiting is republished now; a repeat is one event downstream."""
        waiting = await self.ledger.oldest_waiting(self.settings.reconcile_batch_size)
        published = [doc for doc in waiting if doc.get("published")]  # the rest: the outbox's
        if not published:
            return
        log.warning("the broker lost its log: republishing %d %s %s", len(published),
                    self.waiting.items, self.waiting.condition)
        await self.relay.publish([{**doc, "published": False} for doc in published])
        await self.ledger.note_republished([doc["_id"] for doc in published], time.time())

    async def _republish(self, late: list[Document]) -> None:
        epoch = time.time()
        docs = due_again(late, now_epoch=epoch, after_seconds=self.settings.reconcile_after_seconds)
        if not docs:
            return
        log.info("reconciliation: republishing %d %s %s", len(docs), self.waiting.items,
                 self.waiting.condition)
        # Forced through the relay even when marked published: the broker's word was not enough.
        await self.relay.publish([{**doc, "published": False} for doc in docs])
        await self.ledger.note_republished([doc["_id"] for doc in docs], epoch)

    def _alarm(self, late: list[Document], now: datetime) -> None:
        threshold = now - timedelta(seconds=self.settings.reconcile_alarm_seconds)
        stuck = [doc["ticket_id"] for doc in late if doc["submitted_at"] < threshold]
        if not stuck:
            return
        shown = stuck[:_IDS_IN_ALARM]
        more = f" and {len(stuck) - len(shown)} more" if len(stuck) > len(shown) else ""
        # Tracking numbers only: never the complaint or its reporter.
        log.error("reconciliation alarm: %d %s %s for over %g s: %s%s", len(stuck),
                  self.waiting.items, self.waiting.condition, self.settings.reconcile_alarm_seconds,
                  " ".join(shown), more)

    async def readiness(self) -> str | None:
        return readiness_problem(self.backlog, alarm_seconds=self.settings.reconcile_alarm_seconds,
                                 waiting=self.waiting)
