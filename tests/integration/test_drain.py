"""How far a consumer group is behind, as `disposisi dev` measures it before stopping the
broker: the records on a topic the group has not committed. Runs on the embedded broker and,
with DISPOSISI_TEST_KAFKA=cluster, on Apache Kafka, where a consumer's own metadata knows
nothing of topics it does not read (the count was 0 there whatever the backlog)."""

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from services.drain import Backlog, backlog, partitions_of
from shared.contracts import Topics
from shared.kafka import ensure_topics
from shared.settings import Settings
from tests.integration.support import produce

pytestmark = pytest.mark.integration

GROUP = "disposisi-sla"


async def test_backlog_counts_what_a_group_has_not_committed(settings: Settings) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    await ensure_topics(settings, [Topics.ROUTED])
    await produce(bootstrap, Topics.ROUTED, [(f"T-{i}", b"{}") for i in range(7)])
    groups = {GROUP: (Topics.ROUTED,)}

    assert await backlog(settings, groups) == [Backlog(GROUP, Topics.ROUTED, 7)]

    await _commit_to_end(bootstrap)
    assert await backlog(settings, groups) == []


async def _commit_to_end(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        partitions = await partitions_of(admin, [Topics.ROUTED])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()
