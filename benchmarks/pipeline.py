"""Pipeline benchmark, each figure beside a baseline measured in the same run:

- N complaints published to `disposisi.complaints.submitted` until N tickets are stored, next
  to raw aiokafka produce+consume of N same-sized messages on the same broker, and next to the
  store's own limit for the pipeline's command mix: every store command the services sent
  meanwhile (recorded by a command listener) replayed as fast as the store answers them, with
  1, 4, 16 and 64 commands in flight per service (the quickest is the limit);
- accepted HTTP submissions per second (`POST /v1/complaints`, `--http` of them, `--concurrency`
  at a time), once with the router and SLA working on them meanwhile and once with those two
  paused (intake alone, as the baselines run), next to a plain insert-one loop of the same
  documents on the same store with the same concurrency, and next to a trivial endpoint on the
  same HTTP stack;
- POST -> agency queue latency, one complaint at a time.

    python -m benchmarks.pipeline --n 10000

Starts the embedded broker and store (or uses DISPOSISI_KAFKA_BOOTSTRAP_SERVERS /
DISPOSISI_MONGODB_URL) and the three services as processes, as `disposisi dev` does.
"""

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from benchmarks import commands
from benchmarks.http_load import insert_one_loop, post_load, served_trivial_app
from services.dev import create_topics
from shared.accounts import AccountStore
from shared.contracts import Topics
from shared.credentials import kafka_client_options, mongo_client_options
from shared.embedded import die_with_parent, env_or_embedded, free_port
from shared.mongo import Document
from shared.settings import Settings, as_environment

TEXTS = ["Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat",
         "Jalan berlubang besar di depan SD 5, sudah ada motor jatuh",
         "Air PDAM mati sejak kemarin pagi di perumahan kami",
         "Lampu jalan mati total di gang Mawar, rawan begal"]


def submissions(n: int) -> list[bytes]:
    return [json.dumps({"id": str(uuid.uuid4()), "type": "complaint.submitted",
                        "tenant": "kota-bengkulu",
                        "data": {"channel": "whatsapp", "external_id": f"bench-{i}",
                                 "text": TEXTS[i % len(TEXTS)]}}).encode() for i in range(n)]


async def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5,
                                **kafka_client_options(settings))
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=str(i).encode()) for i, v in enumerate(values)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_baseline(bootstrap: str, values: list[bytes]) -> float:
    """Raw aiokafka: produce N messages and consume them all back, on the same broker."""
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    settings = Settings(kafka_bootstrap_servers=bootstrap)
    from shared.kafka import ensure_topics

    await ensure_topics(settings, [topic])
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False, **kafka_client_options(settings))
    await consumer.start()
    started = time.perf_counter()
    await produce(settings, topic, values)
    seen = 0
    while seen < len(values):
        batches = await consumer.getmany(timeout_ms=500, max_records=5000)
        seen += sum(len(records) for records in batches.values())
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return elapsed


async def pipeline(settings: Settings, values: list[bytes]) -> float:
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url,
                                                          **mongo_client_options(settings))
    tickets = client[settings.mongodb_database]["tickets"]
    started = time.perf_counter()
    await produce(settings, Topics.SUBMITTED, values)
    # estimated_document_count is the cheap `count` command; count_documents is an aggregation
    # that this store answers slowly, and polling with it would slow the pipeline it measures.
    while await tickets.estimated_document_count() < len(values):
        await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


async def tickets_at_least(settings: Settings, count: int | None, *, within: float = 600.0) -> float:
    """Wait (at most ``within`` seconds) until ``count`` tickets are stored (None: as many as
    intake stored complaints, so a post that was refused is not waited for); seconds waited."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url,
                                                          **mongo_client_options(settings))
    db = client[settings.mongodb_database]
    started = time.perf_counter()
    while (await db["tickets"].estimated_document_count()
           < (count if count is not None else await db["complaints"].estimated_document_count())
           and time.perf_counter() - started < within):
        await asyncio.sleep(0.2)
    await client.close()
    return time.perf_counter() - started


async def web_channel_key(settings: Settings) -> str:
    """A web channel's API key, made as `disposisi admin create-api-key` makes one."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url,
                                                          **mongo_client_options(settings))
    try:
        store = AccountStore(client[settings.mongodb_database])
        _, key = await store.create_api_key(tenant=settings.tenant, kind="channel", name="web")
    finally:
        await client.close()
    return key


