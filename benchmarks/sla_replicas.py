"""SLA scheduler benchmark: N tickets whose response levels are all due, drained by R replicas
taking turns at the same time; then the cost of an idle turn (nothing due).

    python -m benchmarks.sla_replicas --n 2000 --replicas 2 --batch 200 --waiting 10000

Starts the embedded broker and store (or uses DISPOSISI_KAFKA_BOOTSTRAP_SERVERS /
DISPOSISI_MONGODB_URL); uses the demo policy (levels at 3.75 s and 5 s, 24x7).
"""

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path

from pymongo import AsyncMongoClient

from services.sla.flows import Sla, Turn
from shared.contracts import utc_now
from shared.credentials import mongo_client_options
from shared.embedded import env_or_embedded
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.sla_support import routed_envelope, sla_instance

ROOT = Path(__file__).resolve().parent.parent


async def drain(replicas: list[Sla]) -> tuple[list[float], int]:
    durations: list[float] = []
    fired = 0
    while True:
        started = time.perf_counter()
        turns: list[Turn] = await asyncio.gather(*(r.turn() for r in replicas))
        durations.append(time.perf_counter() - started)
        fired += sum(t.fired for t in turns)
        if not any(t.claimed for t in turns):
            return durations[:-1], fired


async def open_many(sla: Sla, prefix: str, n: int, routed_at: datetime) -> float:
    started = time.perf_counter()
    for start in range(0, n, 1000):
        await sla.open_tickets([routed_envelope(f"{prefix}-{i}", routed_at)
                                for i in range(start, min(n, start + 1000))])
    return time.perf_counter() - started


async def run(settings: Settings, n: int, replicas: int, waiting: int) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, **mongo_client_options(settings))
    async with AsyncExitStack() as stack:
        slas = [await stack.enter_async_context(sla_instance(
            settings.model_copy(update={"instance_id": f"bench-{i}"}), client)) for i in range(replicas)]
        # Tickets routed tomorrow: open, indexed, not due; an idle turn must not read them.
        took = await open_many(slas[0], "W", waiting, utc_now() + timedelta(days=1))
        print(f"opened {waiting} not-yet-due tickets in {took:.1f} s")
        took = await open_many(slas[0], "B", n, utc_now() - timedelta(seconds=10))
        print(f"opened {n} due tickets in {took:.1f} s")
        started = time.perf_counter()
        durations, fired = await drain(slas)
        total = time.perf_counter() - started
        print(f"{replicas} replicas, batch {settings.scheduler_batch_size}: {fired} escalations "
              f"({2 * n} expected) in {total:.1f} s = {fired / total:.0f}/s; "
              f"{len(durations)} rounds, median round {statistics.median(durations) * 1000:.0f} ms")
        idle = []
        for _ in range(20):
            started = time.perf_counter()
            await slas[0].turn()
            await slas[0].store.earliest_check()
            idle.append(time.perf_counter() - started)
        print(f"idle turn + next-check lookup with {n + waiting} open tickets: "
              f"median {statistics.median(idle) * 1000:.1f} ms")
    await client.drop_database(settings.mongodb_database)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--waiting", type=int, default=10000, help="open tickets not yet due")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kafka, mongo, servers = env_or_embedded(Path(tmp))
        settings = Settings(kafka_bootstrap_servers=kafka, mongodb_url=mongo,
                            mongodb_database=f"bench_{uuid.uuid4().hex[:8]}",
                            sla_policy=ROOT / "examples" / "policy-demo.yaml",
                            scheduler_batch_size=args.batch, outbox_lease_seconds=30.0)
        try:
            asyncio.run(run(settings, args.n, args.replicas, args.waiting))
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
