"""SLA against the embedded broker and store: idempotent tickets, updates over HTTP and Kafka,
exactly one escalation per level with two replicas, late escalations after downtime."""

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.sla.app import create_app
from services.sla.flows import Sla
from services.sla.policy import load_policy
from services.sla.store import TicketStore
from shared.contracts import Envelope, TicketRouted, Topics, utc_now
from shared.embedded import free_port
from shared.kafka import ensure_topics, make_broker
from shared.mongo import Document
from shared.outbox import OutboxRelay
from shared.settings import Settings
from tests.integration.support import at_least, eventually, produce, read_topic, serving

pytestmark = pytest.mark.integration


def routed(ticket_id: str, submitted_at: datetime, agency: str = "DLH") -> tuple[str, bytes]:
    data = {"agency": agency, "agency_name": "Dinas Lingkungan Hidup", "authority": "kota",
            "priority": "normal", "category": "Sampah", "channel": "web", "text": "Sampah numpuk",
            "submitted_at": submitted_at.isoformat(),
            "routing": {"rulebook_version": "test", "rule_ids": ["dlh.sampah"],
                        "matched_terms": ["sampah"], "score": 1.0, "confidence": 1.0}}
    event = {"id": f"routed-{ticket_id}", "type": "ticket.routed", "tenant": "kota-bengkulu",
             "ticket_id": ticket_id, "data": data}
    return ticket_id, json.dumps(event).encode()


def update(ticket_id: str, event_id: str, action: str) -> tuple[str, bytes]:
    event = {"id": event_id, "type": "ticket.update", "tenant": "kota-bengkulu",
             "ticket_id": ticket_id, "data": {"action": action, "actor": "petugas DLH"}}
    return ticket_id, json.dumps(event).encode()


