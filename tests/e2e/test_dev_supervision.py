"""`disposisi dev` as a supervisor: a killed broker or store comes back and routing goes on;
SIGTERM in the middle of a burst drains the broker, so every complaint answered 202 is a ticket
after the stop; one instance per data directory; a stale store pid file does not block."""

import asyncio
import functools
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.dev import DevOptions, create_topics, services_not_ready
from shared.contracts import Topics
from shared.embedded import free_port, mongo_pid_file, remove_stale_pid_file, start_mongo
from shared.mongo import Document
from shared.runtime import STOP_ACCEPTING_SIGNAL
from shared.settings import Settings
from tests.conftest import CLUSTER_MODE
from tests.e2e.dev_support import BANNER, DevSystem
from tests.e2e.support import spawn, stop, wait_healthy
from tests.integration.auth_support import Accounts
from tests.integration.support import eventually, produce

pytestmark = pytest.mark.e2e

COMPLAINT = {"channel": "web", "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut"}
# Decided at collection: the cluster mode sets the broker's address only per test.
EXTERNAL_KAFKA = CLUSTER_MODE or bool(os.environ.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS"))
EXTERNAL_STORE = bool(os.environ.get("DISPOSISI_MONGODB_URL"))
EMBEDDED_BROKER_ONLY = pytest.mark.skipif(
    EXTERNAL_KAFKA or EXTERNAL_STORE,
    reason="about the embedded broker dev supervises (restart, drain before stopping it); an "
           "external Kafka cluster is not dev's to restart or stop")
RECONCILE_NEVER = 100_000  # s: no reconciliation turn republishes anything during a test
EMBEDDED_STORE_ONLY = pytest.mark.skipif(
    EXTERNAL_STORE, reason="supervises the embedded store; an external one is not its to restart")


@pytest.fixture(scope="class")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevSystem]:
    """One `disposisi dev` for the tests that kill a server under it (starting it is most of
    their time): each kills another one, and each posts and follows a complaint of its own
    after the restart, so neither depends on what the other did. Stopped after them, before
    the tests that start a system of their own."""
    tmp_path = tmp_path_factory.mktemp("dev-supervision")
    # Reconciliation far away: a complaint the broker's death cost is delivered by what acts on
    # the restart itself, or not in the test's time. The posts come from one address, trusted
    # as a channel gateway is (the per-key limit still counts).
    system = DevSystem(tmp_path / "data", tmp_path / "dev.log",
                       DISPOSISI_RECONCILE_AFTER_SECONDS=str(RECONCILE_NEVER),
                       DISPOSISI_TRUSTED_ADDRESSES='["127.0.0.1"]')
    try:
        yield system
    finally:
        stop(system.process, signal.SIGTERM, timeout=120)


async def _post_until_accepted(http: httpx.AsyncClient, dev: DevSystem) -> str:
    """A post during a restart may fail; a channel retries until it gets its 202."""
    async def attempt() -> str | None:
        try:
            answer = await http.post(f"{dev.intake}/v1/complaints", json=COMPLAINT, timeout=10,
                                     headers=dev.channel_headers())
        except httpx.HTTPError:
            return None
        return str(answer.json()["ticket_id"]) if answer.status_code == 202 else None

    ticket_id: str | None = await eventually(attempt, timeout=120)
    assert ticket_id, "no complaint accepted within 120 s"
    return ticket_id


async def _routed(http: httpx.AsyncClient, url: str, ticket_id: str, *,
                  timeout: float = 120) -> bool:
    async def agency() -> str | None:
        try:
            answer = await http.get(f"{url}/v1/complaints/{ticket_id}", timeout=10)
            if answer.status_code == 429:  # the tracking view's limit per address: wait as told
                await asyncio.sleep(float(answer.headers["Retry-After"]))
                return None
            view = answer.json()
        except (httpx.HTTPError, ValueError):
            return None
        return view.get("agency") if isinstance(view, dict) else None

    routed: bool = await eventually(agency, timeout=timeout) == "DLH"
    return routed


