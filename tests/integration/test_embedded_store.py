"""The embedded MongoDB-protocol stores as servers: a kill -9 in the middle of acknowledged
writes loses none of them after a restart on the same directory, and SecantusDB keeps the
MongoDB behaviour the product relies on where NX-27017 does not (dates written by ``$set``,
``$setOnInsert`` on ``find_one_and_update``)."""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.errors import PyMongoError

from shared.embedded import EmbeddedServer, free_port, start_store
from shared.mongo import Document
from tests.integration.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.own_servers]
STORES = ["secantus", "nx-27017"]
BATCH = 20


def url(server: EmbeddedServer) -> str:
    return f"mongodb://{server.address}/?directConnection=true"


@contextlib.asynccontextmanager
async def client_of(server: EmbeddedServer) -> AsyncIterator[AsyncMongoClient[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        url(server), tz_aware=True, serverSelectionTimeoutMS=2_000, connectTimeoutMS=2_000)
    try:
        yield client
    finally:
        await client.close()


async def write_one_by_one(server: EmbeddedServer, acked: list[str]) -> None:
    """Insert until the server dies; an id is recorded only once its insert was acknowledged."""
    async with client_of(server) as client:
        collection = client["kill9"]["complaints"]
        number = 0
        with contextlib.suppress(PyMongoError):
            while True:
                doc_id = f"one-{number:06d}"
                await collection.insert_one({"_id": doc_id, "at": datetime.now(UTC)})
                acked.append(doc_id)
                number += 1


async def write_in_batches(server: EmbeddedServer, acked: list[str]) -> None:
    async with client_of(server) as client:
        collection = client["kill9"]["complaints"]
        number = 0
        with contextlib.suppress(PyMongoError):
            while True:
                ids = [f"batch-{number + i:06d}" for i in range(BATCH)]
                await collection.insert_many([{"_id": i, "text": "x" * 200} for i in ids])
                acked.extend(ids)
                number += BATCH


@pytest.mark.parametrize("store", STORES)
async def test_kill_9_mid_write_keeps_every_acknowledged_insert(store: str, tmp_path: Path) -> None:
    server = start_store(free_port(), tmp_path, store)
    acked: list[str] = []
    try:
        writers = [asyncio.create_task(write_one_by_one(server, acked)),
                   asyncio.create_task(write_in_batches(server, acked))]

        async def enough_written() -> bool:
            return len(acked) >= 300 or any(w.done() for w in writers)

        await eventually(enough_written, timeout=120)
        assert not any(w.done() for w in writers), "a writer stopped before the kill"
        os.kill(server.process.pid, signal.SIGKILL)  # while both writers are mid-request
        server.process.wait()
        await asyncio.wait_for(asyncio.gather(*writers), timeout=60)
    finally:
        server.stop()
    assert len(acked) >= 300

    restarted = start_store(free_port(), tmp_path, store)
    try:
        async with client_of(restarted) as client:
            stored = {d["_id"] async for d in client["kill9"]["complaints"].find({}, {"_id": 1})}
    finally:
        restarted.stop()
    missing = sorted(set(acked) - stored)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged inserts lost: {missing[:5]}"


@pytest.fixture
async def secantus(tmp_path: Path) -> AsyncIterator[AsyncMongoClient[Document]]:
    server = start_store(free_port(), tmp_path, "secantus")
    try:
        async with client_of(server) as client:
            yield client
    finally:
        server.stop()


async def test_secantus_keeps_a_date_written_by_set_a_date(
        secantus: AsyncMongoClient[Document]) -> None:
    tickets = secantus["faithful"]["tickets"]
    due = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    await tickets.insert_many([{"_id": "early", "due": due - timedelta(hours=1)},
                               {"_id": "late", "due": due + timedelta(hours=1)}])
    await tickets.update_one({"_id": "early"}, {"$set": {"due": due - timedelta(hours=2),
                                                         "published": True}})
    stored = await tickets.find_one({"_id": "early"})
    assert stored is not None
    assert stored["due"] == due - timedelta(hours=2)  # a datetime, not a string
    assert stored["published"] is True  # a boolean, not 1
    found = [d["_id"] async for d in tickets.find({"due": {"$lte": due}})]
    assert found == ["early"]


async def test_secantus_applies_set_on_insert_in_find_one_and_update(
        secantus: AsyncMongoClient[Document]) -> None:
    counters = secantus["faithful"]["counters"]
    first = await counters.find_one_and_update(
        {"_id": "BKL"}, {"$inc": {"n": 1}, "$setOnInsert": {"created": "now"}},
        upsert=True, return_document=ReturnDocument.AFTER)
    second = await counters.find_one_and_update(
        {"_id": "BKL"}, {"$inc": {"n": 1}, "$setOnInsert": {"created": "again"}},
        upsert=True, return_document=ReturnDocument.AFTER)
    assert first == {"_id": "BKL", "n": 1, "created": "now"}
    assert second == {"_id": "BKL", "n": 2, "created": "now"}
