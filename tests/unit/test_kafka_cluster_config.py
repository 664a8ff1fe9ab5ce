"""The cluster script's pure parts: the cluster id it formats storage with, each node's
server.properties, and the version it fetches."""

import base64
import re
import threading
from pathlib import Path

from shared.kafka_cluster import (
    KafkaCluster,
    KafkaClusterError,
    KafkaNode,
    _cluster_id,
    kafka_version,
    server_properties,
)


def test_cluster_ids_are_16_bytes_and_never_read_as_an_option() -> None:
    # base64url may start with "-": kafka-storage then took the id for an option and failed.
    for _ in range(2000):
        made = _cluster_id()
        assert not made.startswith("-")
        assert len(base64.urlsafe_b64decode(made + "==")) == 16


def test_every_listener_is_on_loopback_and_replication_is_as_asked(tmp_path: Path) -> None:
    node = KafkaNode(2, broker_port=19092, controller_port=19093, directory=tmp_path)
    config = dict(line.split("=", 1) for line in
                  server_properties(node, "1@127.0.0.1:1,2@127.0.0.1:19093", 3, 2, 3).splitlines()
                  if line)
    assert config["node.id"] == "2"
    assert config["process.roles"] == "broker,controller"
    for listener in [*config["listeners"].split(","), config["advertised.listeners"]]:
        assert re.fullmatch(r"[A-Z]+://127\.0\.0\.1:\d+", listener)
    assert config["default.replication.factor"] == config["offsets.topic.replication.factor"] == "3"
    assert config["min.insync.replicas"] == config["transaction.state.log.min.isr"] == "2"
    assert config["unclean.leader.election.enable"] == "false"


def test_fetches_a_kafka_4_release() -> None:
    assert re.fullmatch(r"4\.\d+\.\d+", kafka_version())


def test_the_record_limit_is_kafkas_unless_raised(tmp_path: Path) -> None:
    node = KafkaNode(1, broker_port=19092, controller_port=19093, directory=tmp_path)

    def config(**limit: int) -> dict[str, str]:
        text = server_properties(node, "1@127.0.0.1:19093", 1, 1, 3, **limit)
        return dict(line.split("=", 1) for line in text.splitlines() if line)

    assert "message.max.bytes" not in config()
    raised = config(message_max_bytes=4 * 1024 * 1024)
    assert raised["message.max.bytes"] == raised["replica.fetch.max.bytes"] == str(4 * 1024 * 1024)


def test_a_node_is_never_started_from_a_worker_thread(tmp_path: Path) -> None:
    """It would die with that thread (PR_SET_PDEATHSIG): the failover test restarted its
    victim with asyncio.to_thread and every later test ran on two nodes."""
    node = KafkaNode(1, broker_port=19092, controller_port=19093, directory=tmp_path)
    cluster = KafkaCluster(tmp_path, tmp_path, [node], cluster_id=_cluster_id())
    raised: list[BaseException] = []

    def launch() -> None:
        try:
            cluster.launch(node)
        except KafkaClusterError as error:
            raised.append(error)

    worker = threading.Thread(target=launch)
    worker.start()
    worker.join()
    assert len(raised) == 1 and "main thread" in str(raised[0])
    assert node.process is None
