"""The fault suite: each fault injected into `disposisi dev` while complaints flow, then an
account of every complaint from the store.

    python -m benchmarks.faults                       # every fault, embedded broker and store
    python -m benchmarks.faults --n 400 --seconds 40 --only broker-kill store-kill
    python -m benchmarks.faults --kafka cluster       # on a three-broker Apache Kafka cluster

For each fault: a fresh `disposisi dev` on a temporary data directory; complaints sent
steadily for ``--seconds`` (half as HTTP posts to intake, half as messages to
`disposisi.complaints.submitted`, as a channel adapter sends them); the fault injected a third
of the way in; then a wait until the tickets stop growing. The table:

- sent / accepted: posts answered 202 plus messages the broker acknowledged;
- ticketed: accepted complaints with a ticket in the SLA's `tickets` collection;
- lost: accepted, no ticket (``stored`` of them are at least stored as complaints);
- dup (by event id): complaints stored twice for one submission (by its external id), and on
  the agency queues and the escalations topic, events under more than one id for the same
  ticket, type and assignment (and escalation level): duplicates no consumer can recognise;
- copies: records on those topics repeating an event id already there. Delivery is at least
  once: a batch redelivered after a failed commit is published again under the same ids, and
  consumers drop a repeated id (README, "Architecture": guarantees). The reconciliation adds
  some: a complaint without a ticket after ``--reconcile-after`` is published again;
- dead: records on `disposisi.deadletter` (poison: one per poison record, checked by place);
- behind: records the consumer groups had not committed at the end (0: every consumer moved
  past everything, poison included);
- 5xx and refused: HTTP answers >= 500, and posts that got no answer (connection refused,
  timeout);
- recovery: from the fault until a complaint posted after it is a ticket.

On `--kafka cluster` the suite starts a three-broker Apache Kafka cluster of its own
(shared/kafka_cluster.py: replication 3, min.insync.replicas 2, idempotent producers), empties
its topics before each fault, and the broker faults act on the cluster's nodes: every node
paused, every node killed -9 and started again, and (cluster only) the partition leader of
complaints.received killed -9 and started again 20 s later.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pymongo import AsyncMongoClient

from services.drain import ALL_GROUPS, backlog, partitions_of
from shared.contracts import Topics
from shared.credentials import kafka_client_options
from shared.embedded import free_port
from shared.kafka_cluster import KafkaCluster, start_cluster
from shared.mongo import Document
from shared.settings import Settings

TEXTS = ["Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat",
         "Jalan berlubang besar di depan SD 5, sudah ada motor jatuh",
         "Air PDAM mati sejak kemarin pagi di perumahan kami",
         "Lampu jalan mati total di gang Mawar, rawan begal"]
BANNER = "Disposisi is running"
PAUSE_SECONDS = 20.0
# Every topic a Disposisi service consumes, with its consumer groups (services/*/handlers.py).
CONSUMER_GROUPS = ALL_GROUPS
CONSUMED_TOPICS = sorted({t for topics in CONSUMER_GROUPS.values() for t in topics})
POISON_BYTES = 2_000_000


# --- the system under test -------------------------------------------------------------------

class Dev:
    """One `disposisi dev` process on fixed ports and a data directory."""

    def __init__(self, data_dir: Path, ports: dict[str, int], env: dict[str, str],
                 cluster: KafkaCluster | None = None) -> None:
        self.data_dir, self.ports, self.env = data_dir, ports, env
        self.cluster = cluster  # the three-broker cluster on --kafka cluster; else dev's Tansu
        self.log_path = data_dir.parent / "dev.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.banners = 0
        self.poisoned: list[tuple[str, int, int]] = []  # (topic, partition, offset) sent
        self.healing: list[asyncio.Task[None]] = []  # repairs a fault left running (restarts)

    @property
    def bootstrap(self) -> str:
        return self.env.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{self.ports['kafka']}")

    def start(self) -> None:
        flags = [f"--{name}-port={port}" for name, port in self.ports.items()]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "dev", f"--data-dir={self.data_dir}",
                 *flags], env=self.env, stdout=log, stderr=subprocess.STDOUT)

    async def wait_banner(self) -> None:
        """Wait for this start's banner (printed once every service answers ready)."""
        assert self.process is not None
        timeout = 360.0  # a loaded shared machine has needed over 3 minutes
        deadline = time.monotonic() + timeout
        while self.log_path.read_text(errors="replace").count(BANNER) <= self.banners:
            if self.process.poll() is not None:
                raise RuntimeError(f"disposisi dev exited with {self.process.returncode}; "
                                   f"see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"disposisi dev not ready in {timeout:.0f} s; see {self.log_path}")
            await asyncio.sleep(0.3)
        self.banners += 1

    def channel_headers(self) -> dict[str, str]:
        """The web channel's key, from the demo accounts dev writes on its first start."""
        credentials = json.loads((self.data_dir / "dev-credentials.json").read_text())
        return {"X-API-Key": str(credentials["api_keys"]["web"])}

    def pid(self, name: str) -> int:
        pid: int = json.loads((self.data_dir / "processes.json").read_text())[name]
        return pid

    async def stop(self) -> int | None:
        """SIGTERM, and the orderly stop (drain included) given up to three minutes."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.process.wait, 180.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return await asyncio.to_thread(self.process.wait)

    @property
    def intake(self) -> str:
        return f"http://127.0.0.1:{self.ports['intake']}"


# --- the faults ------------------------------------------------------------------------------

Inject = Callable[[Dev], Awaitable[None]]


def kill9(name: str) -> Inject:
    async def inject(dev: Dev) -> None:
        os.kill(dev.pid(name), signal.SIGKILL)
    return inject


def broker_pids(dev: Dev) -> list[int]:
    if dev.cluster is None:
        return [dev.pid("kafka")]
    return [n.process.pid for n in dev.cluster.nodes if n.process is not None and n.alive()]


async def pause_broker(dev: Dev) -> None:
    """SIGSTOP the broker (on the cluster: every node) for PAUSE_SECONDS: it holds connections
    open and answers nothing, as in a long GC pause or a frozen VM."""
    pids = broker_pids(dev)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(PAUSE_SECONDS)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def kill_broker(dev: Dev) -> None:
    """kill -9 the broker. `disposisi dev` restarts its embedded one (memory only: its log is
    gone); the cluster's nodes, which dev does not supervise, are all killed and started again
    on their data directories."""
    if dev.cluster is None:
        os.kill(dev.pid("kafka"), signal.SIGKILL)
        return
    cluster = dev.cluster
    for node in cluster.nodes:
        cluster.kill(node.node_id)
    for node in cluster.nodes:
        cluster.launch(node)
    # After kill -9 every node recovers each partition's log before it listens: minutes on a
    # loaded machine (over 3 measured with some 90 partitions).
    await asyncio.to_thread(cluster.wait_listening, cluster.nodes, 600.0)
    await asyncio.to_thread(cluster.wait_brokers, len(cluster.nodes), 600.0)


async def kill_leader(dev: Dev) -> None:
    """kill -9 the node leading partition 0 of complaints.received; it is started again
    PAUSE_SECONDS later (in the background: recovery measures the fail-over, not the restart)."""
    assert dev.cluster is not None
    cluster = dev.cluster
    leader = await cluster.leader_of(Topics.RECEIVED, 0)
    cluster.kill(leader)

    async def restart() -> None:
        await asyncio.sleep(PAUSE_SECONDS)
        # Launched here, on the main thread (a node started from a worker thread dies with
        # it); only the waiting goes to a thread.
        node = cluster.node(leader)  # killed above; started again here
        cluster.launch(node)
        await asyncio.to_thread(cluster.wait_listening, [node], 600.0)
        await asyncio.to_thread(cluster.wait_brokers, len(cluster.nodes), 600.0)

    dev.healing.append(asyncio.create_task(restart()))


async def sigterm_and_restart(dev: Dev) -> None:
    await dev.stop()
    dev.start()
    await dev.wait_banner()


async def poison(dev: Dev) -> None:
    """On every consumed topic, a 2 MB record and bytes that are not UTF-8. On real Kafka the
    topic's max.message.bytes is raised first, as an operator might, so the records reach the
    consumers (at the default 1 MB the broker refuses them at the door)."""
    if dev.cluster is not None:
        await allow_large_records(dev.bootstrap, CONSUMED_TOPICS, 4 * POISON_BYTES)
    producer = AIOKafkaProducer(bootstrap_servers=dev.bootstrap, acks="all",
                                max_request_size=4 * POISON_BYTES, request_timeout_ms=30_000)
    await producer.start()
    try:
        for topic in CONSUMED_TOPICS:
            large = json.dumps({"id": str(uuid.uuid4()), "type": "complaint.submitted",
                                "tenant": "kota-bengkulu",
                                "data": {"channel": "web", "text": "x" * POISON_BYTES}}).encode()
            for value in (large, b"\xff\xfe\xfa not utf-8 \xc3\x28 {"):
                sent = await producer.send_and_wait(topic, value)
                dev.poisoned.append((topic, sent.partition, sent.offset))
    finally:
        await producer.stop()


async def allow_large_records(bootstrap: str, topics: list[str], limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        await admin.alter_configs([
            ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(limit)})
            for topic in topics])
    finally:
        await admin.close()


async def nothing(dev: Dev) -> None:
    return None


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Inject
    cluster_only: bool = False


FAULTS = [
    Fault("none", nothing),
    Fault("kill9-intake", kill9("intake")),
    Fault("kill9-router", kill9("router")),
    Fault("kill9-sla", kill9("sla")),
    Fault("broker-pause", pause_broker),
    Fault("broker-kill", kill_broker),
    Fault("leader-kill", kill_leader, cluster_only=True),
    Fault("store-kill", kill9("mongodb")),
    Fault("sigterm-restart", sigterm_and_restart),
    Fault("poison", poison),
]


# --- traffic ---------------------------------------------------------------------------------

@dataclass
class Traffic:
    run: str
    http_accepted: dict[str, str] = field(default_factory=dict)  # external id -> ticket id
    kafka_accepted: set[str] = field(default_factory=set)  # external ids
    sent: int = 0
    server_errors: int = 0
    refused: int = 0

    def key(self, channel: str, i: int) -> str:
        return f"{self.run}-{channel}-{i}"


async def post_complaints(dev: Dev, traffic: Traffic, n: int, seconds: float) -> None:
    async with httpx.AsyncClient(timeout=15.0, headers=dev.channel_headers()) as http:
        async def post(i: int) -> None:
            external_id = traffic.key("web", i)
            traffic.sent += 1
            try:
                answer = await http.post(f"{dev.intake}/v1/complaints", json={
                    "channel": "web", "external_id": external_id, "text": TEXTS[i % len(TEXTS)]})
            except httpx.HTTPError:
                traffic.refused += 1
                return
            if answer.status_code == 202:
                traffic.http_accepted[external_id] = answer.json()["ticket_id"]
            elif answer.status_code >= 500:
                traffic.server_errors += 1

        await _spread(n, seconds, post)


async def publish_submissions(dev: Dev, traffic: Traffic, n: int, seconds: float) -> None:
    # As a channel adapter on real Kafka would: idempotent, so its retries add no copies (the
    # embedded broker refuses idempotence).
    producer = AIOKafkaProducer(bootstrap_servers=dev.bootstrap, acks="all",
                                enable_idempotence=dev.cluster is not None,
                                request_timeout_ms=10_000, **broker_options(dev.bootstrap))
    await producer.start()
    try:
        async def send(i: int) -> None:
            external_id = traffic.key("whatsapp", i)
            event = {"id": str(uuid.uuid4()), "type": "complaint.submitted", "tenant": "kota-bengkulu",
                     "data": {"channel": "whatsapp", "external_id": external_id,
                              "text": TEXTS[i % len(TEXTS)]}}
            traffic.sent += 1
            try:
                async with asyncio.timeout(30):
                    await producer.send_and_wait(Topics.SUBMITTED, json.dumps(event).encode(),
                                                 key=external_id.encode())
            except Exception:
                return  # not acknowledged: the adapter would retry; not counted as accepted
            traffic.kafka_accepted.add(external_id)

        await _spread(n, seconds, send)
    finally:
        await producer.stop()


async def _spread(n: int, seconds: float, send: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """Start ``n`` sends evenly over ``seconds``, each on its own (a stalled one never holds
    back the next), and wait for all."""
    started = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    for i in range(n):
        await asyncio.sleep(max(0.0, started + i * seconds / n - time.monotonic()))
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)


async def time_to_recover(dev: Dev, mongodb_url: str, since: float, run: str) -> float | None:
    """Seconds from ``since`` until a complaint posted after it is a ticket."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, serverSelectionTimeoutMS=2000)
    tickets = client["disposisi"]["tickets"]
    try:
        async with httpx.AsyncClient(timeout=5.0, headers=dev.channel_headers()) as http:
            for probe in range(120):
                ticket_id = await _accepted_probe(http, dev, f"{run}-probe-{probe}")
                if ticket_id is None:
                    await asyncio.sleep(1.0)
                    continue
                for _ in range(60):
                    try:
                        if await tickets.find_one({"_id": ticket_id}, {"_id": 1}):
                            return time.monotonic() - since
                    except Exception:
                        pass
                    await asyncio.sleep(0.25)
        return None
    finally:
        await client.close()


async def _accepted_probe(http: httpx.AsyncClient, dev: Dev, external_id: str) -> str | None:
    try:
        answer = await http.post(f"{dev.intake}/v1/complaints", json={
            "channel": "web", "external_id": external_id, "text": TEXTS[0]})
    except httpx.HTTPError:
        return None
    return str(answer.json()["ticket_id"]) if answer.status_code == 202 else None


# --- accounting ------------------------------------------------------------------------------

@dataclass
class Row:
    fault: str
    sent: int = 0
    accepted: int = 0
    ticketed: int = 0
    lost: int = 0
    lost_stored: int = 0
    duplicated: int = 0
    copies: int = 0
    dead_lettered: int = 0
    behind: int | None = None
    server_errors: int = 0
    refused: int = 0
    recovery: float | None = None
    note: str = ""


async def settle(mongodb_url: str, traffic: Traffic, quiet_seconds: float, limit: float) -> None:
    """Wait until every accepted complaint of this run is a ticket, or their number stops
    growing for ``quiet_seconds``. (Counted per complaint: the recovery probes' tickets must
    not make up for a missing one.)"""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, serverSelectionTimeoutMS=3000)
    db = client["disposisi"]
    last, last_change, deadline = -1, time.monotonic(), time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            try:
                tickets, by_external = await _stored(db, traffic)
                count = sum(1 for ids in _accepted(traffic, by_external).values()
                            if any(t in tickets for t in ids))
            except Exception:
                count = last
            if count != last:
                last, last_change = count, time.monotonic()
            if count >= len(traffic.http_accepted) + len(traffic.kafka_accepted) \
                    or time.monotonic() - last_change > quiet_seconds:
                return
            await asyncio.sleep(1.0)
    finally:
        await client.close()