async def test_tickets_are_idempotent_and_follow_updates(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    tickets = mongo[settings.mongodb_database]["tickets"]
    async with serving(create_app(settings), settings.sla_port) as url, httpx.AsyncClient() as http:
        now = utc_now()
        await produce(bootstrap, Topics.ROUTED, [routed("T-1", now), routed("T-1", now),
                                                 routed("T-2", now)])
        assert await eventually(lambda: at_least(tickets, 2))
        await produce(bootstrap, Topics.UPDATES, [
            update("T-1", "u-1", "acknowledged"), update("T-1", "u-1", "acknowledged"),
            update("T-1", "u-2", "resolved"), update("T-404", "u-3", "responded"),
            update("T-1", "u-4", "responded")])  # after resolved: refused
        letters = await read_topic(bootstrap, Topics.DEADLETTER, expect=2)
        ticket = (await http.get(f"{url}/v1/tickets/T-1")).json()

        responded = await http.post(f"{url}/v1/tickets/T-2/events", json={"action": "responded",
                                    "note": "Truk dijadwalkan besok"}, headers={"Idempotency-Key": "k"})
        repeat = await http.post(f"{url}/v1/tickets/T-2/events", json={"action": "responded",
                                 "note": "Truk dijadwalkan besok"}, headers={"Idempotency-Key": "k"})
        refused = await http.post(f"{url}/v1/tickets/T-1/events", json={"action": "acknowledged"})
        unknown = await http.post(f"{url}/v1/tickets/nope/events", json={"action": "acknowledged"})
        invalid = await http.post(f"{url}/v1/tickets/T-2/events", json={"action": "rejected"})

    assert await tickets.count_documents({}) == 2
    assert [h["action"] for h in ticket["history"]] == ["assigned", "acknowledged", "resolved"]
    assert ticket["status"] == "resolved"
    assert ticket["clocks"]["response"]["stopped_at"] is not None
    assert ticket["next_check_at"] is None
    assert sorted(letter["data"]["reason"][:25] for letter in letters) == [
        "no ticket T-404", "ticket T-1 is resolved: r"]
    assert responded.status_code == 200 and responded.json()["status"] == "responded"
    assert len(repeat.json()["history"]) == len(responded.json()["history"])
    assert (refused.status_code, unknown.status_code, invalid.status_code) == (409, 404, 422)
    assert invalid.json()["errors"][0]["problem"].endswith(
        "a rejection must give a reason and a suggested_agency")


async def test_two_replicas_fire_each_level_exactly_once(settings: Settings) -> None:
    """Demo policy: response target 5 s, levels at 75% and 100%. Two SLA instances share the
    store and the topic; every (ticket, level) must appear on the topic once."""
    bootstrap = settings.kafka_bootstrap_servers
    twin = settings.model_copy(update={"sla_port": free_port(), "instance_id": "twin"})
    async with serving(create_app(settings), settings.sla_port), \
            serving(create_app(twin), twin.sla_port):
        now = utc_now()
        await produce(bootstrap, Topics.ROUTED, [routed(f"T-{i}", now) for i in range(30)])
        events = await read_topic(bootstrap, Topics.ESCALATIONS, expect=60, timeout=40, settle=3)
    fired = Counter((e["ticket_id"], e["data"]["clock"], e["data"]["level"]) for e in events)
    assert len(fired) == 60
    assert set(fired.values()) == {1}, [k for k, v in fired.items() if v > 1]
    assert {e["data"]["recipients"][0]["role"] for e in events} == {"agency_head"}


async def test_escalations_missed_during_downtime_fire_once_marked_late(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    idle = settings.model_copy(update={"scheduler_interval_seconds": 3600.0})
    two_minutes_ago = utc_now() - timedelta(minutes=2)
    async with serving(create_app(idle), idle.sla_port):  # scheduler never gets a turn
        await produce(bootstrap, Topics.ROUTED, [routed("T-late", two_minutes_ago)])
        tickets = mongo[settings.mongodb_database]["tickets"]
        assert await eventually(lambda: at_least(tickets, 1))
    for _ in range(2):  # started twice: the second start must not fire anything again
        async with serving(create_app(settings), settings.sla_port):
            events = await read_topic(bootstrap, Topics.ESCALATIONS, expect=99, timeout=4)
    assert sorted((e["data"]["clock"], e["data"]["level"]) for e in events) == [
        ("resolution", 1), ("response", 1), ("response", 2)]
    assert all(e["data"]["late"] for e in events)


class CrashingStore(TicketStore):
    """A real store that dies once right before storing escalations (a crash mid-turn)."""

    crashed = False

    async def claim(self, escalations: Sequence[Document], owner: str) -> list[Document]:
        if not self.crashed:
            self.crashed = True
            raise ConnectionError("simulated crash before the escalations were stored")
        return await super().claim(escalations, owner)


async def test_a_crash_mid_turn_loses_no_escalation(settings: Settings,
                                                    mongo: AsyncMongoClient[Document]) -> None:
    db = mongo[settings.mongodb_database]
    store = CrashingStore(db)
    await store.ensure_indexes()
    broker = make_broker(settings, "sla-test")
    await ensure_topics(settings, [Topics.ESCALATIONS])
    await broker.connect()
    try:
        relay = OutboxRelay(store.escalations, broker, lease_seconds=5, owner="sla-test")
        sla = Sla(settings, load_policy(settings.sla_policy), store, relay)
        [event] = [json.loads(routed("T-crash", utc_now() - timedelta(seconds=4.5))[1])]
        await sla.open_tickets([Envelope[TicketRouted].model_validate(event)])
        with pytest.raises(ConnectionError):
            await sla.escalate_due()
        assert await sla.escalate_due() == 1, "the level due at the crash must still fire"
        assert await sla.escalate_due() == 0
    finally:
        await broker.stop()
    [fired] = await db["escalations"].find().to_list(None)
    assert (fired["ticket_id"], fired["clock"], fired["level"]) == ("T-crash", "response", 1)
