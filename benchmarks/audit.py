"""Audit log benchmark: entries appended per second, in batches and one at a time, by one and by
several concurrent writers (each on its own connection, like replicas), next to a plain
insert_many of the same documents on the same store in the same run; then `verify` speed.

    python -m benchmarks.audit --n 5000 --writers 3

Starts the embedded store (or uses DISPOSISI_MONGODB_URL).
"""

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

from pymongo import AsyncMongoClient

from shared.audit import Actor, AuditRecord
from shared.audit_store import AuditLog
from shared.embedded import free_port, start_mongo
from shared.mongo import Document

TENANT = "kota-bengkulu"


def records(n: int, prefix: str) -> list[AuditRecord]:
    return [AuditRecord(tenant=TENANT, key=f"{prefix}-{i}", action="update:acknowledged",
                        actor=Actor.claimed("petugas DLH"), ticket_id=f"BKL-{i:08d}",
                        before={"status": "assigned"}, after={"status": "acknowledged"})
            for i in range(n)]


async def plain_inserts(url: str, db: str, n: int, batch: int) -> float:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url)
    collection = client[db]["plain"]
    docs = [{"_id": f"p-{i}", "tenant": TENANT, "seq": i, "key": f"k-{i}", "hash": "0" * 64,
             "actor": {"name": "petugas DLH"}, "after": {"status": "acknowledged"}} for i in range(n)]
    started = time.perf_counter()
    for i in range(0, n, batch):
        await collection.insert_many(docs[i:i + batch])
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


async def appends(url: str, db: str, n: int, batch: int, writers: int) -> float:
    async def writer(number: int) -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
        log = AuditLog(client[db])
        mine = records(n // writers, f"{batch}-{writers}-{number}")
        for i in range(0, len(mine), batch):
            await log.append(mine[i:i + batch])
        await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return time.perf_counter() - started


async def verify(url: str, db: str) -> tuple[float, int, bool]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    started = time.perf_counter()
    check = await AuditLog(client[db]).verify(TENANT)
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed, check.count, check.ok


async def run(url: str, n: int, writers: int) -> None:
    db = f"bench_audit_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[Document] = AsyncMongoClient(url)
    await AuditLog(client[db]).ensure_indexes()
    total = 0
    for batch in (500, 1):
        count = n if batch > 1 else n // 10  # one at a time is slow: a tenth as many
        plain = await plain_inserts(url, db, count, batch)
        await client[db]["plain"].drop()
        print(f"batch {batch:3}: plain insert_many        : {count / plain:8.0f} docs/s")
        for w in (1, writers):
            elapsed = await appends(url, db, count, batch, w)
            total += count // w * w
            print(f"batch {batch:3}: audit append, {w} writer(s) : {count // w * w / elapsed:8.0f} "
                  f"entries/s ({elapsed / plain:.1f} x plain)")
    elapsed, checked, ok = await verify(url, db)
    print(f"verify                           : {checked / elapsed:8.0f} entries/s, "
          f"{checked} entries (expected {total}), {'OK' if ok else 'BROKEN'}")
    await client.drop_database(db)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--writers", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("DISPOSISI_MONGODB_URL")
    server = None
    if not url:
        server = start_mongo(free_port(), Path(tempfile.mkdtemp(prefix="disposisi-bench-")))
        url = f"mongodb://{server.address}/?directConnection=true"
    try:
        asyncio.run(run(url, args.n, args.writers))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
