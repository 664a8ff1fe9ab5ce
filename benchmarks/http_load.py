"""HTTP and store load for the pipeline benchmark: POSTs with a fixed number in flight, the
same documents inserted one at a time on the store, and a trivial endpoint on the same stack."""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient

from shared.credentials import mongo_client_options
from shared.embedded import die_with_parent, free_port
from shared.mongo import Document
from shared.settings import Settings

TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"


async def _at_once(count: int, concurrency: int, one: Callable[[int], Awaitable[bool]]) -> float:
    """Run ``one(i)`` for i < count, ``concurrency`` at a time; successes per second."""
    queue = iter(range(count))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in queue:
            ok = await one(i)  # not `done += await ...`: that reads `done` before the wait
            done += ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def post_load(base_url: str, key: str, count: int, concurrency: int) -> float:
    """Accepted (202) submissions per second."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}, limits=limits,
                                 timeout=60) as http:
        async def post(i: int) -> bool:
            try:
                response = await http.post("/v1/complaints", json={
                    "channel": "web", "text": TEXT, "external_id": f"http-{uuid.uuid4()}"})
            except httpx.HTTPError:  # not accepted; the load goes on
                return False
            return response.status_code == 202

        return await _at_once(count, concurrency, post)


async def insert_one_loop(settings: Settings, count: int, concurrency: int) -> float:
    """Inserts per second of documents shaped like intake's stored complaints (one taken from
    the store), one insert_one per document."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, **mongo_client_options(settings))
    try:
        db = client[settings.mongodb_database]
        template = await db["complaints"].find_one({}) or {"text": TEXT}
        target = db[f"bench_inserts_{uuid.uuid4().hex[:6]}"]

        async def insert(i: int) -> bool:
            await target.insert_one({**template, "_id": f"insert-{i}"})
            return True

        return await _at_once(count, concurrency, insert)
    finally:
        await client.close()


@contextmanager
def served_trivial_app(log_dir: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.trivial_app", str(port)],
                               env=dict(os.environ), preexec_fn=die_with_parent,
                               stdout=(log_dir / "trivial.log").open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded machine starts it slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/docs", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait()
