"""Console page benchmark: with N open tickets in one agency's inbox, how long the officer's
pages take (the inbox's first page, filtered pages, a search, a late page, one ticket, the
triage desk's queue), next to what the pages call in the same run (the SLA API's
``GET /v1/tickets`` and ``GET /v1/tickets/{id}`` with the officer's token) and a trivial
endpoint of the same stack (the SLA's ``/healthz``).

    python -m benchmarks.console --n 10000 --requests 40

The SLA service and the console run as processes, as `disposisi dev` starts them; the tickets
are opened through the SLA's own store code (as routing decisions would open them), submitted
over the last 2 hours (none due yet under the default policy: the scheduler has nothing to
fire while pages are measured), in 8 categories and 20 kelurahan. Starts the embedded broker and store (or
uses DISPOSISI_KAFKA_BOOTSTRAP_SERVERS / DISPOSISI_MONGODB_URL). The goal is under 300 ms.
"""

import argparse
import asyncio
import contextlib
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient

from services.sla.flows import Sla
from shared.accounts import AccountStore, Role, generate_password
from shared.contracts import utc_now
from shared.credentials import mongo_client_options
from shared.embedded import env_or_embedded, free_port
from shared.mongo import Document
from shared.permissions import TRIAGE_QUEUE
from shared.settings import Settings
from tests.e2e.support import spawn, stop, wait_healthy
from tests.integration.sla_support import routed_envelope, sla_instance

CATEGORIES = ("Sampah", "Drainase", "Taman", "Limbah", "Polusi udara", "Kebisingan", "Pohon",
              "TPS")
KELURAHAN = tuple(f"Kelurahan {i:02d}" for i in range(20))
GOAL_MS = 300.0


async def open_tickets(sla: Sla, n: int, *, agency: str = "DLH", prefix: str = "B") -> float:
    now = utc_now()
    started = time.perf_counter()
    for start in range(0, n, 500):
        await sla.open_tickets([
            routed_envelope(f"BKL-{prefix}{i:06d}", now - timedelta(seconds=(i * 263) % 7200),
                            agency=agency, category=CATEGORIES[i % len(CATEGORIES)],
                            text=f"Pengaduan nomor {i}",
                            location={"kelurahan": KELURAHAN[i % len(KELURAHAN)]})
            for i in range(start, min(n, start + 500))])
    return time.perf_counter() - started


async def timed(call: Callable[[], Awaitable[httpx.Response]], times: int) -> tuple[list[float], list[int]]:
    """Each request's time, and the statuses of those that failed (counted, not timed: a
    store that times out answers 503 after its socket timeout)."""
    with contextlib.suppress(httpx.HTTPError):
        await call()  # warm: templates compiled, connections open
    took, failed = [], []
    for _ in range(times):
        started = time.perf_counter()
        try:
            answer = await call()
        except httpx.HTTPError:  # the connection dropped: counted as 0
            failed.append(0)
            continue
        if answer.status_code == 200:
            took.append((time.perf_counter() - started) * 1000)
        else:
            failed.append(answer.status_code)
    return took, failed


def line(name: str, took: list[float], failed: list[int]) -> str:
    failures = f"  {len(failed)} failed ({', '.join(map(str, sorted(set(failed))))})" if failed else ""
    if not took:
        return f"{name:44} no answer{failures}"
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    verdict = "" if not name.startswith("console") else \
        ("  ok" if p99 < GOAL_MS and not failed else f"  OVER {GOAL_MS:.0f} ms")
    return f"{name:44} p50 {statistics.median(took):7.1f} ms   p99 {p99:7.1f} ms{verdict}{failures}"


async def signed_in(page: httpx.AsyncClient, username: str, password: str) -> None:
    login = await page.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf is not None
    signed = await page.post("/login", data={"csrf_token": csrf.group(1),
                                             "username": username, "password": password})
    assert signed.status_code == 303, signed.text