async def latency(settings: Settings, count: int) -> list[float]:
    """Seconds from `POST /v1/complaints` to the ticket on the agency's queue, one complaint at
    a time (the pipeline idle otherwise): what a citizen and an agency wait in normal use."""
    consumer = AIOKafkaConsumer(Topics.agency("DLH"), bootstrap_servers=settings.kafka_bootstrap_servers,
                                auto_offset_reset="latest", group_id=None, fetch_max_wait_ms=10,
                                **kafka_client_options(settings))
    await consumer.start()
    await consumer.seek_to_end()
    waits: list[float] = []
    headers = {"X-API-Key": await web_channel_key(settings)}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.intake_port}",
                                 headers=headers, timeout=60) as http:
        for _ in range(count):
            started = time.perf_counter()
            try:
                response = await http.post("/v1/complaints",
                                           json={"channel": "web", "text": TEXTS[0]})
            except httpx.HTTPError as error:
                say(f"    a latency sample failed ({type(error).__name__}), left out")
                continue
            if response.status_code != 202:  # e.g. 503 when the store timed out on a loaded machine
                say(f"    a latency sample answered {response.status_code}, left out")
                continue
            ticket_id = response.json()["ticket_id"]
            while True:
                record = await consumer.getone()
                if record.key == ticket_id.encode():
                    waits.append(time.perf_counter() - started)
                    break
    await consumer.stop()
    return sorted(waits)


SERVICES = ("intake", "router", "sla")
STORES = ("mongodb",)  # the embedded store's process (NX-27017 or SecantusDB), as `watched` names it


def recordings(log_dir: Path) -> list[Path]:
    return [log_dir / f"{name}.commands" for name in SERVICES]


def start_services(settings: Settings, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    """The services as `disposisi SERVICE` runs them, each recording its store commands."""
    env = {**os.environ, **as_environment(settings)}
    processes = [subprocess.Popen([sys.executable, "-m", "benchmarks.commands", "record",
                                   str(recording), name], env=env, preexec_fn=die_with_parent,
                                  stdout=(log_dir / f"{name}.log").open("wb"),
                                  stderr=subprocess.STDOUT)
                 for name, recording in zip(SERVICES, recordings(log_dir), strict=True)]
    for port in (settings.intake_port, settings.router_port, settings.sla_port):
        _wait_healthy(f"http://127.0.0.1:{port}/readyz")
    return processes


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--http", type=int, default=2000, help="HTTP submissions to time")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP requests in flight")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="disposisi-bench-"))
    bootstrap, mongo_url, servers = env_or_embedded(work)
    settings = Settings(kafka_bootstrap_servers=bootstrap, mongodb_url=mongo_url,
                        mongodb_database=f"bench_{uuid.uuid4().hex[:8]}", intake_port=free_port(),
                        router_port=free_port(), sla_port=free_port(),
                        auth_secret=secrets.token_urlsafe(48),
                        # One address posts every sample: a citizen's rate limit would refuse it.
                        rate_limits_enabled=False)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(create_topics(settings))
        processes = start_services(settings, work)
        watched = {"intake": processes[0].pid,
                   **{server.name.split()[0]: server.process.pid for server in servers},
                   "load generator": os.getpid()}
        run_phases(settings, args, work, mongo_url, bootstrap, downstream=processes[1:],
                   watched=watched)
    finally:
        for process in processes:
            process.terminate()
            process.wait()
        for server in servers:
            server.stop()


def say(line: str) -> None:
    """Each figure as soon as it is measured: a run cut short still shows what it measured."""
    print(line, flush=True)


