"""Intake's Kafka subscriber: raw submissions from channel adapters."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.intake.domain import idempotency_key
from services.intake.flows import Intake, Submission
from shared.contracts import (
    ComplaintSubmission,
    Envelope,
    EventType,
    TicketChanged,
    TicketOpened,
    Topics,
)
from shared.kafka import Outgoing, batch_subscriber, consume_batch

SERVICE = "intake"


def register(broker: KafkaBroker, intake: Intake) -> None:
    async def accept(events: list[Envelope[ComplaintSubmission]]) -> list[Outgoing]:
        # Idempotent by event id: a redelivered submission finds its stored complaint.
        # The tenant is the event's: one this deployment serves, or the record is refused.
        submissions = []
        for e in events:
            tenant = intake.registry.get(e.tenant).id
            submissions.append(Submission(e.data, idempotency_key(e.data, tenant=tenant,
                                                                  event_id=e.id), tenant=tenant))
        for e in events:
            link = e.data.linked_to
            if link is not None and not intake.registry.forwards_from(e.tenant, link.tenant):
                # Only a city's forwarding may link (its progress then flows to that ticket).
                raise ValueError(f"linked_to: tenant {link.tenant!r} does not forward complaints "
                                 f"to {e.tenant!r} on this deployment")
        await intake.publish(await intake.store(submissions))
        return []

    async def mark(events: list[Envelope[TicketOpened]]) -> list[Outgoing]:
        for tenant in {e.tenant for e in events}:
            await intake.mark_ticketed([str(e.ticket_id) for e in events if e.tenant == tenant],
                                       tenant=tenant)
        return []

    async def track(events: list[Envelope[TicketChanged]]) -> list[Outgoing]:
        await intake.track(events)
        return []

    @batch_subscriber(
        broker, Topics.SUBMITTED, group_id="disposisi-intake", settings=intake.settings,
        description="Raw complaints from channel adapters; invalid ones go to the dead letters.",
    )
    async def on_complaints_submitted(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, ComplaintSubmission, EventType.COMPLAINT_SUBMITTED,
                            accept, settings=intake.settings, service=SERVICE, needs_ticket=False)

    @batch_subscriber(
        broker, Topics.OPENED, group_id="disposisi-intake-opened", settings=intake.settings,
        description="Tickets the SLA service opened: their complaints are no longer reconciled.",
    )
    async def on_tickets_opened(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, TicketOpened, EventType.TICKET_OPENED, mark,
                            settings=intake.settings, service=SERVICE)

    @batch_subscriber(
        broker, Topics.CHANGES, group_id="disposisi-intake-tracking", settings=intake.settings,
        description="Tickets' public state after each change: the tracking view, and which "
                    "citizens' replies the SLA service settled.",
    )
    async def on_tickets_changed(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, TicketChanged, EventType.TICKET_CHANGED, track,
                            settings=intake.settings, service=SERVICE)

    _ = (on_complaints_submitted, on_tickets_opened, on_tickets_changed)
