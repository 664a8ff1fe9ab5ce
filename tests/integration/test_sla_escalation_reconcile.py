"""Escalations the broker acknowledged and then lost (the embedded broker killed and
restarted with an empty log) are found from the store and re-announced under their first
event ids: after recovery the topic holds every stored escalation exactly once, the alarm
named the missing ones by notice id, and the service is ready again."""

import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.dev import create_topics
from services.sla.app import create_app
from shared.contracts import Topics, utc_now
from shared.embedded import free_port, start_kafka
from shared.mongo import Document
from shared.settings import Settings
from tests.conftest import EMBEDDED_KAFKA_SETTINGS
from tests.integration.sla_support import routed
from tests.integration.support import eventually, produce, read_topic, serving

pytestmark = pytest.mark.integration

TICKETS = 4
FIRST_LEVELS = 2 * TICKETS  # routed 10 s ago: response levels 1 and 2 are due at once


async def _ready(url: str) -> bool:
    async with httpx.AsyncClient(timeout=30) as http:
        return (await http.get(f"{url}/readyz")).status_code == 200


async def test_escalations_lost_with_the_broker_are_reannounced_once(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    broker = start_kafka(free_port(), tmp_path)
    settings = settings.model_copy(update={
        "kafka_bootstrap_servers": broker.address, **EMBEDDED_KAFKA_SETTINGS,
        "escalation_check_after_seconds": 2.0, "escalation_check_interval_seconds": 0.5,
        "escalation_alarm_seconds": 4.0})
    escalations = mongo[settings.mongodb_database]["escalations"]
    try:
        async with serving(create_app(settings), settings.sla_port) as url:
            routed_at = utc_now() - timedelta(seconds=10)
            await produce(broker.address, Topics.ROUTED,
                          [routed(f"E-{i}", routed_at) for i in range(TICKETS)])
            before = await read_topic(broker.address, Topics.ESCALATIONS, expect=FIRST_LEVELS,
                                      timeout=60)

            async def all_checked_and_found() -> bool:  # the acknowledged ones are in the log
                total = await escalations.count_documents({})
                found = await escalations.count_documents(
                    {"checked_epoch": {"$exists": True}, "reannouncements": {"$exists": False}})
                return total >= FIRST_LEVELS and found == total

            assert await eventually(all_checked_and_found, timeout=60)

            broker.stop()
            broker = start_kafka(broker.port, tmp_path)  # memory storage: log and topics gone
            await create_topics(settings)

            async def all_back() -> list[dict[str, Any]] | None:
                stored = {d["event"]["id"] for d in await escalations.find({}).to_list(None)}
                on_topic = await read_topic(broker.address, Topics.ESCALATIONS,
                                            expect=len(stored), timeout=5)
                return on_topic if stored <= {e["id"] for e in on_topic} else None

            assert await eventually(all_back, timeout=120)
            assert await eventually(lambda: _ready(url), timeout=60)
            stored = await escalations.find({}).to_list(None)
            after = await read_topic(broker.address, Topics.ESCALATIONS, expect=len(stored) + 1,
                                     timeout=5, settle=3)
    finally:
        broker.stop()

    ids_after = Counter(e["id"] for e in after)
    assert [i for i, n in ids_after.items() if n > 1] == [], "one record per escalation id"
    assert set(ids_after) == {d["event"]["id"] for d in stored}
    assert {e["id"] for e in before} <= set(ids_after), "re-announced under their first ids"
    lost = [d for d in stored if d["event"]["id"] in {e["id"] for e in before}]
    assert {d.get("reannouncements") for d in lost} == {1}
    alarms = [r.getMessage() for r in caplog.records
              if "escalation reconciliation alarm" in r.getMessage()]
    assert alarms and all(d["_id"] in " ".join(alarms) for d in lost)
