"""SLA scheduler benchmark: N open tickets due over the next 30 days, then how late a sample of
tickets due in a few seconds is escalated (p50/p99), and the CPU the SLA service (and the
store it polls) uses while nothing is due; beside, in the same run, the raw time the store
takes to answer the scheduler's due-query on the same collection, and the same query on an
integer (epoch milliseconds) copy of ``next_check_at``: NX-27017 keeps a datetime as a
``{"$date": ...}`` object and answers range queries on it with a full scan, while integer
ranges use the index.

    python -m benchmarks.sla_scheduler --tickets 1000000 --sample 200

Starts the embedded broker and store (or uses DISPOSISI_KAFKA_BOOTSTRAP_SERVERS /
DISPOSISI_MONGODB_URL) and the SLA service as a process (`python -m services.cli sla`).

What it relies on, so that it survives the SLA core's rewrite: ticket documents with the fields
of the ticket contract (briefs/ticket.md), ``next_check_at`` as the scheduler's index (a ticket
is looked at when its ``next_check_at`` has passed), and escalations on
`disposisi.escalations` whose envelope ``ticket_id`` names the ticket and whose data carries
``triggered_at`` and ``fired_at``. Documents are made by the SLA domain's ``new_ticket`` for a
one-level policy (response level 1 at 100% of a 30-day 24x7 target: a ticket submitted 30 days
before its due time is due then, so every ticket was submitted in the last 30 days) and copied
with every instant shifted; fields of the contract that the domain function does not write yet
are added. If ``new_ticket`` changes its signature, ``template_ticket`` is the one place to
adjust.
"""

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from services.dev import create_topics, service_command
from services.sla.domain import new_ticket
from services.sla.policy import load_policy
from shared.contracts import TicketRouted, Topics, utc_now
from shared.credentials import kafka_client_options, mongo_client_options
from shared.embedded import die_with_parent, env_or_embedded, free_port
from shared.mongo import Document
from shared.settings import Settings, as_environment

RESPONSE_TARGET = timedelta(days=30)
POLICY = """\
# Benchmark policy: one escalation per ticket, when its 30-day 24x7 response target runs out.
timezone: Asia/Jakarta
calendars:
  always: {type: 24x7}
ceiling: {calendar: always, after: 90d}   # beyond the benchmark's month: never fires here
targets:
  - {name: bench, calendar: always, response: 30d, resolution: 60d}
escalation:
  - {clock: response, level: 1, at: 1.0, notify: [agency_head]}
"""
AGENCIES = ["DLH", "PUPR", "DISHUB", "PDAM", "DUKCAPIL", "DINSOS", "RSUD", "PERKIM"]


@dataclass
class Figures:
    tickets: int
    insert_seconds: float
    index_seconds: float
    due_query_ms: list[float]
    due_query_epoch_ms: list[float]
    fired_after_due: list[float]
    received_after_due: list[float]
    escalations_seen: int
    idle_seconds: float
    idle_cpu: dict[str, float]
    scheduler_interval: float


def template_ticket(policy_path: Path, due_at: datetime) -> Document:
    """One ticket as the SLA core stores it, due (its only level fires) at ``due_at``."""
    routed = TicketRouted.model_validate({
        "agency": "DLH", "agency_name": "Dinas Lingkungan Hidup", "authority": "kota",
        "priority": "normal", "category": "Sampah", "channel": "web",
        "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat",
        "submitted_at": due_at - RESPONSE_TARGET,
        "routing": {"rulebook_version": "bench", "rule_ids": ["dlh.sampah"],
                    "matched_terms": ["sampah"], "score": 1.0, "confidence": 1.0}})
    submitted = routed.submitted_at
    ticket = new_ticket("TEMPLATE", routed, load_policy(policy_path), assigned_at=submitted,
                        now=submitted)
    contract = {  # the ticket contract's fields, where the domain function lacks them
        "assignment": 1, "first_response_at": None, "resolved_at": None,
        "response_working_seconds": None, "resolution_working_seconds": None,
        "response_met": None, "resolution_met": None, "response_due_at": due_at,
        "resolution_due_at": submitted + 2 * RESPONSE_TARGET, "rejected_by": [], "pauses": [],
        "assignments": [{"agency": "DLH", "assignment": 1, "assigned_at": submitted,
                         "ended_at": None, "outcome": None, "reason": None}],
    }
    ticket = {**contract, **ticket}
    if ticket.get("next_check_at") != due_at:
        raise SystemExit(f"benchmark assumption broken: the SLA domain gives next_check_at "
                         f"{ticket.get('next_check_at')} for a ticket due at {due_at}; "
                         "adjust template_ticket or POLICY")
    return ticket


