"""HTTP and store load for the pipeline benchmark: POSTs with a fixed number in flight, the
same documents inserted one at a time on the store, and a trivial endpoint on the same stack."""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

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
    """Accepted (202) submissions per second, ``concurrency`` keep-alive connections each
    posting one request after the other. The requests are written and the answers read on
    plain asyncio streams: an HTTP client library spends more CPU per request than the
    service's stack does, and on a small machine it, not the service, set the pace."""
    parts = urlsplit(base_url)
    connections = [await asyncio.open_connection(parts.hostname, parts.port)
                   for _ in range(concurrency)]
    free = list(range(concurrency))
    prefix = (f"POST /v1/complaints HTTP/1.1\r\nHost: {parts.netloc}\r\nX-API-Key: {key}\r\n"
              "Content-Type: application/json\r\n").encode()

    async def post(i: int) -> bool:
        body = json.dumps({"channel": "web", "text": TEXT,
                           "external_id": f"http-{uuid.uuid4()}"}).encode()
        slot = free.pop()
        reader, writer = connections[slot]
        try:
            writer.write(prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status = await _answer_status(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):  # not accepted; load goes on
            connections[slot] = await asyncio.open_connection(parts.hostname, parts.port)
            status = 0
        free.append(slot)
        return status == 202

    try:
        return await _at_once(count, concurrency, post)
    finally:
        for _, writer in connections:
            writer.close()


async def _answer_status(reader: asyncio.StreamReader) -> int:
    """Reads one answer (fixed length or chunked) and returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in
               (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while (size := int((await reader.readuntil(b"\r\n")).strip(), 16)) > 0:
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    return int(lines[0].split()[1])


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
