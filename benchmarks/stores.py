"""Embedded store benchmark: the store operations Disposisi's services make, timed on each
embedded MongoDB-protocol server (SecantusDB and NX-27017) in the same run, one after the
other, each started fresh in its own directory as `disposisi dev` starts it.

    python -m benchmarks.stores --n 5000

Operations: bulk inserts (intake, SLA ticket creation), single inserts and point reads,
versioned whole-document replaces (the SLA's ticket writes), the outbox's ``$set`` of a batch,
the scheduler's due query (index walk by ``next_check_at``) and a date-range query, a
``count_documents``, and the SLA's ticket-plus-outbox transaction.
"""

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pymongo import ASCENDING, AsyncMongoClient

from shared.embedded import free_port, start_store
from shared.mongo import Document

STORES = ("secantus", "nx-27017")
Row = tuple[str, float, str]  # operation, rate or time, unit


def ticket(number: int, now: datetime) -> Document:
    return {"_id": f"BKL-{number:07d}", "version": 1, "agency": f"A{number % 40}",
            "status": "assigned", "next_check_at": now + timedelta(seconds=number),
            "history": [{"action": "routed", "at": now, "note": "x" * 200}]}


async def rate(label: str, count: int, work: Callable[[], Awaitable[object]]) -> Row:
    started = time.perf_counter()
    await work()
    return label, count / (time.perf_counter() - started), "ops/s"


async def millis(label: str, repeat: int, work: Callable[[], Awaitable[object]]) -> Row:
    started = time.perf_counter()
    for _ in range(repeat):
        await work()
    return label, (time.perf_counter() - started) * 1000 / repeat, "ms"


async def measure(url: str, n: int) -> list[Row]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    db = client["bench"]
    tickets, singles, outbox = db["tickets"], db["singles"], db["outbox"]
    await tickets.create_index([("next_check_at", ASCENDING)])
    now = datetime.now(UTC)
    docs = [ticket(i, now) for i in range(n)]
    some = range(0, n, max(1, n // 1000))

    async def bulk_insert() -> None:
        for start in range(0, n, 500):
            await tickets.insert_many(docs[start:start + 500])

    async def single_inserts() -> None:
        for i in some:
            await singles.insert_one({"_id": i, "at": now})

    async def point_reads() -> None:
        for i in some:
            await tickets.find_one({"_id": f"BKL-{i:07d}"})

    async def replaces() -> None:
        for i in some:
            doc = {**docs[i], "version": 2, "status": "responded"}
            await tickets.replace_one({"_id": doc["_id"], "version": 1}, doc)

    async def outbox_marks() -> None:
        await outbox.insert_many([{"_id": i, "published": False} for i in range(n)])
        for start in range(0, n, 100):
            await outbox.update_many({"_id": {"$in": list(range(start, start + 100))}},
                                     {"$set": {"published": True, "published_at": now}})

    async def transactions() -> None:
        for i in some:
            async with client.start_session() as session, await session.start_transaction():
                doc = {**docs[i], "version": 3}
                await tickets.replace_one({"_id": doc["_id"]}, doc, session=session)
                await db["reroutes"].insert_one({"_id": f"r-{i}"}, session=session)

    try:
        return [
            await rate("insert_many (batches of 500)", n, bulk_insert),
            await rate("insert_one", len(some), single_inserts),
            await rate("find_one by _id", len(some), point_reads),
            await rate("replace_one, versioned", len(some), replaces),
            await rate("update_many $set, 100 ids a call", n, outbox_marks),
            await rate("transaction: replace + insert", len(some), transactions),
            await millis("due query: sort by date, limit 200", 20, lambda: tickets.find(
                {"next_check_at": {"$ne": None}}).sort("next_check_at", 1).limit(200).to_list(None)),
            await millis("date range $lte, limit 200", 20, lambda: tickets.find(
                {"next_check_at": {"$lte": now + timedelta(seconds=200)}}).limit(200).to_list(None)),
            await millis("count_documents({})", 5, lambda: tickets.count_documents({})),
        ]
    finally:
        await client.close()


def run(store: str, n: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix=f"disposisi-bench-{store}-") as work:
        server = start_store(free_port(), Path(work), store)
        try:
            return asyncio.run(measure(f"mongodb://{server.address}/?directConnection=true", n))
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=5000, help="tickets in the collection")
    args = parser.parse_args()
    results = {store: run(store, args.n) for store in STORES}
    print(f"N = {args.n} tickets; {' vs '.join(STORES)}")
    for index, (label, _, unit) in enumerate(results[STORES[0]]):
        figures = "  ".join(f"{results[s][index][1]:10.1f}" for s in STORES)
        print(f"{label:38s} {figures}  {unit}")


if __name__ == "__main__":
    main()
