"""The fault suite: each fault injected into `disposisi dev` while complaints flow, then an
account of every complaint from the store.

    python -m benchmarks.faults                       # every fault, embedded broker and store
    python -m benchmarks.faults --n 400 --seconds 40 --only broker-kill store-kill
    python -m benchmarks.faults --kafka cluster       # DISPOSISI_KAFKA_BOOTSTRAP_SERVERS

For each fault: a fresh `disposisi dev` on a temporary data directory; complaints sent
steadily for ``--seconds`` (half as HTTP posts to intake, half as messages to
`disposisi.complaints.submitted`, as a channel adapter sends them); the fault injected a third
of the way in; then a wait until the tickets stop growing. The table:

- sent / accepted: posts answered 202 plus messages the broker acknowledged;
- ticketed: accepted complaints with a ticket in the SLA's `tickets` collection;
- lost: accepted, no ticket (``stored`` of them are at least stored as complaints);
- dup: agency-queue messages for the same ticket and assignment more than once, and
  complaints stored twice for one submission (by its external id);
- dead: records on `disposisi.deadletter`; 5xx and refused: HTTP answers >= 500, and posts
  that got no answer (connection refused, timeout);
- recovery: from the fault until a complaint posted after it is a ticket.

On `--kafka cluster` the broker is the cluster DISPOSISI_KAFKA_BOOTSTRAP_SERVERS names (the
three-broker cluster started by the project's script); faults on the embedded broker's
process are skipped there.
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
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient

from shared.contracts import Topics
from shared.credentials import kafka_client_options
from shared.embedded import free_port
from shared.mongo import Document
from shared.settings import Settings

TEXTS = ["Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat",
         "Jalan berlubang besar di depan SD 5, sudah ada motor jatuh",
         "Air PDAM mati sejak kemarin pagi di perumahan kami",
         "Lampu jalan mati total di gang Mawar, rawan begal"]
BANNER = "Disposisi is running"
PAUSE_SECONDS = 20.0


# --- the system under test -------------------------------------------------------------------

class Dev:
    """One `disposisi dev` process on fixed ports and a data directory."""

    def __init__(self, data_dir: Path, ports: dict[str, int], env: dict[str, str]) -> None:
        self.data_dir, self.ports, self.env = data_dir, ports, env
        self.log_path = data_dir.parent / "dev.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.banners = 0

    def start(self) -> None:
        flags = [f"--{name}-port={port}" for name, port in self.ports.items()]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "dev", f"--data-dir={self.data_dir}",
                 *flags], env=self.env, stdout=log, stderr=subprocess.STDOUT)

    async def wait_banner(self) -> None:
        """Wait for this start's banner (printed once every service answers ready)."""
        assert self.process is not None
        timeout = 180.0
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


async def pause_broker(dev: Dev) -> None:
    pid = dev.pid("kafka")
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(PAUSE_SECONDS)
    finally:
        os.kill(pid, signal.SIGCONT)


async def sigterm_and_restart(dev: Dev) -> None:
    await dev.stop()
    dev.start()
    await dev.wait_banner()


async def nothing(dev: Dev) -> None:
    return None


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Inject
    embedded_broker_only: bool = False


FAULTS = [
    Fault("none", nothing),
    Fault("kill9-intake", kill9("intake")),
    Fault("kill9-router", kill9("router")),
    Fault("kill9-sla", kill9("sla")),
    Fault("broker-pause", pause_broker, embedded_broker_only=True),
    Fault("broker-kill", kill9("kafka"), embedded_broker_only=True),
    Fault("store-kill", kill9("mongodb")),
    Fault("sigterm-restart", sigterm_and_restart),
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


async def publish_submissions(bootstrap: str, traffic: Traffic, n: int, seconds: float) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=10_000,
                                **broker_options(bootstrap))
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
    dead_lettered: int = 0
    server_errors: int = 0
    refused: int = 0
    recovery: float | None = None
    note: str = ""


