"""The audit log against the real (embedded) MongoDB-protocol server: concurrent writers on
separate connections keep one gap-free, fork-free chain; redelivered keys are appended once;
an edited, removed or re-hashed entry is found; a store that dies mid-way loses no link."""

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from shared.audit import Actor, AuditAction, AuditRecord, entry_hash
from shared.audit_store import AuditLog, entry_id
from shared.embedded import free_port, start_mongo
from shared.mongo import Document

pytestmark = [pytest.mark.integration, pytest.mark.own_servers]
TENANT = "kota-bengkulu"


@pytest.fixture
async def db(mongodb_url: str) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"test_audit_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


def record(key: str, tenant: str = TENANT, ticket: str | None = "BKL-1") -> AuditRecord:
    return AuditRecord(tenant=tenant, key=key, action="update:note",
                       actor=Actor.claimed("petugas DLH"), ticket_id=ticket,
                       before={"status": "assigned"}, after={"status": "acknowledged"})


async def all_entries(log: AuditLog, tenant: str = TENANT) -> list[Document]:
    return [doc async for doc in log.walk(tenant)]


async def test_concurrent_writers_keep_one_chain_without_gaps_or_forks(
        db: AsyncDatabase[Document], mongodb_url: str) -> None:
    await AuditLog(db).ensure_indexes()
    writers, batches, size = 6, 8, 5

    async def writer(number: int) -> None:
        # Its own connection, like a replica: the store is the only thing writers share.
        client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
        log = AuditLog(client[db.name])
        try:
            for b in range(batches):
                # Every writer also appends the same shared keys: a redelivered event racing.
                mine = [record(f"w{number}-b{b}-{i}") for i in range(size)]
                await log.append([*mine, record(f"shared-{b}")])
        finally:
            await client.close()

    await asyncio.gather(*(writer(n) for n in range(writers)))
    log = AuditLog(db)
    entries = await all_entries(log)
    keys = [e["key"] for e in entries]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert len(keys) == len(set(keys)) == writers * batches * size + batches
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(entries))
    check = await log.verify(TENANT)
    assert check.ok and check.count == len(entries) and check.head_hash == entries[-1]["hash"]


async def test_a_redelivered_key_is_appended_once_and_tenants_have_their_own_chains(
        db: AsyncDatabase[Document]) -> None:
    log = AuditLog(db)
    await log.ensure_indexes()
    assert await log.append([record("e-1"), record("e-2"), record("e-1")]) == 2
    assert await log.append([record("e-2"), record("e-3")]) == 1
    assert await log.append([record("e-1", tenant="provinsi-bengkulu")]) == 1
    assert [e["key"] for e in await all_entries(log)] == ["e-1", "e-2", "e-3"]
    [other] = await all_entries(log, "provinsi-bengkulu")
    assert (other["seq"], other["prev_hash"]) == (1, "0" * 64)
    assert (await log.verify(TENANT)).count == 3
    assert (await log.verify("provinsi-bengkulu")).count == 1


async def test_stored_entries_hash_as_they_were_sealed(db: AsyncDatabase[Document]) -> None:
    log = AuditLog(db)
    await log.append([AuditRecord(
        tenant=TENANT, key="k", action=AuditAction.RULEBOOK_CHANGE, actor=Actor.service("router"),
        before={"version": "a1", "agencies": 41, "float": 0.1, "ok": True, "none": None},
        after={"version": "b2", "rules": ["x", "y"], "nested": {"ok": False}})])
    [stored] = await all_entries(log)
    assert entry_hash(stored) == stored["hash"]  # datetime, floats, booleans survive the store
    assert stored["time"].microsecond % 1000 == 0


@pytest.mark.parametrize("tamper, problem", [
    ({"$set": {"actor.name": "Walikota (spoofed)"}}, "hash mismatch"),
    ({"$set": {"after.status": "resolved"}}, "hash mismatch"),
    ({"$set": {"prev_hash": "f" * 64}}, "prev mismatch"),
])
async def test_verify_names_the_edited_entry(db: AsyncDatabase[Document], tamper: Document,
                                             problem: str) -> None:
    log = AuditLog(db)
    await log.append([record(f"e-{i}") for i in range(10)])
    await db["audit_log"].update_one({"_id": entry_id(TENANT, 4)}, tamper)
    check = await log.verify(TENANT)
    assert check.broken is not None and check.broken.seq == 4 and check.count == 3
    assert check.broken.problem.startswith(problem)


async def test_verify_finds_removed_and_rehashed_entries(db: AsyncDatabase[Document]) -> None:
    log = AuditLog(db)
    await log.append([record(f"e-{i}") for i in range(8)])
    entries = db["audit_log"]
    # Re-hashing an edited entry moves the break to the next one, which still holds the old hash.
    doc = await entries.find_one({"_id": entry_id(TENANT, 3)})
    assert doc is not None
    doc["actor"]["name"] = "someone else"
    doc["hash"] = entry_hash(doc)
    await entries.replace_one({"_id": doc["_id"]}, doc)
    broken = (await log.verify(TENANT)).broken
    assert broken is not None and (broken.seq, broken.problem[:13]) == (4, "prev mismatch")

    await entries.delete_one({"_id": entry_id(TENANT, 3)})
    broken = (await log.verify(TENANT)).broken
    assert broken is not None and (broken.seq, broken.problem[:3]) == (3, "gap")


