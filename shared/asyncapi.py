"""The AsyncAPI document of every Disposisi topic, generated from the contract models."""

from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from shared.contracts import (
    AgencyTicket,
    Complaint,
    ComplaintSubmission,
    DeadLetter,
    Envelope,
    Escalation,
    EscalationAcknowledged,
    RerouteRequest,
    TicketChanged,
    TicketOpened,
    TicketRouted,
    TicketUpdate,
    TicketWithdrawn,
    Topics,
)

CHANNELS: list[tuple[str, Any, str]] = [
    (Topics.SUBMITTED, Envelope[ComplaintSubmission],
     "Raw complaints from channel adapters (type complaint.submitted). Intake validates them."),
    (Topics.RECEIVED, Envelope[Complaint],
     "Accepted complaints with their tracking number (type complaint.received)."),
    (Topics.ROUTED, Envelope[TicketRouted],
     "The router's decision with its explanation (type ticket.routed)."),
    (Topics.OPENED, Envelope[TicketOpened],
     "The SLA service stored a ticket (type ticket.opened); intake's reconciliation counts a "
     "complaint as ticketed only after this."),
    (Topics.CHANGES, Envelope[TicketChanged],
     "A ticket as the public may follow it, after each change (type ticket.changed): intake's "
     "tracking view and the settling of citizens' replies are fed from it."),
    (Topics.agency("<CODE>"), Envelope[AgencyTicket] | Envelope[TicketWithdrawn],
     "One queue per agency code: ticket.assigned (never with the identity of an anonymous or "
     "confidential reporter) and ticket.withdrawn when a ticket is re-routed elsewhere."),
    (Topics.UPDATES, Envelope[TicketUpdate],
     "Agencies' actions (type ticket.update): acknowledged, responded, resolved, rejected, "
     "needs_info, citizen_replied, note."),
    (Topics.REROUTE, Envelope[RerouteRequest],
     "Requests for a new routing decision (type ticket.reroute_requested), from the SLA "
     "service after a rejection or a manual assignment by the triage desk."),
    (Topics.ESCALATIONS, Envelope[Escalation],
     "Supervisor alerts (type ticket.escalated), at most one per ticket, clock and level. The "
     "notification service delivers each to the people holding the roles it names."),
    (Topics.ESCALATION_ACKS, Envelope[EscalationAcknowledged],
     "A supervisor acknowledged an escalation (type escalation.acknowledged): its "
     "re-notifications stop (the notification service cancels the step's unsent notices). "
     "Once per escalation step, with a stable event id."),
    (Topics.DEADLETTER, Envelope[DeadLetter],
     "Messages a consumer could not accept, with the reason (type deadletter)."),
]


def document(fmt: str = "yaml") -> str:
    broker = KafkaBroker("kafka:9092", description="Every message is a JSON envelope keyed by "
                         "ticket id; consumers dedupe on the envelope id.")
    for topic, schema, description in CHANNELS:
        broker.publisher(topic, schema=schema, description=description, title=topic)
    spec = AsyncAPI(broker, title="Disposisi events", version="1",
                    description="Event contracts of Disposisi (schema_version 1).")
    built = spec.to_specification()
    return built.to_yaml() if fmt == "yaml" else built.to_json()
