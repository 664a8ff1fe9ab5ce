"""SLA's Kafka subscribers: routed tickets and agencies' updates."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.sla.flows import Sla, UnknownTicket
from shared.contracts import EventType, TicketRouted, TicketUpdate, Topics
from shared.kafka import (
    Outgoing,
    batch_subscriber,
    dead_letter,
    decode_batch,
    decode_event,
    incoming_records,
    publish_all,
)

SERVICE = "sla"


def register(broker: KafkaBroker, sla: Sla) -> None:
    @batch_subscriber(broker, Topics.ROUTED, group_id="disposisi-sla", settings=sla.settings,
                      description="Routing decisions: each opens a ticket with its clocks; a newer "
                                  "assignment re-assigns it, an equal or older one is a duplicate.")
    async def on_tickets_routed(body: list[bytes], message: KafkaMessage) -> None:
        events, rejected = decode_batch(message, TicketRouted, EventType.TICKET_ROUTED,
                                        settings=sla.settings, service=SERVICE)
        await publish_all(broker, rejected)
        await sla.open_tickets(events)
        await publish_all(broker, await sla.apply_parked([str(e.ticket_id) for e in events]))

    @batch_subscriber(broker, Topics.UPDATES, group_id="disposisi-sla-updates", settings=sla.settings,
                      description="Actions on tickets: acknowledged, responded, resolved, rejected, "
                                  "needs_info, citizen_replied, note, reprioritised.")
    async def on_tickets_updates(body: list[bytes], message: KafkaMessage) -> None:
        # One at a time, in order: a ticket's updates share its key and so its partition.
        rejected: list[Outgoing] = []
        for record in incoming_records(message.raw_message):
            try:
                event = decode_event(record, TicketUpdate, EventType.TICKET_UPDATE)
                await sla.apply(str(event.ticket_id), event.data, event.id)
            except UnknownTicket:  # its routing decision may not have been read yet
                await sla.park(record, str(event.ticket_id), event.data, event.id)
            except ValueError as error:  # invalid, or refused (UpdateRefused is a ValueError)
                rejected.append(dead_letter(sla.settings, SERVICE, record, str(error)))
        await publish_all(broker, rejected)

    _ = (on_tickets_routed, on_tickets_updates)
