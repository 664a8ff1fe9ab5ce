"""Intake's Kafka subscriber: raw submissions from channel adapters."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.intake.domain import idempotency_key
from services.intake.flows import Intake, Submission
from shared.contracts import ComplaintSubmission, EventType, TicketOpened, Topics
from shared.kafka import batch_subscriber, decode_batch, publish_all

SERVICE = "intake"


def register(broker: KafkaBroker, intake: Intake) -> None:
    @batch_subscriber(
        broker, Topics.SUBMITTED, group_id="disposisi-intake", settings=intake.settings,
        description="Raw complaints from channel adapters; invalid ones go to the dead letters.",
    )
    async def on_complaints_submitted(body: list[bytes], message: KafkaMessage) -> None:
        events, rejected = decode_batch(message, ComplaintSubmission, EventType.COMPLAINT_SUBMITTED,
                                        settings=intake.settings, service=SERVICE, needs_ticket=False)
        await publish_all(broker, rejected)
        if events:
            submissions = [Submission(e.data, idempotency_key(e.data, event_id=e.id)) for e in events]
            await intake.publish(await intake.store(submissions))

    @batch_subscriber(
        broker, Topics.OPENED, group_id="disposisi-intake-opened", settings=intake.settings,
        description="Tickets the SLA service opened: their complaints are no longer reconciled.",
    )
    async def on_tickets_opened(body: list[bytes], message: KafkaMessage) -> None:
        events, rejected = decode_batch(message, TicketOpened, EventType.TICKET_OPENED,
                                        settings=intake.settings, service=SERVICE)
        await publish_all(broker, rejected)
        await intake.mark_ticketed([str(e.ticket_id) for e in events])

    _ = (on_complaints_submitted, on_tickets_opened)
