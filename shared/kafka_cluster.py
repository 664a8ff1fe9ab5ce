"""A real Apache Kafka cluster on loopback, without Docker: Kafka's own jars fetched with Maven
(tools/kafka/pom.xml) into ~/.cache/disposisi/kafka-<version>/, and N KRaft nodes (each both
broker and controller) started as Java processes. Used by the cluster test mode and by
``python -m shared.kafka_cluster up --dir D`` for trying Disposisi on real Kafka by hand."""

import argparse
import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    NodeNotReadyError,
    RequestTimedOutError,
    UnknownTopicOrPartitionError,
)
from aiokafka.helpers import create_ssl_context

from shared.embedded import LOOPBACK, EmbeddedServerError, die_with_parent, free_port, port_is_open

POM = Path(__file__).resolve().parent.parent / "tools" / "kafka" / "pom.xml"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "disposisi"
T = TypeVar("T")

LOG4J2 = """\
status = warn
appender.file.type = Console
appender.file.name = out
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.raft.name = org.apache.kafka.raft
logger.raft.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
"""


class KafkaClusterError(EmbeddedServerError):
    """The cluster could not be fetched or started; the message says why and where to look."""


def kafka_version() -> str:
    found = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if not found:
        raise KafkaClusterError(f"{POM}: no <kafka.version> property")
    return found.group(1)


def fetch_jars(cache: Path = CACHE) -> Path:
    """The directory of Kafka's jars, fetched once with Maven (later calls find them cached)."""
    libs = cache / f"kafka-{kafka_version()}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise KafkaClusterError("a real Kafka cluster needs Java 17+ and Maven (mvn) on PATH")
    shutil.rmtree(libs, ignore_errors=True)  # a fetch cut short must not leave stray jars
    libs.mkdir(parents=True)
    done = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={libs}"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KafkaClusterError(f"mvn could not fetch Kafka's jars:\n{done.stdout}{done.stderr}")
    marker.touch()
    return libs


