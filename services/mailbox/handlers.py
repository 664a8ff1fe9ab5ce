"""The mailbox's Kafka subscriber: tickets' public changes, for the agency's messages to
citizens who complained by mail. It only stores the mails; the sender sends them."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.mailbox.flows import Mailbox
from shared.contracts import Envelope, EventType, TicketChanged, Topics
from shared.kafka import Outgoing, batch_subscriber, consume_batch

SERVICE = "mailbox"


def register(broker: KafkaBroker, mailbox: Mailbox) -> None:
    settings = mailbox.settings

    async def store_mails(events: list[Envelope[TicketChanged]]) -> list[Outgoing]:
        await mailbox.take_changed(events)
        return []

    @batch_subscriber(broker, Topics.CHANGES, group_id="disposisi-mailbox-changes", settings=settings,
                      description="Tickets' public changes: the agency's messages to citizens "
                                  "who complained by e-mail, sent in the complaint's thread.")
    async def on_changed(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, TicketChanged, EventType.TICKET_CHANGED, store_mails,
                            settings=settings, service=SERVICE)

    _ = on_changed
