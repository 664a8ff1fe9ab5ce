"""Intake's Kafka subscriber: raw submissions from channel adapters."""


from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError

from services.intake.domain import idempotency_key
from services.intake.flows import Intake, Submission
from shared.contracts import ComplaintSubmission, Envelope, EventType, Topics, describe_errors
from shared.kafka import Incoming, Outgoing, batch_subscriber, dead_letter, incoming_records, publish_all

SERVICE = "intake"


def parse_submission(record: Incoming) -> Submission:
    """Decode one record; raise ValueError naming the problem (the dead-letter reason)."""
    try:
        event = Envelope[ComplaintSubmission].model_validate_json(record.value)
    except ValidationError as error:
        raise ValueError(f"invalid submission: {describe_errors(error.errors())}") from error
    if event.type is not EventType.COMPLAINT_SUBMITTED:
        raise ValueError(f"type: expected {EventType.COMPLAINT_SUBMITTED.value!r}, got {event.type.value!r}")
    return Submission(event.data, idempotency_key(event.data, event_id=event.id))


def register(broker: KafkaBroker, intake: Intake) -> None:
    @batch_subscriber(
        broker, Topics.SUBMITTED, group_id="disposisi-intake", settings=intake.settings,
        description="Raw complaints from channel adapters; invalid ones go to the dead letters.",
    )
    async def on_complaints_submitted(body: list[bytes], message: KafkaMessage) -> None:
        submissions: list[Submission] = []
        rejected: list[Outgoing] = []
        for record in incoming_records(message.raw_message):
            try:
                submissions.append(parse_submission(record))
            except ValueError as error:
                rejected.append(dead_letter(intake.settings, SERVICE, record, str(error)))
        await publish_all(broker, rejected)
        if submissions:
            await intake.publish(await intake.store(submissions))

    _ = on_complaints_submitted


