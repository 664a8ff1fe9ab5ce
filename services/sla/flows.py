"""SLA flows: open tickets, apply agencies' updates, fire due escalations."""

from dataclasses import dataclass
from datetime import datetime

from services.sla.domain import (
    Ticket,
    UpdateRefused,
    apply_update,
    claim_id,
    due_escalations,
    mark_fired,
    new_ticket,
)
from services.sla.policy import Policy
from services.sla.store import TicketStore
from shared.contracts import (
    Envelope,
    Escalation,
    EventType,
    TicketRouted,
    TicketUpdate,
    Topics,
    derived_event_id,
    envelope,
    utc_now,
)
from shared.mongo import Document
from shared.outbox import OutboxRelay, outbox_fields
from shared.settings import Settings

__all__ = ["Sla", "UnknownTicket", "UpdateRefused"]


class UnknownTicket(LookupError):
    pass


@dataclass
class Sla:
    settings: Settings
    policy: Policy
    store: TicketStore
    relay: OutboxRelay

    async def open_tickets(self, routed: list[Envelope[TicketRouted]]) -> int:
        now = utc_now()
        tickets = [new_ticket(str(e.ticket_id), e.data, self.policy, now=now) for e in routed]
        return await self.store.add_new(tickets)

    async def apply(self, ticket_id: str, update: TicketUpdate, event_id: str) -> Ticket:
        """Apply an update once: a repeated event id returns the ticket unchanged."""
        for _ in range(10):  # optimistic concurrency: re-read when another writer got there first
            ticket = await self.store.get(ticket_id)
            if ticket is None:
                raise UnknownTicket(f"no ticket {ticket_id}")
            if event_id in ticket["applied_events"]:
                return ticket
            changed = apply_update(ticket, update, event_id=event_id, now=utc_now())
            if await self.store.save_if_unchanged(changed, ticket["version"]):
                return changed
        raise RuntimeError(f"ticket {ticket_id} kept changing; update not applied")

    async def escalate_due(self) -> int:
        """One scheduler turn: claim and publish every escalation now due; returns how many
        this replica fired."""
        now = utc_now()
        tickets = await self.store.due(now, self.settings.scheduler_batch_size)
        dues = [(t, due_escalations(t, now, late_after_seconds=self.settings.late_after_seconds))
                for t in tickets]
        # Escalations are stored before tickets are marked: a crash in between leaves them due,
        # and the next turn's claim of the same ids is a no-op; the other order could lose one.
        mine = await self.store.claim(
            [self._escalation_doc(t, claim_id(t, d), d.escalation, now) for t, due in dues for d in due],
            self.settings.instance_id)
        for ticket, due in dues:
            # Another replica may have moved the ticket on; then it did this same work.
            await self.store.save_if_unchanged(mark_fired(ticket, due, now), ticket["version"])
        await self.relay.publish(mine)
        return len(mine)

    def _escalation_doc(self, ticket: Ticket, key: str, escalation: Escalation,
                        now: datetime) -> Document:
        event = envelope(escalation, type=EventType.TICKET_ESCALATED, tenant=self.settings.tenant,
                         ticket_id=ticket["_id"], event_id=derived_event_id("escalation", key))
        return {"_id": key, "ticket_id": ticket["_id"], "agency": escalation.agency,
                "clock": escalation.clock, "level": escalation.level, "late": escalation.late,
                "fired_at": now,
                **outbox_fields(Topics.ESCALATIONS, event, now=now, owner=self.settings.instance_id,
                                lease_seconds=self.settings.outbox_lease_seconds)}