def shifted(value: Any, delta: timedelta) -> Any:
    """A copy of a document with every instant moved by ``delta``."""
    if isinstance(value, datetime):
        return value + delta
    if isinstance(value, dict):
        return {k: shifted(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [shifted(v, delta) for v in value]
    return value


def tickets_due(template: Document, template_due: datetime, dues: list[datetime],
                prefix: str, first: int) -> Iterator[Document]:
    for offset, due in enumerate(dues):
        number = first + offset
        doc = shifted(template, due - template_due)
        agency = AGENCIES[number % len(AGENCIES)]
        # next_check_ms: an integer copy of next_check_at, only for the comparison baseline.
        doc.update(_id=f"{prefix}-{number:07d}", agency=agency, next_check_ms=epoch_ms(due))
        doc["assignments"][0]["agency"] = agency
        yield doc


async def bulk_load(tickets: AsyncCollection[Document], template: Document, template_due: datetime,
                    count: int, batch: int) -> float:
    """Insert ``count`` tickets due uniformly between 1 hour and 30 days from now."""
    start, span = utc_now() + timedelta(hours=1), timedelta(days=30) - timedelta(hours=1)
    started = time.perf_counter()
    for first in range(0, count, batch):
        size = min(batch, count - first)
        dues = [start + span * ((first + i) / count) for i in range(size)]
        await tickets.insert_many(list(tickets_due(template, template_due, dues, "BULK", first)),
                                  ordered=False)
        done = first + size
        if done % max(batch, count // 10) < batch or done == count:
            rate = done / (time.perf_counter() - started)
            print(f"  inserted {done:>9,} tickets, {rate:,.0f} docs/s", flush=True)
    return time.perf_counter() - started


async def due_query_ms(tickets: AsyncCollection[Document], field: str, limit: int,
                       budget_seconds: float = 30.0) -> list[float]:
    """The scheduler's question asked raw, as often as fits in the budget (at least 5 times):
    the first ``limit`` tickets by ``field`` whose value has passed (none has)."""
    times: list[float] = []
    spent = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - spent < budget_seconds and len(times) < 50):
        now = utc_now()
        bound: datetime | int = now if field == "next_check_at" else epoch_ms(now)
        started = time.perf_counter()
        await tickets.find({field: {"$lte": bound}}).sort(field, ASCENDING).limit(limit).to_list(None)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def epoch_ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


async def sample_latency(settings: Settings, tickets: AsyncCollection[Document],
                         template: Document, template_due: datetime, sample: int,
                         wait_seconds: float) -> tuple[list[float], list[float], int]:
    """Insert ``sample`` tickets due 3 to 8 s from now; for each escalation seen, seconds from
    due (triggered_at) to fired_at, and to its arrival at a consumer."""
    consumer = AIOKafkaConsumer(Topics.ESCALATIONS, bootstrap_servers=settings.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", group_id=None, fetch_max_wait_ms=10,
                                **kafka_client_options(settings))
    await consumer.start()
    now = utc_now()
    dues = [now + timedelta(seconds=3 + 5 * i / sample) for i in range(sample)]
    await tickets.insert_many(list(tickets_due(template, template_due, dues, "SAMPLE", 0)))
    fired: dict[str, float] = {}
    received: dict[str, float] = {}
    seen = 0
    deadline = time.monotonic() + wait_seconds
    try:
        while len(fired) < sample and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            arrival = utc_now()
            for record in (r for rs in batches.values() for r in rs):
                seen += 1
                event = json.loads(record.value)
                ticket_id, data = event["ticket_id"], event["data"]
                if not ticket_id.startswith("SAMPLE-") or ticket_id in fired:
                    continue
                due = datetime.fromisoformat(data["triggered_at"])
                fired[ticket_id] = (datetime.fromisoformat(data["fired_at"]) - due).total_seconds()
                received[ticket_id] = (arrival - due).total_seconds()
    finally:
        await consumer.stop()
    if len(fired) < sample:
        print(f"  only {len(fired)} of {sample} sample tickets escalated within {wait_seconds:.0f} s")
    return sorted(fired.values()), sorted(received.values()), seen


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Percent of one core each process used over ``seconds`` of wall time."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    return {name: 100 * (cpu_seconds(pid) - before[name]) / wall for name, pid in pids.items()}


def start_sla(settings: Settings, log_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **as_environment(settings)}
    process = subprocess.Popen(service_command("sla"), env=env, preexec_fn=die_with_parent,
                               stdout=(log_dir / "sla.log").open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the SLA service exited with {process.returncode}; see {log_dir / 'sla.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{settings.sla_port}/readyz", timeout=5).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the SLA service did not become healthy within 300 s")


async def load(settings: Settings, template: Document, template_due: datetime,
               args: argparse.Namespace) -> tuple[float, float, list[list[float]]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, **mongo_client_options(settings))
    tickets = client[settings.mongodb_database]["tickets"]
    try:
        insert_seconds = await bulk_load(tickets, template, template_due, args.tickets, args.batch)
        started = time.perf_counter()
        # The SLA service creates this index too; built here, after the load, it is timed apart
        # and the service's own create_index finds it in place.
        await tickets.create_index([("next_check_at", ASCENDING)])
        index_seconds = time.perf_counter() - started
        await tickets.create_index([("next_check_ms", ASCENDING)])
        baselines = [await due_query_ms(tickets, field, settings.scheduler_batch_size)
                     for field in ("next_check_at", "next_check_ms")]
    finally:
        await client.close()
    return insert_seconds, index_seconds, baselines


async def measure(settings: Settings, template: Document, template_due: datetime,
                  sample: int) -> tuple[list[float], list[float], int]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, **mongo_client_options(settings))
    try:
        return await sample_latency(settings, client[settings.mongodb_database]["tickets"],
                                    template, template_due, sample, wait_seconds=120)
    finally:
        await client.close()


def run(args: argparse.Namespace, work: Path) -> Figures:
    bootstrap, mongo_url, servers = env_or_embedded(work)
    sla: subprocess.Popen[bytes] | None = None
    try:
        policy = work / "policy-bench.yaml"
        policy.write_text(POLICY)
        settings = Settings(kafka_bootstrap_servers=bootstrap, mongodb_url=mongo_url,
                            mongodb_database=f"bench_{uuid.uuid4().hex[:8]}", sla_policy=policy,
                            sla_port=free_port(), intake_port=free_port(), router_port=free_port(),
                            auth_secret=secrets.token_urlsafe(48))  # the service refuses to start without
        template_due = utc_now()
        template = template_ticket(policy, template_due)
        asyncio.run(create_topics(settings))
        print(f"loading {args.tickets:,} open tickets due over the next 30 days", flush=True)
        insert_seconds, index_seconds, (baseline, epoch_baseline) = asyncio.run(
            load(settings, template, template_due, args))
        print("starting the SLA service", flush=True)
        sla = start_sla(settings, work)
        fired, received, seen = asyncio.run(measure(settings, template, template_due, args.sample))
        time.sleep(2)  # let the last turn and outbox publish settle before the idle window
        pids = {"sla service": sla.pid}
        pids.update({server.name: server.process.pid for server in servers})
        print(f"measuring CPU for {args.idle_seconds:.0f} s with nothing due", flush=True)
        cpu = idle_cpu(pids, args.idle_seconds)
    finally:
        if sla is not None:
            sla.terminate()
            sla.wait()
        for server in servers:
            server.stop()
    return Figures(args.tickets, insert_seconds, index_seconds, baseline, epoch_baseline, fired,
                   received, seen,
                   args.idle_seconds, cpu, settings.scheduler_interval_seconds)


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))]


