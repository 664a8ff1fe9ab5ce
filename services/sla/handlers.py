"""SLA's Kafka subscribers: routed tickets and agencies' updates."""

from typing import TypeVar

from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel, ValidationError

from services.sla.flows import Sla, UnknownTicket, UpdateRefused
from shared.contracts import Envelope, EventType, TicketRouted, TicketUpdate, Topics, describe_errors
from shared.kafka import Incoming, Outgoing, batch_subscriber, dead_letter, incoming_records, publish_all

SERVICE = "sla"
Data = TypeVar("Data", bound=BaseModel)


def parse(record: Incoming, model: type[Data], expected: EventType) -> Envelope[Data]:
    """Decode one record; raise ValueError naming the problem (the dead-letter reason)."""
    try:
        event = Envelope[model].model_validate_json(record.value)  # type: ignore[valid-type]
    except ValidationError as error:
        raise ValueError(f"invalid {expected.value}: {describe_errors(error.errors())}") from error
    if event.type is not expected:
        raise ValueError(f"type: expected {expected.value!r}, got {event.type.value!r}")
    if not event.ticket_id:
        raise ValueError("ticket_id: required")
    return event


def register(broker: KafkaBroker, sla: Sla) -> None:
    @batch_subscriber(broker, Topics.ROUTED, group_id="disposisi-sla", settings=sla.settings,
                      description="Routing decisions: each opens a ticket with its clocks.")
    async def on_tickets_routed(body: list[bytes], message: KafkaMessage) -> None:
        routed, rejected = [], []
        for record in incoming_records(message.raw_message):
            try:
                routed.append(parse(record, TicketRouted, EventType.TICKET_ROUTED))
            except ValueError as error:
                rejected.append(dead_letter(sla.settings, SERVICE, record, str(error)))
        await publish_all(broker, rejected)
        await sla.open_tickets(routed)

    @batch_subscriber(broker, Topics.UPDATES, group_id="disposisi-sla-updates", settings=sla.settings,
                      description="Agencies' actions: acknowledged, responded, resolved, ...")
    async def on_tickets_updates(body: list[bytes], message: KafkaMessage) -> None:
        rejected: list[Outgoing] = []
        for record in incoming_records(message.raw_message):
            try:
                event = parse(record, TicketUpdate, EventType.TICKET_UPDATE)
                await sla.apply(str(event.ticket_id), event.data, event.id)
            except (ValueError, UnknownTicket) as error:  # UpdateRefused is a ValueError
                rejected.append(dead_letter(sla.settings, SERVICE, record, str(error)))
        await publish_all(broker, rejected)

    _ = (on_tickets_routed, on_tickets_updates, UpdateRefused)
