"""Router's Kafka subscriber: received complaints in, decisions out."""

from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError

from services.router.flows import Router
from shared.contracts import Complaint, Envelope, EventType, Topics, describe_errors
from shared.kafka import Incoming, Outgoing, batch_subscriber, dead_letter, incoming_records, publish_all

SERVICE = "router"


def parse_received(record: Incoming) -> Envelope[Complaint]:
    try:
        event = Envelope[Complaint].model_validate_json(record.value)
    except ValidationError as error:
        raise ValueError(f"invalid complaint.received: {describe_errors(error.errors())}") from error
    if event.type is not EventType.COMPLAINT_RECEIVED:
        raise ValueError(f"type: expected {EventType.COMPLAINT_RECEIVED.value!r}, got {event.type.value!r}")
    return event


def register(broker: KafkaBroker, router: Router) -> None:
    @batch_subscriber(broker, Topics.RECEIVED, group_id="disposisi-router", settings=router.settings,
                      description="Accepted complaints to route by Tupoksi.")
    async def on_complaints_received(body: list[bytes], message: KafkaMessage) -> None:
        outgoing: list[Outgoing] = []
        for record in incoming_records(message.raw_message):
            try:
                outgoing.extend(router.decide(parse_received(record)))
            except ValueError as error:
                outgoing.append(dead_letter(router.settings, SERVICE, record, str(error)))
        await publish_all(broker, outgoing)

    _ = on_complaints_received
