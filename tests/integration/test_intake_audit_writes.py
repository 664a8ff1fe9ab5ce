"""Intake's outbox audits each submission once without an ``audit_keys`` document (issue 12):
an accepted complaint costs three document writes (the complaint, its audit entry, the mark
published and audited), and the guarantees hold where a step is cut short, against the
embedded store and broker: a process that died between the append and the send, a send that
failed in a broker outage, a complaint the reconciliation republishes."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.intake.flows import AUDITED, AuditedRelay, Intake, Submission, submission_record
from services.intake.reconcile import Reconciler
from services.intake.store import ComplaintStore, ReplyStore, TrackingStore
from shared.audit_store import AuditLog
from shared.contracts import ComplaintSubmission, Topics
from shared.embedded import free_port, start_kafka
from shared.kafka import ensure_topics, make_broker
from shared.mongo import Document
from shared.outbox import OutboxRelay
from shared.settings import Settings
from tests.conftest import EMBEDDED_KAFKA_SETTINGS
from tests.integration.support import Commands, eventually, read_topic

pytestmark = pytest.mark.integration
TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"


@pytest.fixture
async def listened(settings: Settings) -> AsyncIterator[tuple[AsyncDatabase[Document], Commands]]:
    writes = Commands()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, event_listeners=[writes])
    try:
        yield client[settings.mongodb_database], writes
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()


def intake_of(settings: Settings, db: AsyncDatabase[Document], broker: KafkaBroker, *,
              owner: str) -> Intake:
    """Intake as its app wires it: the audit log without key lookups, the audited outbox."""
    complaints, replies = ComplaintStore(db, settings), ReplyStore(db, settings)
    lease = settings.outbox_lease_seconds
    relay = AuditedRelay(complaints.collection, broker, lease_seconds=lease, owner=owner,
                         audit=AuditLog(db, register_keys=False), tenant=settings.tenant,
                         publish_timeout=3.0)
    return Intake(settings, complaints, relay, replies,
                  OutboxRelay(replies.collection, broker, lease_seconds=lease, owner=owner),
                  TrackingStore(db))


async def store_complaints(intake: Intake, count: int, prefix: str) -> list[Document]:
    await intake.complaints.ensure_indexes()
    return await intake.store([Submission(ComplaintSubmission(
        channel="web", text=TEXT, external_id=f"{prefix}-{i}"), key=None) for i in range(count)])


async def swept(relay: OutboxRelay, count: int) -> bool:
    """Sweep until ``count`` documents were republished in all (their leases may run out at
    different sweeps); for ``eventually``."""
    done = 0

    async def sweep() -> bool:
        nonlocal done
        with contextlib.suppress(Exception):  # after an outage the client may need a moment
            done += await relay.sweep()
        return done >= count

    return bool(await eventually(sweep, timeout=90)) and done == count


async def audited_once(db: AsyncDatabase[Document], settings: Settings,
                       docs: list[Document]) -> None:
    """Each complaint's submission is in the chain exactly once, the chain is whole, no key
    lookup was written, and every complaint is marked published and audited."""
    log = AuditLog(db)
    keys = [e["key"] async for e in log.walk(settings.tenant)]
    assert sorted(keys) == sorted(f"submission:{d['ticket_id']}" for d in docs)
    assert (await log.verify(settings.tenant)).ok
    assert await db["audit_keys"].count_documents({}) == 0
    assert await db["complaints"].count_documents(
        {"_id": {"$in": [d["_id"] for d in docs]}, "published": True, AUDITED: True}) == len(docs)


async def test_an_accepted_complaint_costs_three_document_writes_and_no_audit_key(
        settings: Settings, listened: tuple[AsyncDatabase[Document], Commands]) -> None:
    db, writes = listened
    await ensure_topics(settings, [Topics.RECEIVED])
    broker = make_broker(settings, "audit-writes-test")
    await broker.connect()
    try:
        intake = intake_of(settings, db, broker, owner=settings.instance_id)
        docs = await store_complaints(intake, 20, "three")
        writes.clear()
        await intake.publish(docs)
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=20)
    finally:
        await broker.stop()
    written = [(name, target, rows) for name, target, rows in writes.with_rows()
               if name in ("insert", "update", "delete")]
    # One update statement marks the batch published and audited (20 documents modified).
    assert written == [("insert", "audit_log", 20), ("update", "complaints", 1)]
    assert len({e["id"] for e in events}) == 20
    await audited_once(db, settings, docs)


async def test_complaints_appended_by_a_process_that_died_before_sending_are_audited_once(
        settings: Settings, listened: tuple[AsyncDatabase[Document], Commands]) -> None:
    """The writer appended a whole batch (more records than an append's 200 attempts) and
    died before its send and its mark: another replica's sweep sends them and appends only
    the complaints that were not in the log yet, each once."""
    db, _ = listened
    await ensure_topics(settings, [Topics.RECEIVED])
    broker = make_broker(settings, "audit-writes-test")
    await broker.connect()
    try:
        dead = intake_of(settings, db, broker, owner="dead")
        appended = await store_complaints(dead, 230, "died")
        unsent = await store_complaints(dead, 5, "queued")  # stored, not yet appended
        # What the dead process's AuditedRelay.publish did before its send:
        await AuditLog(db, register_keys=False).append(
            [submission_record(settings.tenant, d) for d in appended])
        sweeper = intake_of(settings, db, broker, owner="other-replica").relay
        assert await swept(sweeper, 235)  # once the leases ran out
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=235)
        assert await sweeper.sweep() == 0
    finally:
        await broker.stop()
    assert sorted({e["ticket_id"] for e in events}) == sorted(d["ticket_id"]
                                                              for d in [*appended, *unsent])
    await audited_once(db, settings, [*appended, *unsent])


@pytest.mark.own_servers
async def test_a_send_failed_in_an_outage_is_noted_audited_and_its_retry_appends_nothing(
        settings: Settings, listened: tuple[AsyncDatabase[Document], Commands],
        tmp_path: Path) -> None:
    db, writes = listened
    server = start_kafka(free_port(), tmp_path)
    settings = settings.model_copy(update={"kafka_bootstrap_servers": server.address,
                                           **EMBEDDED_KAFKA_SETTINGS})
    await ensure_topics(settings, [Topics.RECEIVED])
    broker = make_broker(settings, "audit-writes-test")
    await broker.start()
    try:
        intake = intake_of(settings, db, broker, owner=settings.instance_id)
        docs = await store_complaints(intake, 6, "outage")
        server.stop()
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises when down
            await intake.publish(docs)
        assert await db["complaints"].count_documents(
            {"published": False, AUDITED: True}) == 6, "appended, not sent: noted audited"
        server = start_kafka(server.port, tmp_path)
        await ensure_topics(settings, [Topics.RECEIVED])
        writes.clear()
        assert await swept(intake.relay, 6)
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=6)
    finally:
        await broker.stop()
        server.stop()
    assert "insert" not in writes.on("audit_log"), "the retries appended nothing again"
    assert {e["ticket_id"] for e in events} == {d["ticket_id"] for d in docs}
    await audited_once(db, settings, docs)


async def test_a_complaint_the_reconciliation_republishes_is_not_appended_again(
        settings: Settings, listened: tuple[AsyncDatabase[Document], Commands]) -> None:
    db, writes = listened
    await ensure_topics(settings, [Topics.RECEIVED])
    broker = make_broker(settings, "audit-writes-test")
    await broker.connect()
    settings = settings.model_copy(update={"reconcile_after_seconds": 0.5})
    try:
        intake = intake_of(settings, db, broker, owner=settings.instance_id)
        docs = await store_complaints(intake, 3, "late")
        await intake.publish(docs)
        await asyncio.sleep(0.6)  # no ticket for longer than reconcile_after_seconds
        writes.clear()
        backlog = await Reconciler(settings, intake.complaints, intake.relay).turn()
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=6)
    finally:
        await broker.stop()
    assert backlog.overdue == 3
    assert writes.on("audit_log") == [], "published, so audited: no append, no lookup"
    assert sorted(e["ticket_id"] for e in events) == sorted(2 * [d["ticket_id"] for d in docs])
    await audited_once(db, settings, docs)
