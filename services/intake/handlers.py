"""Intake's Kafka subscriber: raw submissions from channel adapters."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.intake.domain import idempotency_key
from services.intake.flows import Intake, Submission
from shared.contracts import ComplaintSubmission, EventType, Topics
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

    _ = on_complaints_submitted
