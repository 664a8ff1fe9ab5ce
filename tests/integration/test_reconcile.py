"""End-to-end accounting: complaints whose events the broker lost (killed and restarted with
an empty log) still become tickets, each exactly once, by intake's reconciliation; the alarm
names what is stuck and intake is not ready meanwhile; a repeated complaint.received is one
ticket, one agency message and one ladder of escalations."""

import asyncio
import contextlib
import json
import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.dev import create_topics
from services.intake.app import create_app as create_intake
from services.router.app import create_app as create_router
from services.sla.app import create_app as create_sla
from shared.contracts import Topics, utc_now
from shared.embedded import free_port, start_kafka
from shared.mongo import Document
from shared.settings import Settings
from tests.conftest import EMBEDDED_KAFKA_SETTINGS
from tests.integration.auth_support import Accounts
from tests.integration.sla_support import routed_envelope, sla_instance
from tests.integration.support import eventually, produce, read_topic, serving

pytestmark = pytest.mark.integration

TEXTS = ["Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat",
         "Jalan berlubang besar di depan SD Negeri 5, sudah ada motor yang jatuh",
         "Lampu jalan di Jl. Hibrida mati, gelap sekali kalau malam"]
COUNT = 12


def _settings(settings: Settings, bootstrap: str, *, own_broker: bool = False) -> Settings:
    return settings.model_copy(update={
        "kafka_bootstrap_servers": bootstrap, "reconcile_after_seconds": 3.0,
        "reconcile_interval_seconds": 0.5, "reconcile_alarm_seconds": 6.0,
        **(EMBEDDED_KAFKA_SETTINGS if own_broker else {})})


async def _post_complaints(url: str, headers: dict[str, str]) -> list[str]:
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
        answers = [await http.post(f"{url}/v1/complaints",
                                   json={"channel": "web", "text": TEXTS[i % len(TEXTS)],
                                         "anonymous": True, "reporter": {"name": "Rina"}})
                   for i in range(COUNT)]
    assert {a.status_code for a in answers} == {202}
    return [a.json()["ticket_id"] for a in answers]


async def _all_published(db: AsyncDatabase[Document], ids: list[str]) -> bool:
    return await db["complaints"].count_documents(
        {"ticket_id": {"$in": ids}, "published": True}) == len(ids)


async def _all_ticketed(db: AsyncDatabase[Document], ids: list[str]) -> bool:
    tickets = await db["tickets"].count_documents({"_id": {"$in": ids}})
    marked = await db["complaints"].count_documents(
        {"ticket_id": {"$in": ids}, "ticketed_at": {"$ne": None}})
    return tickets == marked == len(ids)


