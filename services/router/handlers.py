"""Router's Kafka subscriber: received complaints in, decisions out."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.router.flows import Router
from shared.contracts import Complaint, EventType, RerouteRequest, Topics
from shared.kafka import batch_subscriber, decode_batch, publish_all

SERVICE = "router"


def register(broker: KafkaBroker, router: Router) -> None:
    @batch_subscriber(broker, Topics.RECEIVED, group_id="disposisi-router", settings=router.settings,
                      description="Accepted complaints to route by Tupoksi.")
    async def on_complaints_received(body: list[bytes], message: KafkaMessage) -> None:
        events, rejected = decode_batch(message, Complaint, EventType.COMPLAINT_RECEIVED,
                                        settings=router.settings, service=SERVICE)
        await publish_all(broker, [*rejected, *(out for e in events for out in router.decide(e))])

    @batch_subscriber(broker, Topics.REROUTE, group_id="disposisi-router-reroute",
                      settings=router.settings,
                      description="Rejected or hand-assigned tickets that need a new decision.")
    async def on_tickets_reroute(body: list[bytes], message: KafkaMessage) -> None:
        events, rejected = decode_batch(message, RerouteRequest, EventType.REROUTE_REQUESTED,
                                        settings=router.settings, service=SERVICE)
        await publish_all(broker, [*rejected, *(out for e in events for out in router.reroute(e))])

    _ = (on_complaints_received, on_tickets_reroute)
