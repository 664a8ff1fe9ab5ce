"""Fixtures: real servers over sockets. The embedded broker and store are started on free
loopback ports unless DISPOSISI_KAFKA_BOOTSTRAP_SERVERS / DISPOSISI_MONGODB_URL point at
real ones. Each test gets its own database; each Kafka-using test its own broker when
embedded (Tansu keeps its log in memory, so a fresh broker is a clean slate).

With DISPOSISI_TEST_KAFKA=cluster the Kafka-using tests run instead on one real Apache Kafka
cluster of three KRaft brokers (shared/kafka_cluster.py), started once per session, with
replication factor 3, min.insync.replicas 2 and idempotent producers. Tests there share the
broker, so before each one every Disposisi topic is deleted (and with it the consumer groups'
offsets on it): each test starts on empty topics, as on a fresh embedded broker."""

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pymongo import AsyncMongoClient

from shared.embedded import EmbeddedServer, free_port, start_kafka, start_store
from shared.kafka_cluster import KafkaCluster, KafkaClusterError, run_sync, start_cluster
from shared.mongo import Document
from shared.settings import Settings

if TYPE_CHECKING:
    from tests.integration.auth_support import Accounts

ROOT = Path(__file__).resolve().parent.parent
DEMO_POLICY = ROOT / "examples" / "policy-demo.yaml"
TEST_AUTH_SECRET = "test-signing-key-" + uuid.uuid4().hex  # 49 characters, fresh each run
CLUSTER_MODE = os.environ.get("DISPOSISI_TEST_KAFKA") == "cluster"
# What the settings fixture and every process a test starts use on the cluster.
CLUSTER_SETTINGS = {"kafka_replication_factor": 3, "kafka_min_insync_replicas": 2,
                    "kafka_idempotent_producer": True}
# The cluster pass uses a lease nearer the production default (15 s) than the embedded pass's
# 2 s: a publish waits for acks=all from three replicas. Before the relay renewed the leases it
# holds (shared/outbox.py), a send slower than the lease was also taken by another replica's
# sweep and sent twice (35 to 188 of 600 escalations in tests/e2e/test_crash.py on a loaded
# machine; 162 of 600 in one CI run on the embedded broker); now a held lease is renewed every
# quarter lease, and only a process stalled for three quarters of one can be overtaken.
CLUSTER_OUTBOX_LEASE = 10.0
# Real Kafka refuses a record over about 1 MB at the broker by default, so nothing that large
# could reach a consumer; a city's operators may raise that limit. The test cluster allows
# 4 MiB, so the poison tests can put a 2 MB record before a consumer, which must dead-letter
# it once and move on, as on the embedded broker (Tansu has no such limit).
CLUSTER_MESSAGE_MAX_BYTES = 4 * 1024 * 1024
# For a test that starts an embedded broker of its own (to stop it), in either mode.
TEST_SESSION_TIMEOUT_MS = 3000
TEST_HEARTBEAT_INTERVAL_MS = 750
EMBEDDED_KAFKA_SETTINGS = {"kafka_replication_factor": 1, "kafka_min_insync_replicas": 1,
                           "kafka_idempotent_producer": False, "outbox_lease_seconds": 2.0}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CLUSTER_MODE:
        # Nothing of these touches the cluster: on it they would repeat the embedded pass.
        reason = ("uses only an embedded broker or store it starts itself, not the cluster: "
                  "the embedded pass runs it, the same")
        marker = "own_servers"
    else:
        reason = "needs the three-broker Kafka cluster: DISPOSISI_TEST_KAFKA=cluster (.ci/run's second pass)"
        marker = "cluster"
    for item in items:
        if item.get_closest_marker(marker):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def _quick_group_joins() -> Iterator[None]:
    """On the embedded broker, a shorter consumer session for everything the tests start (the
    settings fixture, `disposisi dev`, spawned services read it from the environment): Tansu
    holds each group join for about half the session, 5 s at the default of 10 s, and a test
    that serves several apps waits for each one's groups in turn. 3 s (a first message 2 s after
    the consumer starts, against 3 s at 6 s) took the integration tests of intake and the SLA
    from 137-177 s to 108-142 s, alternating, on a loaded machine; the heartbeat, a quarter of
    it, still gives a consumer starved of CPU three more chances before the group gives its
    partitions away. A real Kafka refuses less than 6 s (group.min.session.timeout.ms), so the
    cluster pass keeps the default (its joins are not held)."""
    names = {"DISPOSISI_KAFKA_SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
             "DISPOSISI_KAFKA_HEARTBEAT_INTERVAL_MS": str(TEST_HEARTBEAT_INTERVAL_MS)}
    if CLUSTER_MODE or any(name in os.environ for name in names):
        yield
        return
    os.environ.update(names)
    try:
        yield
    finally:
        for name in names:
            os.environ.pop(name, None)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """The session's real Kafka cluster (cluster mode only)."""
    if not CLUSTER_MODE:
        raise RuntimeError("kafka_cluster needs DISPOSISI_TEST_KAFKA=cluster")
    cluster = _start_cluster(tmp_path_factory)
    try:
        yield cluster
    finally:
        cluster.stop()


