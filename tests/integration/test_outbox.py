"""The outbox relay against the embedded store and a broker of its own: a record whose
republishing fails during an outage is retried until it is published."""

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient, monitoring

from shared.contracts import Complaint, EventType, Topics, envelope, utc_now
from shared.embedded import EmbeddedServer, free_port, start_kafka
from shared.kafka import ensure_topics, make_broker
from shared.mongo import Document
from shared.outbox import OutboxRelay, outbox_fields
from shared.settings import Settings
from tests.conftest import EMBEDDED_KAFKA_SETTINGS
from tests.integration.support import read_topic

pytestmark = pytest.mark.integration
LEASE = 0.3


def record(settings: Settings) -> Document:
    complaint = Complaint(ticket_id="BKL-1", channel="web", text="Sampah belum diangkut",
                          submitted_at=utc_now())
    event = envelope(complaint, type=EventType.COMPLAINT_RECEIVED, tenant=settings.tenant,
                     ticket_id="BKL-1", event_id="e-1")
    # Written by a publisher that crashed at once: its lease has already run out.
    return {"_id": "BKL-1", **outbox_fields(Topics.RECEIVED, event, lease_seconds=-1.0,
                                            owner="crashed", now=utc_now())}


async def own_broker(settings: Settings,
                     tmp_path: Path) -> tuple[EmbeddedServer, Settings, KafkaBroker]:
    """A Tansu of the test's own (to stop or freeze), its settings and a started client."""
    server = start_kafka(free_port(), tmp_path)
    settings = settings.model_copy(update={"kafka_bootstrap_servers": server.address,
                                           **EMBEDDED_KAFKA_SETTINGS})
    await ensure_topics(settings, [Topics.RECEIVED])
    broker = make_broker(settings, "outbox-test")
    await broker.start()
    return server, settings, broker


@pytest.mark.own_servers
async def test_a_failed_republish_is_retried_after_the_outage(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path) -> None:
    server, settings, broker = await own_broker(settings, tmp_path)
    outbox = mongo[settings.mongodb_database]["outbox"]
    relay = OutboxRelay(outbox, broker, lease_seconds=LEASE, owner="me", publish_timeout=2.0)
    await relay.ensure_indexes()
    await outbox.insert_one(record(settings))
    try:
        server.stop()
        for _ in range(2):  # two sweeps during the outage: each claims, fails, lets go
            with pytest.raises(Exception):  # noqa: B017 - whatever the client raises when down
                await relay.sweep()
            await asyncio.sleep(LEASE * 2)
        server = start_kafka(server.port, tmp_path)
        await ensure_topics(settings, [Topics.RECEIVED])
        republished = 0
        for _ in range(20):
            try:
                republished = await relay.sweep()
            except Exception:  # the client may need a moment to reconnect
                republished = 0
            if republished:
                break
            await asyncio.sleep(LEASE * 2)
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=1)
    finally:
        await broker.stop()
        server.stop()
    assert republished == 1
    # At least once: a send the client still held from the outage may arrive too, same id.
    assert events and {e["id"] for e in events} == {"e-1"}
    stored = await outbox.find_one({"_id": "BKL-1"})
    assert stored is not None and stored["published"]


async def _relays(settings: Settings, mongo: AsyncMongoClient[Document]
                  ) -> tuple[Any, OutboxRelay, OutboxRelay]:
    await ensure_topics(settings, [Topics.RECEIVED])
    broker = make_broker(settings, "outbox-test")
    await broker.start()
    outbox = mongo[settings.mongodb_database]["outbox"]
    writer = OutboxRelay(outbox, broker, lease_seconds=LEASE, owner="crashed")
    other = OutboxRelay(outbox, broker, lease_seconds=LEASE, owner="other-replica")
    await writer.ensure_indexes()
    return broker, writer, other


async def test_a_slow_writer_does_not_publish_what_another_replicas_sweep_took_over(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """The writer's lease ran out before it got to publish (a slow turn): another replica's
    sweep claimed and published the event, so the writer's late publish sends nothing."""
    broker, writer, other = await _relays(settings, mongo)
    doc = record(settings)  # the writer's copy: leased to it, unpublished
    await writer.collection.insert_one(dict(doc))
    try:
        assert await other.sweep() == 1
        await writer.publish([doc])
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=2,
                                  timeout=5, settle=2)
    finally:
        await broker.stop()
    assert [e["id"] for e in events] == ["e-1"]