async def measure(settings: Settings, password: str, n: int, times: int) -> None:
    sla_url = f"http://127.0.0.1:{settings.sla_port}"
    console_url = f"http://127.0.0.1:{settings.console_port}"
    async with httpx.AsyncClient(base_url=sla_url, timeout=60) as api, \
            httpx.AsyncClient(base_url=console_url, timeout=60) as page, \
            httpx.AsyncClient(base_url=console_url, timeout=60) as desk:
        token = (await api.post("/v1/auth/token", data={"username": "dlh.bench",
                                                        "password": password})).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        await signed_in(page, "dlh.bench", password)
        await signed_in(desk, "meja.bench", password)
        listing = (await api.get("/v1/tickets", headers=bearer)).json()
        pages = -(-n // settings.console_page_size)
        ticket_id = listing["tickets"][0]["ticket_id"]
        filtered = {"category": "Drainase", "kelurahan": "Kelurahan 07"}
        late = {"page": str(pages)}
        per_page = {"per_page": str(settings.console_page_size)}
        print(f"{n} open tickets in the inbox, {pages} pages of "
              f"{settings.console_page_size}; {times} requests each, one at a time")
        rows = [
            ("SLA /healthz (trivial, same stack)", lambda: api.get("/healthz")),
            ("SLA GET /v1/tickets first page", lambda: api.get("/v1/tickets", params=per_page,
                                                                headers=bearer)),
            ("SLA GET /v1/tickets filtered", lambda: api.get(
                "/v1/tickets", params={**per_page, **filtered}, headers=bearer)),
            ("SLA GET /v1/tickets last page", lambda: api.get(
                "/v1/tickets", params={**per_page, **late}, headers=bearer)),
            ("SLA GET /v1/tickets/{id}", lambda: api.get(f"/v1/tickets/{ticket_id}",
                                                        headers=bearer)),
            ("console /inbox first page", lambda: page.get("/inbox")),
            ("console /inbox filtered", lambda: page.get("/inbox", params=filtered)),
            ("console /inbox by status and due", lambda: page.get(
                "/inbox", params={"status": "assigned", "due": "on_time"})),
            ("console /inbox overdue (none are)", lambda: page.get("/inbox",
                                                                   params={"due": "overdue"})),
            ("console /inbox search (q)", lambda: page.get("/inbox", params={"q": "nomor 4242"})),
            (f"console /inbox last page ({pages})", lambda: page.get("/inbox", params=late)),
            ("console /tickets/{id}", lambda: page.get(f"/tickets/{ticket_id}")),
            ("console /triage first page", lambda: desk.get("/triage")),
        ]
        for name, call in rows:
            print(line(name, *await timed(call, times)), flush=True)


async def prepare(settings: Settings, n: int, triage: int) -> tuple[str, float]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, **mongo_client_options(settings))
    password = generate_password()
    await AccountStore(client[settings.mongodb_database]).create_user(
        tenant=settings.tenant, username="dlh.bench", role=Role("officer"), agency="DLH",
        password=password)
    await AccountStore(client[settings.mongodb_database]).create_user(
        tenant=settings.tenant, username="meja.bench", role=Role("triage"), agency=None,
        password=password)
    async with sla_instance(settings, client) as sla:
        took = await open_tickets(sla, n)
        await open_tickets(sla, triage, agency=TRIAGE_QUEUE, prefix="T")
        # Their announcements (ticket.opened, ticket.changed) would be relayed to the broker
        # by the SLA process while it is measured: not what a page costs.
        for outbox in (sla.store.openings, sla.store.changes):
            await outbox.delete_many({})
    await client.close()
    return password, took


async def drop(settings: Settings) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, **mongo_client_options(settings))
    await client.drop_database(settings.mongodb_database)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="open tickets in the agency's inbox")
    parser.add_argument("--triage", type=int, default=1000,
                        help="open tickets in the triage desk's queue besides")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per row")
    parser.add_argument("--logs", action="store_true", help="print the services' logs' ends")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kafka, mongo, servers = env_or_embedded(Path(tmp))
        settings = Settings(kafka_bootstrap_servers=kafka, mongodb_url=mongo,
                            mongodb_database=f"bench_console_{uuid.uuid4().hex[:8]}",
                            auth_secret=uuid.uuid4().hex * 2, rate_limits_enabled=False,
                            sla_port=free_port(), intake_port=free_port(),
                            console_port=free_port(), instance_id="bench-console")
        settings = settings.model_copy(update={
            "console_sla_url": f"http://127.0.0.1:{settings.sla_port}",
            "console_intake_url": f"http://127.0.0.1:{settings.intake_port}"})
        processes = []
        try:
            password, took = asyncio.run(prepare(settings, args.n, args.triage))
            print(f"opened {args.n} tickets for DLH in {took:.1f} s (and {args.triage} in the triage "
                  "queue)")
            processes = [spawn("sla", settings, Path(tmp)), spawn("console", settings, Path(tmp))]
            wait_healthy(f"http://127.0.0.1:{settings.sla_port}", processes[0], timeout=180)
            _wait_alive(f"http://127.0.0.1:{settings.console_port}", timeout=60)
            asyncio.run(measure(settings, password, args.n, args.requests))
        finally:
            for process in processes:
                stop(process)
            if args.logs:
                for log in Path(tmp).glob("*.log"):
                    print(f"--- {log.name}", log.read_text(errors="replace")[-3000:], sep="\n")
            asyncio.run(drop(settings))
            for server in servers:
                server.stop()


def _wait_alive(url: str, timeout: float) -> None:
    # The console's /readyz also wants intake, which the pages measured here never call.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not alive within {timeout:.0f} s")


if __name__ == "__main__":
    main()