@dataclass
class KafkaNode:
    """One KRaft node: broker and controller in one JVM."""

    node_id: int
    broker_port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.broker_port}"

    @property
    def config(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.directory / "kafka.log"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class KafkaCluster:
    libs: Path
    work_dir: Path
    nodes: list[KafkaNode]
    cluster_id: str
    heap: str = "-Xmx512m"
    _logs: list[IO[bytes]] = field(default_factory=list)
    # What the harness's own clients need to talk to it (a secured listener's credentials).
    client_options: dict[str, Any] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    def java(self, main: str, *args: str) -> list[str]:
        return ["java", self.heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
                "-cp", f"{self.libs}/*", main, *args]

    def launch(self, node: KafkaNode) -> None:
        # The node dies with the thread that started it (PR_SET_PDEATHSIG follows the thread,
        # not the process): started from a worker thread (asyncio.to_thread), it got SIGTERM
        # as soon as that worker ended, and the cluster silently went on with two nodes.
        if threading.current_thread() is not threading.main_thread():
            raise KafkaClusterError(f"kafka node {node.node_id}: start (or restart) nodes from "
                                    "the main thread; one started from another thread is "
                                    "stopped when that thread ends")
        log = node.log_path.open("ab")
        self._logs.append(log)
        node.process = subprocess.Popen(self.java("kafka.Kafka", str(node.config)), stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)

    def kill(self, node_id: int) -> None:
        """kill -9 one node: no orderly shutdown, no leadership hand-over."""
        node = self.node(node_id)
        if node.process is not None and node.alive():
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()

    def restart(self, node_id: int, timeout: float = 120.0) -> None:
        node = self.node(node_id)
        self.kill(node_id)
        self.launch(node)
        self.wait_listening([node], timeout)
        self.wait_brokers(len(self.nodes), timeout)

    def stop(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            if node.process is not None and node.alive():
                node.process.terminate()
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def wait_listening(self, nodes: list[KafkaNode], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for node in nodes:
            while not port_is_open(node.broker_port):
                if not node.alive():
                    raise KafkaClusterError(f"kafka node {node.node_id} exited; see {node.log_path}")
                if time.monotonic() > deadline:
                    raise KafkaClusterError(f"kafka node {node.node_id} did not listen on "
                                            f"{node.address} within {timeout:.0f} s; see {node.log_path}")
                time.sleep(0.2)

    def wait_brokers(self, count: int, timeout: float) -> None:
        """Until the cluster's metadata lists ``count`` live brokers (the controllers elected a
        leader and every broker registered)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if run_sync(self._broker_count()) >= count:
                    return
            except Exception:  # not answering yet; retried until the deadline
                pass
            if time.monotonic() > deadline:
                raise KafkaClusterError(f"fewer than {count} brokers registered within "
                                        f"{timeout:.0f} s; see the logs in {self.work_dir}")
            time.sleep(0.5)

    async def _broker_count(self) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000,
                                    **self.client_options)
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
            return len(cluster["brokers"])
        finally:
            await admin.close()

    async def leader_of(self, topic: str, partition: int, within: float = 60.0) -> int:
        """Node id of the partition's current leader (-1 while none is elected). Asks the
        live nodes; a request that lands on a node just killed is asked again."""
        deadline = time.monotonic() + within
        while True:
            try:
                return await self._leader_of(topic, partition)
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _leader_of(self, topic: str, partition: int) -> int:
        live = ",".join(node.address for node in self.nodes if node.alive())
        admin = AIOKafkaAdminClient(bootstrap_servers=live, request_timeout_ms=5000,
                                    **self.client_options)
        await admin.start()
        try:
            [described] = await admin.describe_topics([topic])
            for entry in described["partitions"]:
                if entry["partition"] == partition:
                    return int(entry["leader"])
            raise KeyError(f"{topic} has no partition {partition}")
        finally:
            await admin.close()

    async def delete_topics(self, prefix: str, within: float = 60.0) -> None:
        """Delete every topic whose name starts with ``prefix``; returns once the metadata no longer lists
        them (a topic created right after must not be mistaken for the old one)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30000,
                                    **self.client_options)
        await admin.start()
        try:
            deadline = time.monotonic() + within
            while True:
                try:
                    doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
                    if not doomed:
                        return
                    with contextlib.suppress(UnknownTopicOrPartitionError):
                        await admin.delete_topics(doomed)
                except (NodeNotReadyError, KafkaConnectionError, RequestTimedOutError) as error:
                    # A node just started (or restarted by the previous test) may not answer yet.
                    doomed = [f"(not reachable yet: {type(error).__name__})"]
                if time.monotonic() > deadline:
                    raise KafkaClusterError(f"topics still listed {within:.0f} s after deletion: {doomed}")
                await asyncio.sleep(0.2)
        finally:
            await admin.close()


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when called inside a running loop
    (a pytest-asyncio test): on a thread of its own with its own loop."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def server_properties(node: KafkaNode, voters: str, replication: int, min_insync: int,
                      partitions: int, message_max_bytes: int | None = None) -> str:
    # Kafka's default record limit is about 1 MB; a larger one lets a test (or a drill) send
    # the oversized record a consumer must dead-letter. Replicas must fetch what was accepted.
    limits = [] if message_max_bytes is None else [
        f"message.max.bytes={message_max_bytes}", f"replica.fetch.max.bytes={message_max_bytes}"]
    return "\n".join([
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{LOOPBACK}:{node.broker_port},CONTROLLER://{LOOPBACK}:{node.controller_port}",
        f"advertised.listeners=PLAINTEXT://{LOOPBACK}:{node.broker_port}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={node.directory / 'data'}",
        f"num.partitions={partitions}",
        f"default.replication.factor={replication}",
        f"min.insync.replicas={min_insync}",
        f"offsets.topic.replication.factor={replication}",
        "offsets.topic.num.partitions=10",  # 50 by default: slow to create on a small machine
        f"transaction.state.log.replication.factor={replication}",
        f"transaction.state.log.min.isr={min_insync}",
        f"share.coordinator.state.topic.replication.factor={replication}",
        f"share.coordinator.state.topic.min.isr={min_insync}",
        "group.initial.rebalance.delay.ms=0",
        "unclean.leader.election.enable=false",
        *limits,
        "",
    ])


def start_cluster(work_dir: Path, brokers: int = 3, *, timeout: float = 180.0,
                  cache: Path = CACHE, security: "ListenerSecurity | None" = None,
                  message_max_bytes: int | None = None) -> KafkaCluster:
    """Fetch the jars (once), format fresh storage in ``work_dir`` and start ``brokers`` KRaft
    nodes on free loopback ports; returns when every broker has registered. With ``security``
    the brokers listen with SASL_SSL instead of PLAINTEXT (see ListenerSecurity).
    ``message_max_bytes`` raises the brokers' record limit above Kafka's default (about 1 MB)."""
    libs = fetch_jars(cache)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "log4j2.properties").write_text(LOG4J2)
    nodes = [KafkaNode(n, free_port(), free_port(), work_dir / f"node-{n}")
             for n in range(1, brokers + 1)]
    voters = ",".join(f"{n.node_id}@{LOOPBACK}:{n.controller_port}" for n in nodes)
    replication = min(3, brokers)
    min_insync = max(1, replication - 1)
    cluster = KafkaCluster(libs, work_dir, nodes, cluster_id=_cluster_id())
    for node in nodes:
        node.directory.mkdir(parents=True, exist_ok=True)
        properties = server_properties(node, voters, replication, min_insync, partitions=3,
                                       message_max_bytes=message_max_bytes)
        node.config.write_text(security.secure(properties, node) if security else properties)
    if security:
        cluster.client_options = security.client_options()
    _format_storage(cluster, security.format_arguments() if security else ())
    try:
        for node in nodes:
            cluster.launch(node)
        cluster.wait_listening(nodes, timeout)
        cluster.wait_brokers(brokers, timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _cluster_id() -> str:
    """A cluster id as kafka-storage random-uuid makes it: 16 random bytes, base64url, never
    starting with "-" (a command line would read it as an option)."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            return made


def _format_storage(cluster: KafkaCluster, extra: Sequence[str] = ()) -> None:
    formats = [
        (node, subprocess.Popen(
            cluster.java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster.cluster_id}",
                         "-c", str(node.config), "--ignore-formatted", *extra),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        for node in cluster.nodes
    ]
    for node, process in formats:
        output, _ = process.communicate()
        (node.directory / "format.log").write_bytes(output)
        if process.returncode != 0:
            raise KafkaClusterError(f"kafka-storage format failed for node {node.node_id}:\n"
                                    f"{output.decode(errors='replace')}")


BROKER_USER = "broker"  # the SCRAM user brokers authenticate as among themselves


@dataclass(frozen=True)
class ListenerSecurity:
    """A SASL_SSL listener in place of PLAINTEXT, for clients and for brokers among themselves,
    and a controllers' listener on mutual TLS (only holders of a certificate of the CA reach
    it), as docker-compose.yml runs them: SCRAM-SHA-512 users created when the storage is
    formatted (``kafka-storage format --add-scram``), TLS from a keystore (PKCS#12 with
    ``keystore_password``, else one PEM file of key then certificate; valid for 127.0.0.1) and
    the CA that signed it. ``users`` must include BROKER_USER. Passwords reach the brokers'
    config and format command line: for tests and trials on one machine, not for production."""

    keystore: Path
    ca_file: Path
    users: Mapping[str, str]
    keystore_password: str | None = None

    def secure(self, properties: str, node: KafkaNode) -> str:
        """``server_properties`` with its PLAINTEXT broker listener made SASL_SSL."""
        jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{BROKER_USER}" password="{self.users[BROKER_USER]}";')
        overrides = {
            "listeners": f"SASL_SSL://{LOOPBACK}:{node.broker_port},"
                         f"CONTROLLER://{LOOPBACK}:{node.controller_port}",
            "advertised.listeners": f"SASL_SSL://{LOOPBACK}:{node.broker_port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            "listener.name.controller.ssl.client.auth": "required",
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
            **self._keystore(),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
        }
        lines = [line for line in properties.splitlines()
                 if line and line.partition("=")[0] not in overrides]
        return "\n".join([*lines, *(f"{k}={v}" for k, v in overrides.items()), ""])

    def _keystore(self) -> dict[str, str]:
        if self.keystore_password is None:
            return {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(self.keystore)}
        return {"ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(self.keystore),
                "ssl.keystore.password": self.keystore_password,
                "ssl.key.password": self.keystore_password}

    def format_arguments(self) -> list[str]:
        return [arg for name, password in self.users.items()
                for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")]

    def client_options(self) -> dict[str, Any]:
        """aiokafka options of a client signed in as BROKER_USER."""
        return {"security_protocol": "SASL_SSL", "ssl_context": create_ssl_context(cafile=str(self.ca_file)),
                "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": BROKER_USER,
                "sasl_plain_password": self.users[BROKER_USER]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.kafka_cluster",
                                     description="A real Apache Kafka KRaft cluster on loopback.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the cluster and keep it up until Ctrl-C")
    up.add_argument("--dir", type=Path, required=True, help="work directory (data and logs)")
    up.add_argument("--brokers", type=int, default=3)
    up.add_argument("--message-max-bytes", type=int, default=None,
                    help="raise the brokers' record limit (Kafka's default is about 1 MB), "
                         "e.g. to drill a 2 MB poison record")
    commands.add_parser("fetch", help="only fetch Kafka's jars into the cache")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(fetch_jars())
        return 0
    started = time.monotonic()
    cluster = start_cluster(args.dir.resolve(), args.brokers,
                            message_max_bytes=args.message_max_bytes)
    print(f"kafka cluster up in {time.monotonic() - started:.1f} s; logs in {args.dir}", file=sys.stderr)
    print(cluster.bootstrap, flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    reported: set[int] = set()
    try:
        # A node killed by hand (a fault drill) is reported, not restarted: the others go on.
        while not stopping.wait(1.0):
            for node in cluster.nodes:
                if not node.alive() and node.node_id not in reported:
                    reported.add(node.node_id)
                    print(f"kafka node {node.node_id} exited; see {node.log_path}", file=sys.stderr)
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