def _start_cluster(tmp_path_factory: pytest.TempPathFactory, attempts: int = 3) -> KafkaCluster:
    """Start the session's cluster, again on fresh ports when a node dies while starting: the
    free ports are picked before Java binds them, and a port taken meanwhile by another
    process (a peer speaking another protocol) has killed a node with an OutOfMemoryError at
    start-up. Every test of the pass depends on this one cluster."""
    for attempt in range(1, attempts + 1):
        try:
            return start_cluster(tmp_path_factory.mktemp("kafka-cluster"), brokers=3,
                                 message_max_bytes=CLUSTER_MESSAGE_MAX_BYTES)
        except KafkaClusterError as error:
            if attempt == attempts:
                raise
            print(f"the Kafka cluster did not start ({error}); starting it again", file=sys.stderr)
    raise AssertionError("unreachable")


@pytest.fixture(autouse=True)
def _on_clean_cluster(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cluster mode, for tests that use Kafka: empty topics, and the cluster's address and
    replication settings in the environment, so processes a test starts (``disposisi dev``,
    services) use the cluster too."""
    if not CLUSTER_MODE or not _uses_kafka(request.node):
        return
    cluster: KafkaCluster = request.getfixturevalue("kafka_cluster")
    dead = [node for node in cluster.nodes if not node.alive()]
    assert not dead, (f"kafka node {dead[0].node_id} of the test cluster is down (a test that "
                      f"killed it did not restart it); see {dead[0].log_path}")
    monkeypatch.setenv("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS", cluster.bootstrap)
    for name, value in CLUSTER_SETTINGS.items():
        monkeypatch.setenv(f"DISPOSISI_{name.upper()}", str(value).lower())
    run_sync(cluster.delete_topics(prefix="disposisi."))


def _uses_kafka(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(m) for m in ("integration", "e2e", "cluster")) or \
        "kafka_bootstrap" in getattr(item, "fixturenames", ())


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("DISPOSISI_MONGODB_URL")
    if external:
        yield external
        return
    server = start_store(free_port(), tmp_path_factory.mktemp("mongo"))
    try:
        yield f"mongodb://{server.address}/?directConnection=true"
    finally:
        server.stop()


@pytest.fixture
def kafka_server(tmp_path: Path) -> Iterator[EmbeddedServer | None]:
    if CLUSTER_MODE or os.environ.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    server = start_kafka(free_port(), tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kafka_bootstrap(kafka_server: EmbeddedServer | None) -> str:
    if kafka_server is None:
        return os.environ["DISPOSISI_KAFKA_BOOTSTRAP_SERVERS"]
    return kafka_server.address


@pytest.fixture
def settings(kafka_bootstrap: str, mongodb_url: str) -> Settings:
    """Settings for one test: its own database, fast loops, the 5-second demo policy (and in
    cluster mode the replication settings, from the environment `_on_clean_cluster` set)."""
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap, mongodb_url=mongodb_url,
        mongodb_database=f"test_{uuid.uuid4().hex[:12]}", sla_policy=DEMO_POLICY,
        intake_port=free_port(), sla_port=free_port(), router_port=free_port(),
        outbox_sweep_seconds=0.5, outbox_lease_seconds=CLUSTER_OUTBOX_LEASE if CLUSTER_MODE else 2.0,
        scheduler_interval_seconds=0.2,
        late_after_seconds=3.0, topic_partitions=2, instance_id=f"test-{uuid.uuid4().hex[:6]}",
        auth_secret=TEST_AUTH_SECRET,
        # the second opinion trains only where a test gives it examples (training on the
        # packaged corpus costs every router start a model fit on a busy machine)
        second_opinion_training=[],
    )


@pytest.fixture
async def mongo(settings: Settings) -> AsyncIterator[AsyncMongoClient[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        yield client
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()


@pytest.fixture
async def accounts(settings: Settings, mongo: AsyncMongoClient[Document]) -> "Accounts":
    """Users and API keys in the test's database, as an administrator makes them."""
    from tests.integration.auth_support import Accounts

    return Accounts(settings, mongo)