def report(figures: Figures) -> None:
    n = figures.tickets
    print(f"N = {n:,} open tickets (+ the sample), scheduler interval "
          f"{figures.scheduler_interval:g} s")
    print(f"bulk insert                   : {figures.insert_seconds:8.1f} s  "
          f"{n / figures.insert_seconds:9,.0f} docs/s")
    print(f"next_check_at index build     : {figures.index_seconds:8.1f} s")
    for label, q in (("raw due-query, next_check_at", figures.due_query_ms),
                     ("same on integer epoch ms", figures.due_query_epoch_ms)):
        print(f"{label:<30}: p50 {statistics.median(q):.1f} ms, "
              f"max {q[-1]:.1f} ms ({len(q)} queries, store otherwise idle)")
    # fired_at is stamped when a scheduler turn starts, before its due-query returns; the
    # consumer's figure is when a supervisor could first know.
    for label, values in (("due -> fired_at (turn start)", figures.fired_after_due),
                          ("due -> consumer has it", figures.received_after_due)):
        if values:
            print(f"{label:<30}: p50 {statistics.median(values) * 1000:.0f} ms, "
                  f"p99 {percentile(values, 0.99) * 1000:.0f} ms ({len(values)} sample tickets)")
    print(f"escalations on the topic      : {figures.escalations_seen} (only the sample is due)")
    for name, percent in figures.idle_cpu.items():
        print(f"idle CPU, {name:<20}: {percent:5.1f} % of a core over {figures.idle_seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--batch", type=int, default=5000, help="documents per insert_many")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="disposisi-sla-bench-"))
    figures = run(args, work)
    report(figures)
    print(f"(logs and store files in {work})")


if __name__ == "__main__":
    main()