async def _stored(db: Any, traffic: Traffic) -> tuple[set[str], dict[str, list[str]]]:
    """Ticket ids in the SLA's collection, and this run's stored complaints' ticket ids by
    external id."""
    tickets = {t["_id"] for t in await db["tickets"].find({}, {"_id": 1}).to_list(None)}
    complaints = [c for c in await db["complaints"].find(
        {}, {"ticket_id": 1, "event": 1}).to_list(None)
        if str(c["event"]["data"].get("external_id", "")).startswith(f"{traffic.run}-")]
    by_external: dict[str, list[str]] = {}
    for c in complaints:
        by_external.setdefault(c["event"]["data"]["external_id"], []).append(c["ticket_id"])
    return tickets, by_external


def _accepted(traffic: Traffic, by_external: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each accepted complaint's ticket ids: HTTP's from the 202, the broker's from the store."""
    return {**{k: [t] for k, t in traffic.http_accepted.items()},
            **{k: by_external.get(k, []) for k in traffic.kafka_accepted}}


async def account(row: Row, traffic: Traffic, mongodb_url: str, dev: Dev) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url)
    try:
        tickets, by_external = await _stored(client["disposisi"], traffic)
    finally:
        await client.close()
    accepted = _accepted(traffic, by_external)
    row.sent, row.accepted = traffic.sent, len(accepted)
    row.ticketed = sum(1 for ids in accepted.values() if any(t in tickets for t in ids))
    row.lost = row.accepted - row.ticketed
    row.lost_stored = sum(1 for k, ids in accepted.items()
                          if not any(t in tickets for t in ids) and k in by_external)
    row.server_errors, row.refused = traffic.server_errors, traffic.refused
    twice_stored = sum(1 for ids in by_external.values() if len(ids) > 1)
    mine = {t for ids in by_external.values() for t in ids}
    distinct_too_many, copies = await duplicate_deliveries(dev.bootstrap, mine)
    row.duplicated, row.copies = twice_stored + distinct_too_many, copies
    letters = await read_all(dev.bootstrap, lambda t: t == Topics.DEADLETTER)
    row.dead_lettered = len(letters)
    row.note = "; ".join(filter(None, [row.note, poison_verdict(dev.poisoned, letters)]))
    row.behind = await consumers_behind(dev.bootstrap)


