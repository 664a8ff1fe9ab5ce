"""The Kafka settings reach the broker: several bootstrap servers, topics created with the
configured replication factor and min.insync.replicas. Runs on the embedded broker and, in the
cluster pass, on the three-broker Apache Kafka cluster (replication 3, min ISR 2)."""

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.contracts import Topics
from shared.embedded import free_port
from shared.kafka import ensure_topics, make_broker
from shared.settings import Settings
from tests.integration.support import read_topic

pytestmark = pytest.mark.integration


async def test_a_bootstrap_list_with_a_dead_server_still_connects(settings: Settings) -> None:
    # A comma-separated list used to reach aiokafka as one host name, so no multi-broker
    # bootstrap (docker-compose, the cluster) could connect at all.
    dead = f"127.0.0.1:{free_port()}"
    listed = settings.model_copy(update={"kafka_bootstrap_servers":
                                         f"{dead},{settings.kafka_bootstrap_servers}"})
    await ensure_topics(listed, [Topics.DEADLETTER])
    broker = make_broker(listed, "bootstrap-test")
    await broker.start()
    try:
        await broker.publish(b'{"probe": 1}', Topics.DEADLETTER, key=b"k")
    finally:
        await broker.stop()
    assert await read_topic(settings.kafka_bootstrap_servers, Topics.DEADLETTER, expect=1) == [
        {"probe": 1}]


async def test_topics_are_created_with_the_configured_replication(settings: Settings) -> None:
    await ensure_topics(settings, [Topics.RECEIVED])
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [described] = await admin.describe_topics([Topics.RECEIVED])
        configs = None
        if settings.kafka_min_insync_replicas > 1:  # topic configs are set only then
            configs = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, Topics.RECEIVED,
                                {"min.insync.replicas": None})])
    finally:
        await admin.close()
    partitions = described["partitions"]
    assert len(partitions) == settings.topic_partitions
    assert {len(p["replicas"]) for p in partitions} == {settings.kafka_replication_factor}
    if configs is not None:
        [response] = configs
        [resource] = response.resources  # (error code, message, type, name, config entries)
        values = {entry[0]: entry[1] for entry in resource[4]}
        assert values["min.insync.replicas"] == str(settings.kafka_min_insync_replicas)
