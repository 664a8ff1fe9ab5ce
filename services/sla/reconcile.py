"""Escalations the broker acknowledged and then lost, found from the store: each published
escalation keeps where the broker said it put it (partition and offset). For a while after
firing (``escalation_watch_seconds``) it is read back from the escalations topic's log; one
that is not there (a broker restarted with an empty log, a recreated topic) is re-announced
under its first event id, so a consumer that dedupes by event id sees it once. What stays
missing past the alarm threshold is logged by notice id and makes the service not ready.

Nothing reads the escalations topic and confirms delivery yet; once a notification consumer
does, its confirmation is what should end the watch, as ``ticket.opened`` ends intake's."""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.sla.store import TicketStore
from shared.contracts import Topics, utc_now
from shared.kafka_log import Place, event_ids_at
from shared.mongo import Document
from shared.outbox import OutboxRelay
from shared.settings import Settings

log = logging.getLogger(__name__)
_IDS_IN_ALARM = 50  # a log line, not a report: the rest are counted


@dataclass(frozen=True)
class Backlog:
    """Escalations not found in the log at the last check (re-announced since)."""

    missing: int
    oldest_seconds: float
    checked_at: datetime


def place(doc: Document) -> Place | None:
    where = doc.get("log")
    return None if where is None else (where["partition"], where["offset"])


def lost(docs: list[Document], held: dict[Place, str]) -> list[Document]:
    """The escalations whose place in the log does not hold their event (or is unknown)."""
    return [doc for doc in docs
            if (where := place(doc)) is None or held.get(where) != doc["event"]["id"]]


def due_again(docs: list[Document], *, now_epoch: float, after_seconds: float) -> list[Document]:
    """Those not re-announced within the last ``after_seconds``."""
    return [doc for doc in docs if (doc.get("reannounced_epoch") or 0.0) <= now_epoch - after_seconds]


def readiness_problem(backlog: Backlog | None, now: datetime, *,
                      alarm_seconds: float) -> str | None:
    if backlog is None:
        return "escalations not checked against the log yet"
    unchecked = (now - backlog.checked_at).total_seconds()
    if unchecked > alarm_seconds:
        return f"escalations not checked against the log for {unchecked:.0f} s"
    if backlog.oldest_seconds > alarm_seconds:
        return (f"{backlog.missing} escalations missing from the log, the oldest fired "
                f"{backlog.oldest_seconds:.0f} s ago (alarm at {alarm_seconds:g} s)")
    return None


class EscalationReconciler:
    def __init__(self, settings: Settings, store: TicketStore, relay: OutboxRelay) -> None:
        self.settings = settings
        self.store = store
        self.relay = relay  # must keep positions (``keep_positions=True``)
        self.backlog: Backlog | None = None

    async def turn(self) -> Backlog:
        """Read back the escalations due a check, raise the alarm if due, re-announce the
        missing ones."""
        settings = self.settings
        now = utc_now()
        docs = await self.store.escalations_to_check(
            fired_since=now - timedelta(seconds=settings.escalation_watch_seconds),
            fired_before=now - timedelta(seconds=settings.escalation_check_after_seconds),
            limit=settings.escalation_check_batch_size)
        places = [where for doc in docs if (where := place(doc)) is not None]
        held = await event_ids_at(settings, Topics.ESCALATIONS, places) if places else {}
        missing = lost(docs, held)
        await self.store.note_checked([doc["_id"] for doc in docs], time.time())
        oldest = max(((now - doc["fired_at"]).total_seconds() for doc in missing), default=0.0)
        self.backlog = Backlog(missing=len(missing), oldest_seconds=oldest, checked_at=now)
        self._alarm(missing, now)
        await self._reannounce(missing)
        return self.backlog

    async def _reannounce(self, missing: list[Document]) -> None:
        epoch = time.time()
        due = due_again(missing, now_epoch=epoch,
                        after_seconds=self.settings.escalation_check_after_seconds)
        mine = [doc for doc in due if await self.store.claim_reannouncement(doc, epoch)]
        if not mine:
            return
        log.info("escalation reconciliation: re-announcing %d escalations missing from the log",
                 len(mine))
        # Forced through the relay although marked published: the broker's word was not enough.
        await self.relay.publish([{**doc, "published": False} for doc in mine])

    def _alarm(self, missing: list[Document], now: datetime) -> None:
        threshold = now - timedelta(seconds=self.settings.escalation_alarm_seconds)
        stuck = [doc["_id"] for doc in missing if doc["fired_at"] < threshold]
        if not stuck:
            return
        shown = stuck[:_IDS_IN_ALARM]
        more = f" and {len(stuck) - len(shown)} more" if len(stuck) > len(shown) else ""
        # Notice ids (ticket, assignment, clock, level, repeat): never names or text.
        log.error("escalation reconciliation alarm: %d escalations missing from the log over "
                  "%g s after firing: %s%s", len(stuck), self.settings.escalation_alarm_seconds,
                  " ".join(shown), more)

    async def readiness(self) -> str | None:
        return readiness_problem(self.backlog, utc_now(),
                                 alarm_seconds=self.settings.escalation_alarm_seconds)