async def test_a_writer_whose_lease_ran_out_unclaimed_still_publishes_once(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    broker, writer, other = await _relays(settings, mongo)
    doc = record(settings)
    await writer.collection.insert_one(dict(doc))
    try:
        await writer.publish([doc])
        assert await other.sweep() == 0  # held, then published: nothing left to claim
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=2,
                                  timeout=5, settle=2)
    finally:
        await broker.stop()
    assert [e["id"] for e in events] == ["e-1"]
    stored = await writer.collection.find_one({"_id": "BKL-1"})
    assert stored is not None and stored["published"] and "lease_owner" not in stored


class _Updates(monitoring.CommandListener):
    """The update commands a client sent: what the relay wrote to the store."""

    def __init__(self) -> None:
        self.sent: list[Document] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update":
            self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_writer_publishes_its_fresh_events_with_one_write_and_a_sweep_finds_nothing(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """Just written, leased to the writer for long: no sweep can hold it, so the writer sends
    it without taking it over first; the only write is marking it published."""
    updates = _Updates()
    watched: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True,
                                                           event_listeners=[updates])
    await ensure_topics(settings, [Topics.RECEIVED])
    broker = make_broker(settings, "outbox-test")
    await broker.start()
    outbox = watched[settings.mongodb_database]["outbox"]
    writer = OutboxRelay(outbox, broker, lease_seconds=600, owner="writer")
    other = OutboxRelay(mongo[settings.mongodb_database]["outbox"], broker, lease_seconds=600,
                        owner="other-replica")
    complaint = Complaint(ticket_id="BKL-2", channel="web", text="Lampu jalan mati",
                          submitted_at=utc_now())
    event = envelope(complaint, type=EventType.COMPLAINT_RECEIVED, tenant=settings.tenant,
                     ticket_id="BKL-2", event_id="e-2")
    doc = {"_id": "BKL-2", **outbox_fields(Topics.RECEIVED, event, lease_seconds=600,
                                           owner="writer", now=utc_now())}
    try:
        await outbox.insert_one(dict(doc))
        updates.sent.clear()
        await writer.publish([doc])
        assert await other.sweep() == 0
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=2,
                                  timeout=5, settle=2)
    finally:
        await broker.stop()
        await watched.close()
    assert [e["id"] for e in events] == ["e-2"]
    assert [u["updates"][0]["u"]["$set"]["published"] for u in updates.sent] == [True]
    stored = await mongo[settings.mongodb_database]["outbox"].find_one({"_id": "BKL-2"})
    assert stored is not None and stored["published"] and "lease_owner" not in stored


@pytest.mark.own_servers
async def test_a_send_held_longer_than_the_lease_is_not_taken_by_another_replica(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path) -> None:
    """The writer's send waits (its broker is frozen with SIGSTOP) for several leases: the
    writer keeps renewing the lease, so another replica's sweeps claim nothing, and once the
    broker thaws the event is on the topic once. (Before the renewal the sweep took it over
    after one lease and both sent it: 162 of 300 escalations twice in a loaded CI run.)"""
    server, settings, broker = await own_broker(settings, tmp_path)
    outbox = mongo[settings.mongodb_database]["outbox"]
    lease = 1.0
    writer = OutboxRelay(outbox, broker, lease_seconds=lease, owner="writer", publish_timeout=60)
    other = OutboxRelay(outbox, broker, lease_seconds=lease, owner="other-replica")
    complaint = Complaint(ticket_id="BKL-3", channel="web", text="Drainase tersumbat",
                          submitted_at=utc_now())
    event = envelope(complaint, type=EventType.COMPLAINT_RECEIVED, tenant=settings.tenant,
                     ticket_id="BKL-3", event_id="e-3")
    doc = {"_id": "BKL-3", **outbox_fields(Topics.RECEIVED, event, lease_seconds=lease,
                                           owner="writer", now=utc_now())}
    await outbox.insert_one(dict(doc))
    server.process.send_signal(signal.SIGSTOP)
    try:
        sending = asyncio.create_task(writer.publish([doc]))
        claimed = 0
        for _ in range(8):  # four leases of sweeps by the other replica
            await asyncio.sleep(lease / 2)
            claimed += await other.sweep()
        stored = await outbox.find_one({"_id": "BKL-3"})
        server.process.send_signal(signal.SIGCONT)
        await sending
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=2,
                                  timeout=10, settle=2)
    finally:
        server.process.send_signal(signal.SIGCONT)
        await broker.stop()
        server.stop()
    assert claimed == 0
    assert stored is not None and stored["lease_owner"] == "writer" and not stored["published"]
    assert [e["id"] for e in events] == ["e-3"]
    assert not writer.held  # released once sent: nothing renews a published record