async def test_verify_finds_an_edit_of_the_entry_the_head_hint_names(
        db: AsyncDatabase[Document]) -> None:
    log = AuditLog(db)
    await log.append([record(f"e-{i}") for i in range(32)])  # the hint moves every 32
    entries = db["audit_log"]
    last = await entries.find_one({"_id": entry_id(TENANT, 32)})
    assert last is not None
    last["after"] = {"status": "resolved"}
    last["hash"] = entry_hash(last)  # consistent with itself; the hint still holds the old hash
    await entries.replace_one({"_id": last["_id"]}, last)
    broken = (await log.verify(TENANT)).broken
    assert broken is not None and (broken.seq, broken.problem[:13]) == (32, "hash mismatch")

    await entries.delete_one({"_id": entry_id(TENANT, 32)})
    broken = (await log.verify(TENANT)).broken
    assert broken is not None and (broken.seq, broken.problem[:3]) == (32, "gap")


async def test_a_store_that_dies_mid_way_leaves_a_whole_chain(tmp_path: Path) -> None:
    port = free_port()
    server = start_mongo(port, tmp_path)
    url = f"mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=2000"
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    try:
        log = AuditLog(client["disposisi"])
        await log.append([record(f"before-{i}") for i in range(5)])
        server.process.kill()  # no clean shutdown
        server.process.wait()
        with pytest.raises(PyMongoError):  # the caller fails, so its event is redelivered
            await log.append([record("during")])
        server = start_mongo(port, tmp_path)
        # The redelivery appends what was lost, once, and the chain carries on.
        await log.append([record("during"), record("after")])
        await log.append([record("during")])
        entries = await all_entries(log)
        assert [e["key"] for e in entries] == [*(f"before-{i}" for i in range(5)), "during", "after"]
        assert (await log.verify(TENANT)).ok
    finally:
        await client.close()
        server.stop()


class DiesBeforeRegistering(AuditLog):
    """A writer that crashes after inserting its entries, before their key lookups and the
    head hint are written."""

    async def _register(self, tenant: str, entries: object) -> None:
        raise RuntimeError("killed")


async def test_entries_of_a_writer_that_died_are_completed_not_duplicated(
        db: AsyncDatabase[Document]) -> None:
    log = AuditLog(db)
    await log.ensure_indexes()
    await log.append([record("first")])
    with pytest.raises(RuntimeError, match="killed"):
        await DiesBeforeRegistering(db).append([record("lost-1"), record("lost-2")])
    # The event is redelivered: its entries are found after the stale hint, not appended again.
    assert await log.append([record("lost-1"), record("lost-2"), record("next")]) == 1
    assert [e["key"] for e in await all_entries(log)] == ["first", "lost-1", "lost-2", "next"]
    check = await log.verify(TENANT)
    assert check.ok and check.count == 4


async def test_lost_key_lookups_do_not_let_a_key_in_twice(db: AsyncDatabase[Document]) -> None:
    await AuditLog(db).append([record("a"), record("b")])
    await db["audit_keys"].delete_many({})  # the fast lookup is gone; the unique index is not
    log = AuditLog(db)  # a fresh process
    assert await log.append([record("a"), record("b"), record("c")]) == 1
    assert [e["key"] for e in await all_entries(log)] == ["a", "b", "c"]
    assert (await log.verify(TENANT)).ok


async def test_a_redelivered_batch_larger_than_the_attempts_whose_keys_were_lost_is_appended_once(
        db: AsyncDatabase[Document]) -> None:
    """A writer that died between its entries and their key lookups, with a batch of 250 (the
    publish queue sends up to 500): each redelivered record is dropped at the unique index,
    one by one, and that is progress, not an attempt used up (it failed after 200 before)."""
    await AuditLog(db).append([record(f"r-{i}") for i in range(250)])
    await db["audit_keys"].delete_many({})
    log = AuditLog(db)  # a fresh process
    assert await log.append([*(record(f"r-{i}") for i in range(250)), record("new")]) == 1
    entries = await all_entries(log)
    assert [e["key"] for e in entries] == [*(f"r-{i}" for i in range(250)), "new"]
    assert (await log.verify(TENANT)).ok


async def test_writers_without_key_lookups_keep_one_chain_and_append_each_key_once(
        db: AsyncDatabase[Document], mongodb_url: str) -> None:
    """Intake's log writes no audit_keys documents (register_keys=False); beside writers that
    do (the SLA), concurrent appends of shared keys still make one gap-free chain with each
    key once, and a fresh process redelivering a batch appends only what is new."""
    await AuditLog(db).ensure_indexes()

    async def writer(number: int) -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
        log = AuditLog(client[db.name], register_keys=number % 2 == 0)
        try:
            for b in range(6):
                await log.append([*(record(f"w{number}-b{b}-{i}") for i in range(4)),
                                  record(f"shared-{b}")])
        finally:
            await client.close()

    await asyncio.gather(*(writer(n) for n in range(4)))
    unkeyed = AuditLog(db, register_keys=False)
    assert await unkeyed.append([record(f"w1-b{b}-{i}") for b in range(6) for i in range(4)]
                                + [record("w1-late")]) == 1
    entries = await all_entries(unkeyed)
    keys = [e["key"] for e in entries]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert len(keys) == len(set(keys)) == 4 * 6 * 4 + 6 + 1
    assert (await unkeyed.verify(TENANT)).ok
    # Only the writers that register keys wrote any (the shared ones, whoever won them).
    registered = {d["_id"] for d in await db["audit_keys"].find({}).to_list(None)}
    assert not any(k.startswith(f"{TENANT}:w1-") or k.startswith(f"{TENANT}:w3-")
                   for k in registered)
    assert {f"{TENANT}:w0-b0-0", f"{TENANT}:w2-b5-3"} <= registered