def run_phases(settings: Settings, args: argparse.Namespace, work: Path, mongo_url: str,
               bootstrap: str, downstream: list[subprocess.Popen[bytes]],
               watched: dict[str, int]) -> None:
    n = args.n
    values = submissions(n)
    say(f"N = {n} complaints, {sum(map(len, values)) / n:.0f} bytes each; load {_load()}")
    baseline = asyncio.run(raw_baseline(bootstrap, values))
    say(f"raw aiokafka produce+consume : {baseline:8.2f} s  {n / baseline:9.0f} msg/s")
    store = {name: pid for name, pid in watched.items() if name in STORES}
    window_start, cpu_before = time.time(), cpu_seconds(store)
    elapsed = asyncio.run(pipeline(settings, values))
    window = (window_start, time.time())
    store_cpu = sum(cpu_seconds(store).values()) - sum(cpu_before.values())
    say(f"disposisi submitted->ticket  : {elapsed:8.2f} s  {n / elapsed:9.0f} complaints/s")
    say(f"ratio pipeline / raw         : {elapsed / baseline:8.1f} x")
    waits = asyncio.run(latency(settings, args.latency_samples))
    p50, p99 = waits[len(waits) // 2], waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    say(f"HTTP POST -> agency queue    : p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
        f"({len(waits)} complaints one at a time)")
    by_service = {name: commands.command_mix([path], window)
                  for name, path in zip(SERVICES, recordings(work), strict=True)}
    mix = sum(by_service.values(), Counter[str]())
    replayed = asyncio.run(commands.replay(
        mongo_url, settings.mongodb_database, recordings(work), window,
        client_options=mongo_client_options(settings),
        store_cpu=lambda: sum(cpu_seconds(store).values())))
    for in_flight, seconds in replayed.seconds.items():
        cpu = f"; the store's CPU {replayed.store_cpu[in_flight]:.2f} s" if store else ""
        say(f"    replayed, {in_flight:2d} in flight per service: {seconds:8.2f} s{cpu}")
    best, limit = replayed.best
    say(f"store limit for its commands : {limit:8.2f} s  {n / limit:9.0f} complaints/s "
        f"({replayed.commands} commands, {replayed.commands / n:.2f} per complaint, "
        f"+{replayed.follow_ups} getMore; replayed, {best} in flight per service)")
    say(f"pipeline / store limit       : {limit / elapsed:8.2f}"
        + (f"  (the store's CPU in the pipeline {store_cpu:.2f} s)" if store else ""))
    for kind, count in mix.most_common(12):
        say(f"    {count / n:6.2f} per complaint  {kind}")
    say("    commands by service       : " + ", ".join(
        f"{name} {mix_of_one.total()}" for name, mix_of_one in by_service.items()))
    say("    documents written per complaint: " + ", ".join(
        f"{kind} {rows / n:.2f}" for kind, rows in commands.written(recordings(work), window).most_common(8)))
    key = asyncio.run(web_channel_key(settings))
    intake_url = f"http://127.0.0.1:{settings.intake_port}"
    http = asyncio.run(post_load(intake_url, key, args.http, args.concurrency))
    say(f"HTTP accepted submissions    : {http:8.0f} /s  ({args.concurrency} in flight); load {_load()}")
    # The pipeline idle again before the next baselines.
    drained = asyncio.run(tickets_at_least(settings, None, within=180))
    say(f"HTTP submissions ticketed    : {drained:8.1f} s after the last 202 (at most 180 s)")
    before, stored_before = cpu_seconds(watched), asyncio.run(stored_complaints(settings))
    alone, window = asyncio.run(intake_alone(intake_url, key, args, downstream))
    spent = {name: seconds - before[name] for name, seconds in cpu_seconds(watched).items()}
    accepted = asyncio.run(stored_complaints(settings)) - stored_before
    say(f"HTTP accepted, intake alone  : {alone:8.0f} /s  ({args.concurrency} in flight; router "
        f"and SLA paused as during the baselines); load {_load()}")
    say("    CPU per post sent         : " + ", ".join(
        f"{name} {seconds * 1000 / args.http:.2f} ms" for name, seconds in spent.items()))
    say_commands_per_post(commands.command_mix([work / "intake.commands"], window), accepted)
    say("    documents written per post: " + ", ".join(
        f"{kind} {rows / accepted:.2f}" for kind, rows
        in documents_written(work / "intake.commands", window).most_common(8)))
    drained = asyncio.run(tickets_at_least(settings, None, within=180))
    say(f"    ...ticketed              : {drained:8.1f} s after the router and SLA went on")
    with served_trivial_app(work) as trivial_url:
        trivial = asyncio.run(post_load(trivial_url, key, args.http, args.concurrency))
    inserts = asyncio.run(insert_one_loop(settings, args.http, args.concurrency))
    say(f"plain insert_one loop        : {inserts:8.0f} /s  ratio {alone / inserts:.2f} intake alone, "
        f"{http / inserts:.2f} pipeline running")
    say(f"trivial endpoint, same stack : {trivial:8.0f} /s  ratio {alone / trivial:.2f} intake alone, "
        f"{http / trivial:.2f} pipeline running")