async def _not_routed(http: httpx.AsyncClient, url: str, ticket_ids: list[str], *,
                      timeout: float) -> list[str]:
    """Those of the tickets not routed to DLH when ``timeout`` ran out; all are waited for
    together, each checked until it is routed."""
    waiting = list(ticket_ids)

    async def all_routed() -> bool:
        checks = await asyncio.gather(*(_routed(http, url, t, timeout=0) for t in waiting[:20]))
        waiting[:20] = [t for t, routed in zip(waiting[:20], checks, strict=True) if not routed]
        return not waiting

    await eventually(all_routed, timeout=timeout)
    return waiting


async def _kill_and_wait_restarted(dev: DevSystem, name: str, done: str) -> None:
    old = dev.pids()[name]
    os.kill(old, signal.SIGKILL)
    assert await eventually(lambda: _is_replaced(dev, name, old), timeout=60), \
        f"{name} not restarted:\n{dev.output()[-3000:]}"
    dev.wait_for_output(done, timeout=60)


async def _is_replaced(dev: DevSystem, name: str, old: int) -> bool:
    return dev.pids().get(name, old) != old


class TestAServerKilledUnderDev:
    """The store, then the broker, killed with -9 under one running `disposisi dev`."""

    @EMBEDDED_STORE_ONLY
    async def test_killed_store_comes_back_and_routing_goes_on(self, dev: DevSystem) -> None:
        """On the embedded broker or on a Kafka cluster alike: one dev per data directory, the
        banner only once every service answers, and a store killed with -9 is restarted."""
        dev.wait_for_output(BANNER)
        async with httpx.AsyncClient() as http:
            # the banner comes only once every service answers
            for url in (dev.intake, dev.router, dev.sla):
                assert (await http.get(f"{url}/healthz")).status_code == 200
            # a second dev on the same data directory refuses, naming the reason
            second = await asyncio.to_thread(functools.partial(
                subprocess.run, dev.command({name: free_port() for name in dev.ports}), env=dev.env,
                capture_output=True, text=True, timeout=60))
            assert second.returncode == 2
            assert "another disposisi dev" in second.stderr and str(dev.process.pid) in second.stderr

            assert await _routed(http, dev.intake, await _post_until_accepted(http, dev))

            await _kill_and_wait_restarted(dev, "mongodb", "mongodb restarted")
            assert await _routed(http, dev.intake, await _post_until_accepted(http, dev))
        assert "mongodb restarted" in dev.output()


    @EMBEDDED_BROKER_ONLY
    async def test_killed_broker_comes_back_and_routing_goes_on(self, dev: DevSystem) -> None:
        """Complaints posted steadily before, during and after a kill -9 of the broker are all
        routed, with reconciliation out of reach (``RECONCILE_NEVER``). Two things the restart
        did cost before: consumers kept their offsets from the lost log, and Tansu answers a
        fetch past a partition's end with nothing (Kafka: out of range, start again), so they
        skipped what the new log held below those offsets, the complaints posted right after
        the restart among them; and what the old broker had acknowledged and nobody had read
        was gone. Both waited for reconciliation (2 minutes). Now consumers past a replaced
        log's end are rewound, and intake, seeing it, republishes what still waits."""
        dev.wait_for_output(BANNER)
        headers = dev.channel_headers()
        accepted: list[str] = []
        async with httpx.AsyncClient() as http:
            assert await _routed(http, dev.intake, await _post_until_accepted(http, dev))
            restarted = asyncio.Event()
            after_restart = 0

            async def post_steadily() -> None:
                nonlocal after_restart
                while after_restart < POSTED_AFTER_RESTART:
                    try:
                        answer = await http.post(f"{dev.intake}/v1/complaints", json=COMPLAINT,
                                                 headers=headers, timeout=10)
                    except httpx.HTTPError:
                        answer = None  # intake cannot store it now: a channel posts it again
                    if answer is not None and answer.status_code == 202:
                        accepted.append(answer.json()["ticket_id"])
                        after_restart += restarted.is_set()
                    await asyncio.sleep(0.05)

            posting = asyncio.create_task(post_steadily())
            await asyncio.sleep(POSTING_BEFORE_KILL_SECONDS)  # offsets well past 0 everywhere
            await _kill_and_wait_restarted(dev, "kafka", "kafka restarted")
            restarted.set()
            await posting
            unrouted = await _not_routed(http, dev.intake, accepted, timeout=120)
        assert not unrouted, (f"{len(unrouted)} of {len(accepted)} complaints posted around the "
                              f"broker's restart not routed: {unrouted}\n{dev.output()[-3000:]}")
        assert "kafka restarted" in dev.output()
        # The services' consumers saw the replaced log (their warnings reach dev's output, so
        # a run without a restart that shows none, test_dev_command, means none happened).
        assert "log was replaced" in dev.output()


