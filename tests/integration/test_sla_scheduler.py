"""The SLA scheduler against the embedded store and broker: replicas racing over many due
tickets fire each (ticket, clock, level, repeat) once; after downtime, missed levels fire once,
late; a crash mid-turn loses nothing."""

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from services.sla.store import TicketStore
from shared.contracts import Topics, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.sla_support import routed_envelope, sla_instance
from tests.integration.support import read_topic

pytestmark = pytest.mark.integration

TICKETS = 120


async def test_two_replicas_racing_fire_each_level_exactly_once(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """Demo policy, 24x7: every ticket was routed 10 s ago, so response levels 1 (3.75 s) and
    2 (5 s) are due. Two replicas take turns at the same time with small batches until
    nothing is due; every level must be stored and published exactly once."""
    small = settings.model_copy(update={"scheduler_batch_size": 25})
    twin = small.model_copy(update={"instance_id": "twin"})
    ten_seconds_ago = utc_now() - timedelta(seconds=10)
    async with sla_instance(small, mongo) as one, sla_instance(twin, mongo) as two:
        await one.open_tickets([routed_envelope(f"T-{i}", ten_seconds_ago) for i in range(TICKETS)])
        fired = 0
        for _ in range(40):
            turns = await asyncio.gather(one.turn(), two.turn())
            fired += sum(t.fired for t in turns)
            if not any(t.claimed for t in turns):
                break
        claimed_again = await asyncio.gather(one.turn(), two.turn())
    events = await read_topic(settings.kafka_bootstrap_servers, Topics.ESCALATIONS,
                              expect=2 * TICKETS, timeout=30, settle=2)
    keys = Counter((e["ticket_id"], e["data"]["clock"], e["data"]["level"], e["data"]["repeat"])
                   for e in events)
    assert fired == 2 * TICKETS
    assert [k for k, n in keys.items() if n > 1] == []
    assert len(keys) == 2 * TICKETS
    assert {(k[1], k[2]) for k in keys} == {("response", 1), ("response", 2)}
    assert sum(t.fired for t in claimed_again) == 0
    stored = mongo[settings.mongodb_database]["escalations"]
    assert await stored.count_documents({}) == 2 * TICKETS
    assert await stored.count_documents({"published": False}) == 0


async def test_missed_escalations_fire_once_marked_late_after_downtime(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """Tickets routed two minutes ago while no scheduler ran: response 1 and 2 and resolution 1
    (60 s) passed. The first turn fires each once, late; a restart fires nothing again."""
    two_minutes_ago = utc_now() - timedelta(minutes=2)
    async with sla_instance(settings, mongo) as sla:
        await sla.open_tickets([routed_envelope(f"L-{i}", two_minutes_ago) for i in range(5)])
        first = await sla.turn()
    async with sla_instance(settings, mongo) as restarted:  # "after a restart"
        second = await restarted.turn()
    events = await read_topic(settings.kafka_bootstrap_servers, Topics.ESCALATIONS, expect=99,
                              timeout=4)
    assert (first.fired, second.fired) == (15, 0)
    assert sorted({(e["data"]["clock"], e["data"]["level"]) for e in events}) == [
        ("resolution", 1), ("response", 1), ("response", 2)]
    assert len(events) == 15
    assert all(e["data"]["late"] for e in events)
    assert all(e["data"]["recipients"][0]["name"] == "Kepala Dinas Lingkungan Hidup Kota Bengkulu"
               for e in events), events[0]["data"]["recipients"]
    ticket = await mongo[settings.mongodb_database]["tickets"].find_one({"_id": "L-0"})
    assert ticket is not None
    assert ticket["next_check_at"] > utc_now() + timedelta(days=59)  # only the legal ceiling left


class CrashingStore(TicketStore):
    """A real store that dies once right before storing escalations (a crash mid-turn)."""

    crashed = False

    async def store_escalations(self, escalations: Sequence[Document], owner: str) -> list[Document]:
        if not self.crashed:
            self.crashed = True
            raise ConnectionError("simulated crash before the escalations were stored")
        return await super().store_escalations(escalations, owner)


async def test_a_crash_mid_turn_loses_no_escalation(settings: Settings,
                                                    mongo: AsyncMongoClient[Document]) -> None:
    async with sla_instance(settings, mongo, store_class=CrashingStore) as sla:
        await sla.open_tickets([routed_envelope("T-crash", utc_now() - timedelta(seconds=4.5))])
        with pytest.raises(ConnectionError):
            await sla.turn()
        assert (await sla.turn()).claimed == 0, "the lease holds the ticket until it runs out"
        await asyncio.sleep(settings.outbox_lease_seconds + 0.2)
        # The level due at the crash still fires, with level 2 that came due meanwhile.
        assert (await sla.turn()).fired == 2
        assert (await sla.turn()).fired == 0
    fired = await mongo[settings.mongodb_database]["escalations"].find().sort("_id").to_list(None)
    assert [(f["_id"], f["published"]) for f in fired] == [
        ("T-crash:a1:response:1:0", True), ("T-crash:a1:response:2:0", True)]


async def test_idle_scheduler_sleeps_until_the_next_check(settings: Settings,
                                                          mongo: AsyncMongoClient[Document]) -> None:
    """With nothing due, a turn claims nothing and the store names the next instant to wake."""
    async with sla_instance(settings, mongo) as sla:
        assert await sla.store.earliest_check() is None
        now = utc_now()
        await sla.open_tickets([routed_envelope("T-idle", now)])
        started = time.perf_counter()
        turn = await sla.turn()
        elapsed = time.perf_counter() - started
        earliest = await sla.store.earliest_check()
    assert turn.claimed == 0
    assert earliest is not None
    assert abs((earliest - (now + timedelta(seconds=3.75))).total_seconds()) < 0.01
    assert elapsed < 5  # one indexed query; a sanity bound, not a benchmark
