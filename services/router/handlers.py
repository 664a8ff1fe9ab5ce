"""Router's Kafka subscribers: received complaints in, decisions out."""

from collections.abc import Callable, Sequence

from faststream.kafka import KafkaBroker, KafkaMessage

from services.router.flows import Router
from services.router.label_store import LabelStore
from shared.contracts import Complaint, Envelope, EventType, RerouteRequest, Topics
from shared.kafka import Outgoing, batch_subscriber, consume_batch, ensure_topics

SERVICE = "router"


def register(broker: KafkaBroker, router: Router, *,
             on_routed: Callable[[Sequence[Outgoing]], None] | None = None,
             labels: LabelStore | None = None) -> None:
    """``on_routed`` sees each handled batch's outgoing events (the metrics count the
    decisions; a redelivered batch counts again). ``labels`` keeps the desk's corrections
    (labels.py) that reroute requests carry."""

    def decided(outgoing: list[Outgoing]) -> list[Outgoing]:
        if on_routed is not None:
            on_routed(outgoing)
        return outgoing

    async def decide(events: list[Envelope[Complaint]]) -> list[Outgoing]:
        return decided(router.decide_all(events))

    async def reroute(events: list[Envelope[RerouteRequest]]) -> list[Outgoing]:
        outgoing = [out for e in events for out in router.reroute(e)]
        if labels is not None:  # stored before the decisions go out: a failure redelivers both
            await labels.record([doc for e in events if (doc := router.label_of(e)) is not None])
        # A withdrawal may go to an agency the rulebook no longer lists, whose queue may not
        # exist: a broker that does not create topics on demand would refuse it forever.
        known = {topic for tenant in {e.tenant for e in events} for topic in router.queues(tenant)}
        unknown = {o.topic for o in outgoing if o.topic.startswith(Topics.AGENCY_PREFIX)} - known
        if unknown:
            await ensure_topics(router.settings, unknown)
        return decided(outgoing)

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
