"""Router flows: decide each received complaint and say so on two topics."""

from dataclasses import dataclass

from services.router.domain import Decision, mask_contacts, route
from services.router.rulebook import Rulebook
from shared.contracts import (
    AgencyTicket,
    Complaint,
    Envelope,
    EventType,
    TicketRouted,
    Topics,
    derived_event_id,
    envelope,
)
from shared.kafka import Outgoing
from shared.settings import Settings


@dataclass
class Router:
    settings: Settings
    rulebook: Rulebook

    def decide(self, received: Envelope[Complaint]) -> list[Outgoing]:
        """The routed event (for SLA) and the assignment (for the agency's queue).

        Event ids derive from the received event's id: a redelivered complaint produces the
        same ids, so downstream consumers see a duplicate, never a second ticket.
        """
        complaint = received.data
        decision = route(self.rulebook, complaint.text, complaint.title)
        routed = routed_event(complaint, decision)
        assigned = AgencyTicket(**routed.model_dump())
        ticket_id, tenant = complaint.ticket_id, self.settings.tenant
        return [
            Outgoing(Topics.ROUTED, envelope(
                routed, type=EventType.TICKET_ROUTED, tenant=tenant, ticket_id=ticket_id,
                event_id=derived_event_id("routed", received.id))),
            Outgoing(Topics.agency(decision.agency.code), envelope(
                assigned, type=EventType.TICKET_ASSIGNED, tenant=tenant, ticket_id=ticket_id,
                event_id=derived_event_id("assigned", received.id))),
        ]


def routed_event(complaint: Complaint, decision: Decision) -> TicketRouted:
    hide = mask_contacts if complaint.identity_hidden else str
    return TicketRouted(
        agency=decision.agency.code, agency_name=decision.agency.name,
        authority=decision.agency.authority, priority=decision.priority,
        category=decision.category, routing=decision.explanation, channel=complaint.channel,
        title=hide(complaint.title) if complaint.title else None, text=hide(complaint.text),
        location=complaint.location, attachments=complaint.attachments,
        reporter=None if complaint.identity_hidden else complaint.reporter,
        anonymous=complaint.anonymous, confidential=complaint.confidential,
        submitted_at=complaint.submitted_at,
    )