POSTING_BEFORE_KILL_SECONDS = 3.0
POSTED_AFTER_RESTART = 20


HTTP_BURST = 120
KAFKA_BURST = 150


def _submission(i: int) -> tuple[str | None, bytes]:
    event = {"id": f"burst-{i}", "type": "complaint.submitted", "tenant": "kota-bengkulu",
             "data": {"channel": "whatsapp", "external_id": f"burst-{i}",
                      "text": "Jalan berlubang besar di depan sekolah, sudah sebulan"}}
    return None, json.dumps(event).encode()


@EMBEDDED_BROKER_ONLY
async def test_sigterm_mid_burst_drains_so_every_accepted_complaint_becomes_a_ticket(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # The burst plays a channel gateway posting for many citizens from one address: that
    # address is trusted (the per-key limit still counts), as a deployment configures it.
    dev = DevSystem(data_dir, tmp_path / "dev.log", DISPOSISI_DRAIN_TIMEOUT_SECONDS="120",
                    DISPOSISI_TRUSTED_ADDRESSES='["127.0.0.1"]')
    accepted: list[str] = []
    try:
        dev.wait_for_output(BANNER)
        # channel adapters' submissions, acknowledged by the broker: only in its memory
        await produce(dev.kafka, Topics.SUBMITTED, [_submission(i) for i in range(KAFKA_BURST)])
        headers = dev.channel_headers()
        async with httpx.AsyncClient() as http:
            async def post(i: int) -> None:
                if i == HTTP_BURST // 3:
                    dev.process.send_signal(signal.SIGTERM)
                try:
                    answer = await http.post(f"{dev.intake}/v1/complaints", json=COMPLAINT,
                                             headers=headers, timeout=30)
                except httpx.HTTPError:
                    return  # refused once intake stopped: not accepted, nothing promised
                if answer.status_code == 202:
                    accepted.append(answer.json()["ticket_id"])

            for start in range(0, HTTP_BURST, 10):
                await asyncio.gather(*(post(i) for i in range(start, start + 10)))
        assert dev.process.wait(180) == 0
    finally:
        stop(dev.process, signal.SIGTERM)
    output = dev.output()
    assert "drained in" in output, output[-3000:]
    assert len(accepted) >= HTTP_BURST // 3

    # Right after the stop, before anything restarts: the drain already made every one a ticket.
    store = start_mongo(free_port(), data_dir)
    try:
        missing = await _without_ticket(f"mongodb://{store.address}/?directConnection=true",
                                        accepted)
    finally:
        store.stop()
    assert missing == {"http": [], "kafka": []}

    # And the system starts again on the same data directory (lock released, pid files fine).
    again = DevSystem(data_dir, tmp_path / "dev-again.log")
    try:
        again.wait_for_output(BANNER)
        async with httpx.AsyncClient() as http:
            assert await _routed(http, again.intake, accepted[-1])
    finally:
        assert stop(again.process, signal.SIGTERM, timeout=120) == 0


async def _without_ticket(mongodb_url: str, http_ticket_ids: list[str]) -> dict[str, list[str]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url)
    try:
        db = client["disposisi"]
        tickets = {t["_id"] for t in await db["tickets"].find({}, {"_id": 1}).to_list(None)}
        complaints = await db["complaints"].find({}, {"ticket_id": 1}).to_list(None)
        stored = {c["ticket_id"] for c in complaints}
        by_external = {c["_id"]: c["ticket_id"] for c in complaints}
    finally:
        await client.close()
    kafka_keys = [f"ext:kota-bengkulu:whatsapp:burst-{i}" for i in range(KAFKA_BURST)]
    return {
        "http": [t for t in http_ticket_ids if t not in stored or t not in tickets],
        "kafka": [k for k in kafka_keys if by_external.get(k) not in tickets],
    }


@pytest.mark.own_servers
def test_a_stale_store_pid_file_does_not_block_a_start(tmp_path: Path) -> None:
    """NX-27017 refuses to start while its pid file names a live process; after a kill -9
    the file stays, and the pid in it may belong to another process by then."""
    port = free_port()
    pid_file = mongo_pid_file(tmp_path, port)
    pid_file.write_text(str(os.getpid()))  # alive, and not an NX-27017
    server = start_mongo(port, tmp_path)
    try:
        assert server.process.poll() is None
        assert pid_file.read_text().strip() == str(server.process.pid)
    finally:
        server.stop()


@pytest.mark.own_servers
def test_the_pid_file_of_a_running_store_is_kept(tmp_path: Path) -> None:
    port = free_port()
    server = start_mongo(port, tmp_path)
    try:
        remove_stale_pid_file(mongo_pid_file(tmp_path, port))
        assert mongo_pid_file(tmp_path, port).read_text().strip() == str(server.process.pid)
    finally:
        server.stop()


class _NotReadyYet(BaseHTTPRequestHandler):
    """A service from before /readyz existed, whose /healthz says it is not ready."""

    def do_GET(self) -> None:
        self.send_response(404 if self.path == "/readyz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.mark.own_servers
def test_readiness_names_each_service_that_is_not_ready_and_why(tmp_path: Path) -> None:
    options = DevOptions(tmp_path, intake_port=free_port(), router_port=free_port(),
                         sla_port=free_port(), console_port=free_port(),
                         notify_port=free_port(), chat_port=free_port(),
                         mailbox_port=free_port(), lapor_port=free_port())
    server = ThreadingHTTPServer(("127.0.0.1", options.router_port), _NotReadyYet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        waiting = services_not_ready(options)
    finally:
        server.shutdown()
        server.server_close()
    assert waiting["router"] == "/healthz answered 503"
    assert waiting["intake"].startswith("not answering")
    assert set(waiting) == {"intake", "router", "sla", "console", "notify", "chat", "mailbox",
                            "lapor"}


async def test_a_service_told_to_stop_accepting_refuses_posts_and_goes_on_consuming(
        settings: Settings, accounts: Accounts, mongo: AsyncMongoClient[Document],
        tmp_path: Path) -> None:
    """What `disposisi dev` does first when stopping (tests/unit/test_dev_stop_order.py): new
    work over HTTP answers 503 with Retry-After and /readyz says why, while intake goes on
    taking channel submissions from the broker, so that the drain that follows can empty it.
    The services run as dev starts them (only the three a submission passes through)."""
    web = await accounts.channel("web")
    await create_topics(settings)
    processes = [spawn(name, settings, tmp_path) for name in ("intake", "router", "sla")]
    intake_url = f"http://127.0.0.1:{settings.intake_port}"
    try:
        for port, process in zip((settings.intake_port, settings.router_port, settings.sla_port),
                                 processes, strict=True):
            await asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{port}", process)
        processes[0].send_signal(STOP_ACCEPTING_SIGNAL)
        async with httpx.AsyncClient(timeout=30, headers=web.headers) as http:
            async def refused() -> httpx.Response | None:
                answer = await http.post(f"{intake_url}/v1/complaints", json=COMPLAINT)
                return answer if answer.status_code == 503 else None

            answer = await eventually(refused, timeout=60)  # the signal arrives asynchronously
            assert answer is not None, "intake still accepts posts after being told to stop"
            assert answer.headers["Retry-After"]
            assert answer.json()["errors"][0]["problem"] == "the service is stopping; retry later"
            ready = await http.get(f"{intake_url}/readyz")
            assert ready.status_code == 503 and "accepting" in ready.json()["failed"]

        await produce(settings.kafka_bootstrap_servers, Topics.SUBMITTED, [_submission(0)])
        db = mongo[settings.mongodb_database]

        async def ticketed() -> bool:
            complaint = await db["complaints"].find_one({"_id": "ext:kota-bengkulu:whatsapp:burst-0"})
            return bool(complaint and await db["tickets"].find_one({"_id": complaint["ticket_id"]}))

        assert await eventually(ticketed, timeout=120), "the submission never became a ticket"
    finally:
        for process in processes:
            stop(process)
