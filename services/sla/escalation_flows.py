"""Acknowledging escalations: store the acknowledgement (the commit point), stop the step's
re-notifications on the ticket, audit it, mark the step's notices, announce it.

Every step after the first is idempotent and rebuilt from the stored acknowledgement, so a
repeated request, or the sweep for one that stopped part-way (a crash, the store lost
mid-request), completes it exactly once."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from services.sla.escalation_store import EscalationAcks, EscalationFilter
from services.sla.escalations import (
    AckDoc,
    EscalationPage,
    EscalationView,
    ack_event,
    ack_fields,
    ack_record,
    acknowledge_step,
    escalation_view,
    step_of,
)
from services.sla.flows import Sla
from shared.audit import Actor
from shared.contracts import EventType, Topics, derived_event_id, envelope, utc_now
from shared.mongo import Document
from shared.outbox import OutboxRelay, outbox_fields

log = logging.getLogger(__name__)
_RETRIES = 10  # the ticket is written whole under its version: re-read when another wrote it


class UnknownEscalation(LookupError):
    pass


@dataclass
class EscalationDesk:
    sla: Sla  # its policy (maybe reloaded), ticket store, audit log and settings
    acks: EscalationAcks
    relay: OutboxRelay  # escalation.acknowledged

    async def page(self, where: EscalationFilter, *, offset: int, limit: int) -> EscalationPage:
        found, more = await self.acks.page(where, offset=offset, limit=limit)
        views = await self.views(found)
        # A notice stored while its step was being acknowledged may not carry the marker yet:
        # the acknowledgements read here decide.
        views = [v for v in views if where.state is None or v.state == where.state]
        return EscalationPage(escalations=views, next_offset=offset + limit if more else None)

    async def views(self, escalations: list[Document]) -> list[EscalationView]:
        acks = await self.acks.acks_of(escalations)
        return [escalation_view(e, acks.get(step_of(e))) for e in escalations]

    async def acknowledge(self, escalation_id: str, *, tenant: str, actor: Actor,
                          request_id: str | None) -> Document:
        """Acknowledge the escalation's step (once: a repeat, or another supervisor after the
        first, finds the first acknowledgement and changes nothing); returns the escalation."""
        escalation = await self.acks.escalation(escalation_id, tenant)
        if escalation is None:
            raise UnknownEscalation(f"no escalation {escalation_id}")
        now = utc_now()
        ack = ack_fields(escalation, tenant=tenant, actor=actor, request_id=request_id, now=now)
        event = envelope(ack_event(ack), type=EventType.ESCALATION_ACKNOWLEDGED, tenant=tenant,
                         ticket_id=ack["ticket_id"],
                         event_id=derived_event_id("escalation-ack", ack["_id"]))
        settings = self.sla.settings
        stored = await self.acks.add(ack, outbox_fields(
            Topics.ESCALATION_ACKS, event, now=now, owner=settings.instance_id,
            lease_seconds=settings.outbox_lease_seconds))
        await self.finish(stored)
        return escalation

    async def finish(self, stored: Document) -> None:
        ack = _ack(stored)
        if ack["finished"] != "yes":
            await self._stop_renotifying(ack)
            await self.sla.audit.append([ack_record(ack)])
            await self.acks.mark_escalations(ack)
            await self.acks.set_finished(ack["_id"])
        try:
            await self.relay.publish([stored])
        except Exception as error:  # stored: the outbox sweep publishes it later
            log.warning("announcing an escalation acknowledgement failed, the sweep will retry: %s",
                        error)

    async def _stop_renotifying(self, ack: AckDoc) -> None:
        store = self.sla.store
        for _ in range(_RETRIES):
            ticket = await store.get(ack["ticket_id"])
            if ticket is None:
                return
            changed = acknowledge_step(ticket, ack, self.sla.policy, utc_now())
            if changed is None or await store.save_if_unchanged(changed, ticket["version"]):
                return
        raise RuntimeError(f"ticket {ack['ticket_id']} kept changing; acknowledgement not applied")

    async def sweep(self) -> int:
        """Complete acknowledgements left part-way, then publish unannounced ones."""
        settings = self.sla.settings
        since = utc_now() - timedelta(seconds=settings.outbox_lease_seconds)
        stalled = await self.acks.unfinished(since, settings.scheduler_batch_size)
        for stored in stalled:
            await self.finish(stored)
        return len(stalled) + await self.relay.sweep()


def _ack(stored: Document) -> AckDoc:
    """The acknowledgement's own fields, without its outbox fields."""
    return cast(AckDoc, {name: stored[name] for name in AckDoc.__annotations__})