async def settle(mongodb_url: str, expected: int, quiet_seconds: float, limit: float) -> None:
    """Wait until every accepted complaint is a ticket, or the count stops growing."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, serverSelectionTimeoutMS=3000)
    tickets = client["disposisi"]["tickets"]
    last, last_change, deadline = -1, time.monotonic(), time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            try:
                count = len(await tickets.find({}, {"_id": 1}).to_list(None))
            except Exception:
                count = last
            if count != last:
                last, last_change = count, time.monotonic()
            if count >= expected or time.monotonic() - last_change > quiet_seconds:
                return
            await asyncio.sleep(1.0)
    finally:
        await client.close()


async def account(row: Row, traffic: Traffic, mongodb_url: str, bootstrap: str) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url)
    try:
        db = client["disposisi"]
        tickets = {t["_id"] for t in await db["tickets"].find({}, {"_id": 1}).to_list(None)}
        complaints = [c for c in await db["complaints"].find(
            {}, {"ticket_id": 1, "event": 1}).to_list(None)
            if str(c["event"]["data"].get("external_id", "")).startswith(f"{traffic.run}-")]
    finally:
        await client.close()
    by_external: dict[str, list[str]] = {}
    for c in complaints:
        by_external.setdefault(c["event"]["data"]["external_id"], []).append(c["ticket_id"])
    accepted = {**{k: [t] for k, t in traffic.http_accepted.items()},
                **{k: by_external.get(k, []) for k in traffic.kafka_accepted}}
    row.sent, row.accepted = traffic.sent, len(accepted)
    row.ticketed = sum(1 for ids in accepted.values() if any(t in tickets for t in ids))
    row.lost = row.accepted - row.ticketed
    row.lost_stored = sum(1 for k, ids in accepted.items()
                          if not any(t in tickets for t in ids) and k in by_external)
    row.server_errors, row.refused = traffic.server_errors, traffic.refused
    twice_stored = sum(1 for ids in by_external.values() if len(ids) > 1)
    mine = {t for ids in by_external.values() for t in ids}
    row.duplicated = twice_stored + await duplicate_assignments(bootstrap, mine)
    row.dead_lettered = len(await read_all(bootstrap, lambda t: t == Topics.DEADLETTER))


async def duplicate_assignments(bootstrap: str, ticket_ids: set[str]) -> int:
    """Agency-queue messages for one of these tickets, seen more than once for the same
    (ticket, type, assignment)."""
    messages = [m for m in await read_all(bootstrap, lambda t: t.startswith(Topics.AGENCY_PREFIX))
                if m.get("ticket_id") in ticket_ids]
    seen = Counter((m.get("ticket_id"), m.get("type"), (m.get("data") or {}).get("assignment"))
                   for m in messages)
    return sum(n - 1 for n in seen.values() if n > 1)


async def read_all(bootstrap: str, wanted: Callable[[str], bool]) -> list[dict[str, Any]]:
    """Every message now on the topics ``wanted`` accepts, read up to their current ends."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None, **broker_options(bootstrap))
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if wanted(t)]
        partitions = [TopicPartition(t, p) for t in topics
                      for p in consumer.partitions_for_topic(t) or ()]
        if not partitions:
            return []
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
                    work: Path) -> Row:
    ports = {name: free_port() for name in ("kafka", "mongo", "intake", "sla", "router")}
    data_dir = work / fault.name / "data"
    data_dir.mkdir(parents=True)
    dev = Dev(data_dir, ports, base_env)
    bootstrap = base_env.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{ports['kafka']}")
    mongodb_url = f"mongodb://127.0.0.1:{ports['mongo']}/?directConnection=true"
    traffic = Traffic(run=f"{fault.name}-{uuid.uuid4().hex[:6]}")
    row = Row(fault.name)
    dev.start()
    try:
        await dev.wait_banner()
        flow = asyncio.gather(post_complaints(dev, traffic, n // 2, seconds),
                              publish_submissions(bootstrap, traffic, n - n // 2, seconds))
        await asyncio.sleep(seconds / 3)
        injected = time.monotonic()
        await fault.inject(dev)
        row.recovery = await time_to_recover(dev, mongodb_url, injected, traffic.run)
        await flow
        await settle(mongodb_url, len(traffic.http_accepted) + len(traffic.kafka_accepted),
                     quiet_seconds=_reconcile_wait(base_env), limit=240)
        await account(row, traffic, mongodb_url, bootstrap)
    except Exception as error:
        row.note = f"run failed: {error!r}"[:200]
    finally:
        await dev.stop()
    return row


def _reconcile_wait(env: dict[str, str]) -> float:
    """How long the ticket count may stay flat before the run is over: long enough for one
    reconciliation to republish what the fault left stored but unpublished."""
    return (float(env["DISPOSISI_RECONCILE_AFTER_SECONDS"])
            + float(env["DISPOSISI_RECONCILE_INTERVAL_SECONDS"]) + 10.0)


def print_table(rows: list[Row]) -> None:
    header = ("fault", "sent", "accepted", "ticketed", "lost", "(stored)", "dup", "dead",
              "5xx", "refused", "recovery")
    lines = [header]
    for r in rows:
        recovery = "-" if r.recovery is None else f"{r.recovery:.1f} s"
        lines.append((r.fault, str(r.sent), str(r.accepted), str(r.ticketed), str(r.lost),
                      str(r.lost_stored), str(r.duplicated), str(r.dead_lettered),
                      str(r.server_errors), str(r.refused), recovery))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)), flush=True)
    for r in rows:
        if r.note:
            print(f"{r.fault}: {r.note}")


def dev_environment(kafka: str, reconcile_after: float) -> dict[str, str]:
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
    if kafka == "cluster":
        bootstrap = os.environ.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            raise SystemExit("--kafka cluster needs DISPOSISI_KAFKA_BOOTSTRAP_SERVERS "
                             "(the cluster's brokers)")
        env["DISPOSISI_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        env.update({k: v for k, v in os.environ.items() if k.startswith(KAFKA_CREDENTIALS)})
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
    env = dev_environment(args.kafka, args.reconcile_after)
    chosen = [f for f in FAULTS if not args.only or f.name in args.only]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="disposisi-faults-") as tmp:
        for fault in chosen:
            if fault.embedded_broker_only and args.kafka == "cluster":
                rows.append(Row(fault.name, note="skipped: the cluster's brokers are not dev's"))
                continue
            print(f"running {fault.name} ...", flush=True)
            rows.append(await run_fault(fault, n=args.n, seconds=args.seconds, base_env=env,
                                        work=Path(tmp)))
            print_table(rows[-1:])
            if args.keep:
                (Path(args.keep) / fault.name).mkdir(parents=True, exist_ok=True)
                for log in (Path(tmp) / fault.name).glob("**/*.log"):
                    (Path(args.keep) / fault.name / log.name).write_bytes(log.read_bytes())
    print()
    print_table(rows)


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
