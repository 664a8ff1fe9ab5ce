"""The chat service's Kafka subscriber: tickets' public changes, for the agency's messages to
citizens who complained through WhatsApp or SMS (and whether a ticket waits for their answer)."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.chat.flows import Chat
from shared.contracts import Envelope, EventType, TicketChanged, Topics
from shared.kafka import Outgoing, batch_subscriber, consume_batch

SERVICE = "chat"


def register(broker: KafkaBroker, chat: Chat) -> None:
    settings = chat.settings

    async def take(events: list[Envelope[TicketChanged]]) -> list[Outgoing]:
        await chat.take_changed(events)
        return []

    @batch_subscriber(broker, Topics.CHANGES, group_id="disposisi-chat-changes", settings=settings,
                      description="Tickets' public changes: the agency's messages for citizens "
                                  "of the chat channels, and tickets waiting for their answer.")
    async def on_changed(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, TicketChanged, EventType.TICKET_CHANGED, take,
                            settings=settings, service=SERVICE)

    _ = on_changed
