"""SLA's Kafka subscribers: routed tickets and agencies' updates."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.sla.flows import AlreadyRefused, Sla
from shared.contracts import Envelope, EventType, TicketRouted, TicketUpdate, Topics
from shared.kafka import (
    RECORD_FAULTS,
    Decoded,
    Incoming,
    Outgoing,
    batch_subscriber,
    consume_batch,
    consumed,
    dead_letter,
    decode_event,
    incoming_records,
    publish_all,
    refusal,
)
from shared.telemetry import tracer_for

SERVICE = "sla"


def register(broker: KafkaBroker, sla: Sla) -> None:
    async def open_tickets(events: list[Envelope[TicketRouted]]) -> list[Outgoing]:
        # Idempotent: a known ticket id or an equal assignment changes nothing.
        await sla.open_tickets(events)
        await sla.apply_parked([str(e.ticket_id) for e in events])  # dead-letters refused ones
        return []

    async def apply_update(record: Incoming) -> Outgoing | None:
        """Apply one record (once: a repeated event id changes nothing); its dead letter when
        it is invalid or refused. A failure of the store raises: the batch is redelivered."""
        try:
            event = decode_event(record, TicketUpdate, EventType.TICKET_UPDATE, settings=sla.settings)
        except ValueError as error:
            return dead_letter(sla.settings, SERVICE, record, str(error))
        try:
            with consumed(tracer_for(broker), [Decoded(record, event)]):
                await sla.take_update(record, str(event.ticket_id), event.data, event.id,
                                      tenant=event.tenant)
        except AlreadyRefused:  # a republished reply: its one dead letter was sent before
            return None
        except RECORD_FAULTS as error:  # refused (UpdateRefused is a ValueError)
            return dead_letter(sla.settings, SERVICE, record, refusal(error))
        return None

    @batch_subscriber(broker, Topics.ROUTED, group_id="disposisi-sla", settings=sla.settings,
                      description="Routing decisions: each opens a ticket with its clocks; a newer "
                                  "assignment re-assigns it, an equal or older one is a duplicate.")
    async def on_tickets_routed(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, TicketRouted, EventType.TICKET_ROUTED, open_tickets,
                            settings=sla.settings, service=SERVICE)

    @batch_subscriber(broker, Topics.UPDATES, group_id="disposisi-sla-updates", settings=sla.settings,
                      description="Actions on tickets: acknowledged, responded, resolved, rejected, "
                                  "needs_info, citizen_replied, note, reprioritised.")
    async def on_tickets_updates(body: list[bytes], message: KafkaMessage) -> None:
        # One at a time, in order: a ticket's updates share its key and so its partition. The
        # dead letters go last, so a redelivered batch never sends one twice.
        rejected = [letter for record in incoming_records(message.raw_message)
                    if (letter := await apply_update(record)) is not None]
        await publish_all(broker, rejected)

    _ = (on_tickets_routed, on_tickets_updates)