def poison_verdict(poisoned: list[tuple[str, int, int]], letters: list[dict[str, Any]]) -> str:
    """Whether each poison record got exactly one dead letter, and nothing else got one."""
    if not poisoned and not letters:
        return ""
    places = Counter((d.get("source_topic"), d.get("partition"), d.get("offset"))
                     for d in (letter.get("data") or {} for letter in letters))
    once = sum(1 for place in poisoned if places.get(place) == 1)
    other = sum(n for place, n in places.items() if place not in set(poisoned))
    return (f"{len(poisoned)} poison records on {len({p[0] for p in poisoned})} topics: "
            f"{once} dead-lettered exactly once; {other} letters for other records")


async def consumers_behind(bootstrap: str, within: float = 60.0) -> int | None:
    """Records the consumer groups have yet to commit on what they consume, once it is 0 or
    ``within`` passed: 0 means each consumer moved past everything, poison included."""
    behind: int | None = None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            behind = sum(b.behind for b in await backlog(Settings(kafka_bootstrap_servers=bootstrap),
                                                           CONSUMER_GROUPS))
        except Exception:
            behind = None
        if behind == 0:
            break
        await asyncio.sleep(2.0)
    return behind


async def duplicate_deliveries(bootstrap: str, ticket_ids: set[str]) -> tuple[int, int]:
    """On the agency queues and the escalations topic, for these tickets: (1) duplicates, events
    under more than one id for the same thing (ticket, type, assignment, and for escalations
    level and clock), which no consumer can recognise as one; (2) copies, records repeating an
    event id already on the topic, which at-least-once delivery allows and consumers drop by
    id."""
    messages = [m for m in await read_all(
        bootstrap, lambda t: t.startswith(Topics.AGENCY_PREFIX) or t == Topics.ESCALATIONS)
        if m.get("ticket_id") in ticket_ids]
    return count_duplicates(messages)