async def _readiness(url: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{url}/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def _agency_messages(db: AsyncDatabase[Document], settings: Settings,
                           ids: list[str]) -> list[dict[str, Any]]:
    """Every ticket.assigned of these tickets, read from the queues their tickets went to."""
    tickets = await db["tickets"].find({"_id": {"$in": ids}}, {"agency": 1}).to_list(None)
    per_agency = Counter(t["agency"] for t in tickets)
    found: list[dict[str, Any]] = []
    for agency, expected in per_agency.items():
        found += await read_topic(settings.kafka_bootstrap_servers, Topics.agency(agency),
                                  expect=expected, timeout=60, settle=2)
    return [m for m in found if m["type"] == "ticket.assigned" and m["ticket_id"] in ids]


@pytest.mark.own_servers
@pytest.mark.parametrize("absent", ["router", "sla"])
async def test_complaints_lost_with_the_broker_become_tickets_exactly_once(
        absent: str, settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path,
        caplog: pytest.LogCaptureFixture, accounts: Accounts) -> None:
    """With the router (or the SLA service) not running, complaints are accepted and
    published (and, without the SLA, routed); then the broker is killed and a new empty one
    starts on the same port. Nothing on the broker remembers them: only the store does."""
    caplog.set_level(logging.INFO)
    web = await accounts.channel("web")
    broker = start_kafka(free_port(), tmp_path)
    settings = _settings(settings, broker.address, own_broker=True)
    db = mongo[settings.mongodb_database]
    builders = {"router": (create_router, settings.router_port),
                "sla": (create_sla, settings.sla_port)}
    present = "sla" if absent == "router" else "router"
    try:
        async with contextlib.AsyncExitStack() as running:
            intake_url = await running.enter_async_context(
                serving(create_intake(settings), settings.intake_port))
            build, port = builders[present]
            await running.enter_async_context(serving(build(settings), port))
            ids = await _post_complaints(intake_url, web.headers)
            assert await eventually(lambda: _all_published(db, ids), timeout=60)
            if absent == "sla":  # the decisions were made and published, then lost
                await read_topic(settings.kafka_bootstrap_servers, Topics.ROUTED, expect=COUNT,
                                 timeout=60)

            broker.stop()
            broker = start_kafka(broker.port, tmp_path)  # memory storage: log and topics gone
            await create_topics(settings)

            async def alarmed() -> dict[str, Any] | None:
                code, body = await _readiness(intake_url)
                return body if code == 503 and "reconciliation" in body["failed"] else None

            not_ready = await eventually(alarmed, timeout=60)
            assert not_ready, "intake must not be ready while complaints wait past the alarm"
            assert f"{COUNT} complaints without a ticket" in \
                not_ready["checks"]["reconciliation"]["problem"]
            alarms = [r.getMessage() for r in caplog.records if "reconciliation alarm" in r.getMessage()]
            assert alarms and all(i in alarms[-1] for i in ids)
            assert not any(text[:20] in line for line in alarms for text in TEXTS)
            assert "Rina" not in caplog.text

            build, port = builders[absent]
            await running.enter_async_context(serving(build(settings), port))
            assert await eventually(lambda: _all_ticketed(db, ids), timeout=120)
            assert await eventually(lambda: _ready_now(intake_url), timeout=60)

            assigned = await _agency_messages(db, settings, ids)
    finally:
        broker.stop()

    tickets = await db["tickets"].find({"_id": {"$in": ids}}).to_list(None)
    assert sorted(t["_id"] for t in tickets) == sorted(ids)
    assert all(t["assignment"] == 1 and len(t["assignments"]) == 1 for t in tickets)
    by_ticket: dict[str, set[str]] = {}
    for message in assigned:
        by_ticket.setdefault(message["ticket_id"], set()).add(message["id"])
    assert sorted(by_ticket) == sorted(ids), "every ticket reached its agency's queue"
    assert all(len(event_ids) == 1 for event_ids in by_ticket.values()), \
        "a repeat carries the same event id: the agency sees one message per ticket"


async def _ready_now(url: str) -> bool:
    code, _ = await _readiness(url)
    return code == 200


async def test_a_repeated_complaint_is_one_ticket_one_message_one_ladder(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    web = await accounts.channel("web")
    settings = _settings(settings, settings.kafka_bootstrap_servers)
    db = mongo[settings.mongodb_database]
    await create_topics(settings)
    async with serving(create_intake(settings), settings.intake_port) as intake_url, \
            serving(create_router(settings), settings.router_port), \
            serving(create_sla(settings), settings.sla_port):
        [ticket_id] = await _post_complaints_one(intake_url, web.headers)
        assert await eventually(lambda: _all_ticketed(db, [ticket_id]), timeout=60)
        stored = await db["complaints"].find_one({"ticket_id": ticket_id})
        assert stored is not None
        first = await db["tickets"].find_one({"_id": ticket_id})
        assert first is not None
        again = json.dumps(stored["event"]).encode()
        await produce(settings.kafka_bootstrap_servers, Topics.RECEIVED,
                      [(ticket_id, again), (ticket_id, again)])
        # The router decided three times; wait for the SLA service to have read them all.
        await read_topic(settings.kafka_bootstrap_servers, Topics.ROUTED, expect=3, timeout=60)
        # Announced again for each batch of decisions it read (the repeats may share one).
        opened = await read_topic(settings.kafka_bootstrap_servers, Topics.OPENED, expect=2,
                                  timeout=60, settle=2)
        # The demo policy's ladder fires within seconds: let it.
        escalations = await read_topic(settings.kafka_bootstrap_servers, Topics.ESCALATIONS,
                                       expect=2, timeout=60, settle=3)
        assigned = await read_topic(settings.kafka_bootstrap_servers, Topics.agency(first["agency"]),
                                    expect=3, timeout=30, settle=1)
        await asyncio.sleep(1)
        ticket = await db["tickets"].find_one({"_id": ticket_id})

    assert ticket is not None
    assert await db["tickets"].count_documents({}) == 1
    assert [h["action"] for h in ticket["history"]].count("assigned") == 1
    assert ticket["assigned_at"] == first["assigned_at"], "the clocks did not restart"
    assert len({m["id"] for m in assigned if m["type"] == "ticket.assigned"}) == 1
    assert len({m["id"] for m in opened}) == 1, "re-announced under the same event id"
    assert escalations, "the demo ladder fired"
    per_level: dict[tuple[str, int, int], set[str]] = {}
    for e in escalations:
        per_level.setdefault((e["data"]["clock"], e["data"]["level"], e["data"]["repeat"]),
                             set()).add(e["id"])
    assert all(len(event_ids) == 1 for event_ids in per_level.values()), \
        "one escalation per clock, level and repeat"


async def _post_complaints_one(url: str, headers: dict[str, str]) -> list[str]:
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
        answer = await http.post(f"{url}/v1/complaints", json={"channel": "web", "text": TEXTS[0]})
    assert answer.status_code == 202
    return [answer.json()["ticket_id"]]


async def test_the_sla_announces_a_ticket_again_when_its_decision_comes_again(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """The first ticket.opened may have been lost with the broker: a decision read again (the
    reconciliation's doing) announces the ticket again under the same id, and changes nothing."""
    submitted = utc_now() - timedelta(minutes=5)
    async with sla_instance(settings, mongo) as sla:
        first = [routed_envelope("BKL-261128-AAAA0001", submitted),
                 routed_envelope("BKL-261128-AAAA0002", submitted)]
        assert await sla.open_tickets(first) == 2
        assert await sla.open_tickets([routed_envelope("BKL-261128-AAAA0001", submitted)]) == 0
        announced = await read_topic(settings.kafka_bootstrap_servers, Topics.OPENED, expect=3,
                                     settle=1)
    assert Counter(e["ticket_id"] for e in announced) == {"BKL-261128-AAAA0001": 2,
                                                          "BKL-261128-AAAA0002": 1}
    ids = {e["ticket_id"]: {a["id"] for a in announced if a["ticket_id"] == e["ticket_id"]}
           for e in announced}
    assert all(len(event_ids) == 1 for event_ids in ids.values()), "same event id each time"
    assert {e["type"] for e in announced} == {"ticket.opened"}
    assert {e["data"]["agency"] for e in announced} == {"DLH"}
    assert await mongo[settings.mongodb_database]["tickets"].count_documents({}) == 2
