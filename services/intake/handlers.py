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
        submissions = [Submission(e.data, idempotency_key(e.data, event_id=e.id)) for e in events]
        await intake.publish(await intake.store(submissions))
        return []

    async def mark(events: list[Envelope[TicketOpened]]) -> list[Outgoing]:
        await intake.mark_ticketed([str(e.ticket_id) for e in events])
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