# After the last answer, intake still publishes (and audits) what it accepted last: the
# commands counted per post wait this long for those, the router and SLA still paused.
SETTLE_SECONDS = 1.0


async def intake_alone(intake_url: str, key: str, args: argparse.Namespace,
                       downstream: list[subprocess.Popen[bytes]]) -> tuple[float, commands.Window]:
    """Accepted submissions per second while the router and SLA are stopped (SIGSTOP), so
    that, like the insert loop and the trivial endpoint, intake has the store and the CPUs
    to itself; their work on these complaints waits in the broker and runs after SIGCONT.
    With them running, each submission also pays for its routing and its ticket on the same
    two cores and the same store (the "pipeline running" figure). Also the time window in
    which intake did that work alone (for its store commands)."""
    for process in downstream:
        process.send_signal(signal.SIGSTOP)
    try:
        started = time.time()
        rate = await post_load(intake_url, key, args.http, args.concurrency)
        await asyncio.sleep(SETTLE_SECONDS)
        return rate, (started, time.time())
    finally:
        for process in downstream:
            process.send_signal(signal.SIGCONT)


async def stored_complaints(settings: Settings) -> int:
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url,
                                                          **mongo_client_options(settings))
    try:
        return await client[settings.mongodb_database]["complaints"].estimated_document_count()
    finally:
        await client.close()


def say_commands_per_post(mix: Counter[str], accepted: int) -> None:
    """Intake's store commands per accepted post (while it ran alone), by command and
    collection: what a submission costs the store, beside the single insert of the baseline."""
    if not accepted:
        return
    say(f"    store commands per post   : {mix.total() / accepted:.2f} "
        f"(intake's, {accepted} accepted)")
    for kind, count in mix.most_common():
        say(f"    {count / accepted:6.3f} per post  {kind} ({count})")


def documents_written(path: Path, window: commands.Window) -> Counter[str]:
    """Documents inserted, and updated by id, per kind: an update statement whose filter is
    ``{"_id": {"$in": ids}}`` (the outbox marking a batch published) counts its ids, any
    other statement one."""
    rows: Counter[str] = Counter()
    for _, command in commands.recorded(path, window):
        name = next(iter(command))
        kind = f"{name} {command[name]}"
        rows[kind] += len(command.get("documents") or [])
        for statement in command.get("updates") or []:
            ids = statement.get("q", {}).get("_id")
            rows[kind] += len(ids["$in"]) if isinstance(ids, dict) and "$in" in ids else 1
    return rows


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each process has used so far, from /proc (Linux; elsewhere
    nothing). Less at the mercy of other load on the machine than a rate: what a request
    costs, not how soon it got a core."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return used


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
