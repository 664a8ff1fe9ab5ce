"""Router's Kafka subscribers: received complaints in, decisions out."""

from faststream.kafka import KafkaBroker, KafkaMessage

from services.router.flows import Router
from shared.contracts import Complaint, Envelope, EventType, RerouteRequest, Topics
from shared.kafka import Outgoing, batch_subscriber, consume_batch

SERVICE = "router"


def register(broker: KafkaBroker, router: Router) -> None:
    async def decide(events: list[Envelope[Complaint]]) -> list[Outgoing]:
        return [out for e in events for out in router.decide(e)]

    async def reroute(events: list[Envelope[RerouteRequest]]) -> list[Outgoing]:
        return [out for e in events for out in router.reroute(e)]

    @batch_subscriber(broker, Topics.RECEIVED, group_id="disposisi-router", settings=router.settings,
                      description="Accepted complaints to route by Tupoksi.")
    async def on_complaints_received(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, Complaint, EventType.COMPLAINT_RECEIVED, decide,
                            settings=router.settings, service=SERVICE)

    @batch_subscriber(broker, Topics.REROUTE, group_id="disposisi-router-reroute",
                      settings=router.settings,
                      description="Rejected or hand-assigned tickets that need a new decision.")
    async def on_tickets_reroute(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, RerouteRequest, EventType.REROUTE_REQUESTED, reroute,
                            settings=router.settings, service=SERVICE)

    _ = (on_complaints_received, on_tickets_reroute)
