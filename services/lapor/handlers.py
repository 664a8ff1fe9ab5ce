"""The LAPOR! connector's Kafka subscribers: accepted complaints (which tickets are LAPOR!'s)
and tickets' public changes (their steps, as status updates for LAPOR!). Each only stores;
``disposisi lapor export`` hands the stored updates over."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.lapor.flows import Connector
from shared.contracts import Complaint, Envelope, EventType, TicketChanged, Topics
from shared.kafka import Outgoing, batch_subscriber, consume_batch
from shared.settings import Settings

SERVICE = "lapor"


def register(broker: KafkaBroker, connector: Connector, settings: Settings) -> None:
    async def received(events: list[Envelope[Complaint]]) -> list[Outgoing]:
        await connector.take_received(events)
        return []

    async def changed(events: list[Envelope[TicketChanged]]) -> list[Outgoing]:
        await connector.take_changed(events)
        return []

    @batch_subscriber(broker, Topics.RECEIVED, group_id="disposisi-lapor-received",
                      settings=settings,
                      description="Accepted complaints: those of channel lapor, by LAPOR! id.")
    async def on_received(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, Complaint, EventType.COMPLAINT_RECEIVED, received,
                            settings=settings, service=SERVICE)

    @batch_subscriber(broker, Topics.CHANGES, group_id="disposisi-lapor-changes", settings=settings,
                      description="Tickets' public changes: the steps and replies LAPOR! hears of.")
    async def on_changed(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, TicketChanged, EventType.TICKET_CHANGED, changed,
                            settings=settings, service=SERVICE)

    _ = (on_received, on_changed)