def count_duplicates(messages: list[dict[str, Any]]) -> tuple[int, int]:
    """(duplicates, copies) among these events; see ``duplicate_deliveries``."""
    ids: dict[tuple[Any, ...], set[str]] = {}
    for m in messages:
        data = m.get("data") or {}
        thing = (m.get("ticket_id"), m.get("type"), data.get("assignment"), data.get("level"),
                 data.get("clock"))
        ids.setdefault(thing, set()).add(str(m.get("id")))
    duplicates = sum(len(found) - 1 for found in ids.values())
    copies = len(messages) - sum(len(found) for found in ids.values())
    return duplicates, copies


async def read_all(bootstrap: str, wanted: Callable[[str], bool]) -> list[dict[str, Any]]:
    """Every message now on the topics ``wanted`` accepts, read up to their current ends."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        partitions = await partitions_of(admin, [t for t in await admin.list_topics() if wanted(t)])
    finally:
        await admin.close()
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None,
                                max_partition_fetch_bytes=4 * POISON_BYTES,
                                **broker_options(bootstrap))
    await consumer.start()
    try:
        consumer.assign(partitions)
        async with asyncio.timeout(30):
            ends = await consumer.end_offsets(partitions)
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            remaining = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not remaining:
                break
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            found.extend(json.loads(r.value) for rs in batches.values() for r in rs)
        return found
    finally:
        await consumer.stop()


# --- one run per fault -----------------------------------------------------------------------

async def run_fault(fault: Fault, *, n: int, seconds: float, base_env: dict[str, str],
                    work: Path, cluster: KafkaCluster | None) -> Row:
    ports = {name: free_port() for name in ("kafka", "mongo", "intake", "sla", "router",
                                            "notify")}
    data_dir = work / fault.name / "data"
    data_dir.mkdir(parents=True)
    dev = Dev(data_dir, ports, base_env, cluster)
    mongodb_url = f"mongodb://127.0.0.1:{ports['mongo']}/?directConnection=true"
    traffic = Traffic(run=f"{fault.name}-{uuid.uuid4().hex[:6]}")
    row = Row(fault.name)
    try:
        if cluster is not None:  # each fault on empty topics (and so no committed offsets)
            await cluster.delete_topics(prefix="disposisi.", within=300.0)
        dev.start()
        await dev.wait_banner()
        flow = asyncio.gather(post_complaints(dev, traffic, n // 2, seconds),
                              publish_submissions(dev, traffic, n - n // 2, seconds))
        await asyncio.sleep(seconds / 3)
        injected = time.monotonic()
        await fault.inject(dev)
        row.recovery = await time_to_recover(dev, mongodb_url, injected, traffic.run)
        await flow
        await asyncio.gather(*dev.healing)
        await settle(mongodb_url, traffic, quiet_seconds=_reconcile_wait(base_env), limit=240)
        await account(row, traffic, mongodb_url, dev)
    except Exception as error:
        row.note = f"run failed: {error!r}"[:200]
    finally:
        await asyncio.gather(*dev.healing, return_exceptions=True)
        await dev.stop()
    return row


def _reconcile_wait(env: dict[str, str]) -> float:
    """How long the ticket count may stay flat before the run is over: long enough for one
    reconciliation to republish what the fault left stored but unpublished."""
    return (float(env["DISPOSISI_RECONCILE_AFTER_SECONDS"])
            + float(env["DISPOSISI_RECONCILE_INTERVAL_SECONDS"]) + 10.0)


def print_table(rows: list[Row]) -> None:
    header = ("fault", "sent", "accepted", "ticketed", "lost", "(stored)", "dup", "copies",
              "dead", "behind", "5xx", "refused", "recovery")
    lines = [header]
    for r in rows:
        recovery = "-" if r.recovery is None else f"{r.recovery:.1f} s"
        lines.append((r.fault, str(r.sent), str(r.accepted), str(r.ticketed), str(r.lost),
                      str(r.lost_stored), str(r.duplicated), str(r.copies),
                      str(r.dead_lettered), "-" if r.behind is None else str(r.behind),
                      str(r.server_errors), str(r.refused), recovery))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)), flush=True)
    for r in rows:
        if r.note:
            print(f"{r.fault}: {r.note}")


def dev_environment(reconcile_after: float, cluster: KafkaCluster | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPOSISI_")}
    # The load generator plays one channel gateway posting for many citizens from loopback:
    # that address is trusted, as a deployment trusts its gateway; the per-key limit still
    # counts, so it is raised to the load's rate rather than switched off.
    env["DISPOSISI_TRUSTED_ADDRESSES"] = '["127.0.0.1"]'
    env["DISPOSISI_RATE_LIMIT_SUBMIT_PER_KEY"] = "6000/minute"
    # A complaint stored but never published (broker killed under it) is republished by the
    # reconciliation once it is this old; the default (minutes) outlasts a run.
    env["DISPOSISI_RECONCILE_AFTER_SECONDS"] = str(reconcile_after)
    env["DISPOSISI_RECONCILE_INTERVAL_SECONDS"] = "5"
    if cluster is not None:  # as production runs it: 3 replicas, 2 in sync, idempotent producers
        env.update({"DISPOSISI_KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
                    "DISPOSISI_KAFKA_REPLICATION_FACTOR": "3",
                    "DISPOSISI_KAFKA_MIN_INSYNC_REPLICAS": "2",
                    "DISPOSISI_KAFKA_IDEMPOTENT_PRODUCER": "true",
                    "DISPOSISI_KAFKA_ACKS": "all"})
    return env


# A secured cluster's credentials (SASL user, password file, CA) reach dev and its services.
KAFKA_CREDENTIALS = ("DISPOSISI_KAFKA_SECURITY_PROTOCOL", "DISPOSISI_KAFKA_SASL_", "DISPOSISI_KAFKA_SSL_")


def broker_options(bootstrap: str) -> dict[str, Any]:
    """Client options of this run's broker: none for the embedded one; a cluster's credentials
    come from the same DISPOSISI_KAFKA_* variables the services read."""
    if os.environ.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS") != bootstrap:
        return {}
    return kafka_client_options(Settings(kafka_bootstrap_servers=bootstrap))


async def main_async(args: argparse.Namespace) -> None:
    by_name = {f.name: f for f in FAULTS}
    chosen = [by_name[name] for name in args.only] if args.only else FAULTS  # in the order given
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="disposisi-faults-") as tmp:
        cluster = None
        if args.kafka == "cluster":
            print("starting the three-broker Kafka cluster ...", flush=True)
            cluster = start_cluster(Path(tmp) / "kafka", 3, timeout=600.0)
        env = dev_environment(args.reconcile_after, cluster)
        try:
            for fault in chosen:
                if fault.cluster_only and cluster is None:
                    continue
                print(f"running {fault.name} ...", flush=True)
                rows.append(await run_fault(fault, n=args.n, seconds=args.seconds, base_env=env,
                                            work=Path(tmp), cluster=cluster))
                print_table(rows[-1:])
                if args.keep:
                    keep_logs(Path(tmp), Path(args.keep), fault.name)
        finally:
            if cluster is not None:
                cluster.stop()
    print()
    print_table(rows)


def keep_logs(tmp: Path, keep: Path, fault: str) -> None:
    (keep / fault).mkdir(parents=True, exist_ok=True)
    for log in (tmp / fault).glob("**/*.log"):
        (keep / fault / log.name).write_bytes(log.read_bytes())


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the broker faults make aiokafka loud
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kafka", choices=["embedded", "cluster"], default="embedded")
    parser.add_argument("--n", type=int, default=300, help="complaints sent per fault")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="how long the complaints are spread over")
    parser.add_argument("--only", nargs="*", choices=[f.name for f in FAULTS])
    parser.add_argument("--reconcile-after", type=float, default=20.0,
                        help="DISPOSISI_RECONCILE_AFTER_SECONDS for dev (seconds)")
    parser.add_argument("--keep", help="copy each run's logs into this directory")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
