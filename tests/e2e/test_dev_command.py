"""`disposisi dev` from the outside: the five steps a city IT officer sees, then a clean stop."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.contracts import Topics
from shared.embedded import free_port, port_is_open
from tests.conftest import DEMO_POLICY
from tests.e2e.support import stop, wait_healthy
from tests.integration.support import read_topic

pytestmark = pytest.mark.e2e

COMPLAINT = {"channel": "web",
             "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"}


@pytest.fixture
def dev(tmp_path: Path) -> "DevSystem":
    return DevSystem(tmp_path)


class DevSystem:
    def __init__(self, tmp_path: Path) -> None:
        self.ports = {name: free_port() for name in ("kafka", "mongo", "intake", "sla", "router")}
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPOSISI_")}
        env["DISPOSISI_SLA_POLICY"] = str(DEMO_POLICY)
        for name in ("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS", "DISPOSISI_MONGODB_URL"):
            if name in os.environ:  # testing against real servers: dev must use them
                env[name] = os.environ[name]
        flags = [f"--{name}-port={port}" for name, port in self.ports.items()]
        self.log = (tmp_path / "dev.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "dev", f"--data-dir={tmp_path / 'data'}", *flags],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.intake = f"http://127.0.0.1:{self.ports['intake']}"
        self.sla = f"http://127.0.0.1:{self.ports['sla']}"
        self.kafka = os.environ.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS",
                                    f"127.0.0.1:{self.ports['kafka']}")


async def test_dev_runs_the_whole_pipeline_and_stops_cleanly(dev: DevSystem) -> None:
    try:
        for url in (dev.intake, dev.sla, f"http://127.0.0.1:{dev.ports['router']}"):
            wait_healthy(url, dev.process)
        async with httpx.AsyncClient() as http:
            # 1. a channel posts a complaint and gets a tracking number
            accepted = await http.post(f"{dev.intake}/v1/complaints", json=COMPLAINT)
            assert accepted.status_code == 202
            ticket_id = accepted.json()["ticket_id"]
            # 2. it reaches the queue of the agency whose Tupoksi covers it, as plain JSON
            queue = await read_topic(dev.kafka, Topics.agency("DLH"), expect=1, timeout=60)
            assert [m["ticket_id"] for m in queue] == [ticket_id]
            assert queue[0]["data"]["routing"]["matched_terms"]
            # 3. the stored ticket shows agency, explanation and deadlines
            view = await _eventually_routed(http, f"{dev.intake}/v1/complaints/{ticket_id}")
            assert view["agency"] == "DLH"
            assert view["routing"]["rule_ids"]
            assert set(view["deadlines"]) >= {"response_due", "resolution_due"}
            # 4. silence past 75% of the 5-second demo target reaches the supervisors
            escalations = await read_topic(dev.kafka, Topics.ESCALATIONS, expect=1, timeout=60)
            assert escalations[0]["ticket_id"] == ticket_id
            assert escalations[0]["data"]["agency"] == "DLH"
            # 5. the agency acts; the ticket and its clocks follow
            for action in ("acknowledged", "responded"):
                done = await http.post(f"{dev.sla}/v1/tickets/{ticket_id}/events",
                                       json={"action": action, "note": "Sudah kami jadwalkan"})
                assert done.status_code == 200, done.text
            ticket = (await http.get(f"{dev.sla}/v1/tickets/{ticket_id}")).json()
            assert ticket["status"] == "responded"
            assert ticket["clocks"]["response"]["stopped_at"] is not None
    finally:
        code = stop(dev.process, signal.SIGTERM)
    assert code == 0
    await asyncio.sleep(0.5)
    still_open = [name for name, port in dev.ports.items() if port_is_open(port)]
    assert still_open == [], f"left running after SIGTERM: {still_open}"


async def _eventually_routed(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    for _ in range(100):
        view: dict[str, Any] = (await http.get(url)).json()
        if view.get("agency"):
            return view
        await asyncio.sleep(0.2)
    raise AssertionError(f"never routed: {view}")
