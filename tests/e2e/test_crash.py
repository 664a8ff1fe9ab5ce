"""A router killed with SIGKILL in the middle of a burst, two SLA instances side by side:
afterwards every complaint has exactly one ticket and no escalation is duplicated."""

import json
import signal
import uuid
from collections import Counter
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from services.dev import create_topics
from shared.contracts import Topics
from shared.embedded import free_port
from shared.mongo import Document
from shared.settings import Settings
from tests.e2e.support import spawn, stop, wait_healthy
from tests.integration.support import at_least, eventually, produce, read_topic

pytestmark = pytest.mark.e2e

BURST = 300
TEXTS = ["Sampah di TPS belum diangkut seminggu", "Jalan berlubang besar di depan sekolah",
         "Air PDAM mati sejak kemarin pagi", "Lampu jalan mati di gang kami"]


def submission(i: int) -> tuple[str | None, bytes]:
    event = {"id": str(uuid.uuid4()), "type": "complaint.submitted", "tenant": "kota-bengkulu",
             "data": {"channel": "whatsapp", "external_id": f"wa-{i}", "text": TEXTS[i % 4]}}
    return None, json.dumps(event).encode()


async def test_router_sigkill_mid_burst_loses_and_duplicates_nothing(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path) -> None:
    db = mongo[settings.mongodb_database]
    await create_topics(settings)
    intake = spawn("intake", settings, tmp_path)
    router = spawn("router", settings, tmp_path, consume_batch_size=20)
    slas = [spawn("sla", settings, tmp_path, sla_port=free_port(), instance_id=f"sla-{n}")
            for n in range(2)]
    try:
        wait_healthy(f"http://127.0.0.1:{settings.intake_port}", intake)
        wait_healthy(f"http://127.0.0.1:{settings.router_port}", router)
        await produce(settings.kafka_bootstrap_servers, Topics.SUBMITTED,
                      [submission(i) for i in range(BURST)])
        assert await eventually(lambda: at_least(db["tickets"], 20), timeout=90)
        stop(router, signal.SIGKILL)
        router = spawn("router", settings, tmp_path)
        assert await eventually(lambda: at_least(db["tickets"], BURST), timeout=180)
        escalations = await read_topic(settings.kafka_bootstrap_servers, Topics.ESCALATIONS,
                                       expect=2 * BURST, timeout=120, settle=3)
    finally:
        for process in (intake, router, *slas):
            stop(process)

    complaints = await db["complaints"].find({}, {"ticket_id": 1}).to_list(None)
    tickets = await db["tickets"].find({}, {"_id": 1}).to_list(None)
    assert len(complaints) == BURST
    assert sorted(t["_id"] for t in tickets) == sorted(c["ticket_id"] for c in complaints)
    fired = Counter((e["ticket_id"], e["data"]["clock"], e["data"]["level"]) for e in escalations)
    assert [k for k, n in fired.items() if n > 1] == []
    # Response levels 1 and 2 of the demo policy (at 3.75 s and 5 s), for each ticket. Its
    # resolution level comes at 60 s, which a slow run (the cluster pass on a loaded machine:
    # 139 s) reaches for its first tickets: those are held to once each above, not counted here.
    response = {key for key in fired if key[1] == "response"}
    assert response == {(t["_id"], "response", level) for t in tickets for level in (1, 2)}
