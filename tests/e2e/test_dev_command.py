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
        for name, value in os.environ.items():  # testing against real servers: dev must use them
            if name.startswith("DISPOSISI_KAFKA_") or name == "DISPOSISI_MONGODB_URL":
                env[name] = value
        flags = [f"--{name}-port={port}" for name, port in self.ports.items()]
        self.log = (tmp_path / "dev.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "dev", f"--data-dir={tmp_path / 'data'}", *flags],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.intake = f"http://127.0.0.1:{self.ports['intake']}"
        self.sla = f"http://127.0.0.1:{self.ports['sla']}"
        self.kafka = os.environ.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS",
                                    f"127.0.0.1:{self.ports['kafka']}")

    def wait_ready(self) -> None:
        for url in (self.intake, self.sla, f"http://127.0.0.1:{self.ports['router']}"):
            wait_healthy(url, self.process)


async def test_dev_runs_the_whole_pipeline_and_stops_cleanly(dev: DevSystem) -> None:
    try:
        dev.wait_ready()
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


async def test_rejections_reroute_until_the_triage_desk_assigns_by_hand(dev: DevSystem) -> None:
    try:
        dev.wait_ready()
        async with httpx.AsyncClient() as http:
            accepted = await http.post(f"{dev.intake}/v1/complaints", json=COMPLAINT)
            ticket_id = accepted.json()["ticket_id"]
            ticket_url = f"{dev.sla}/v1/tickets/{ticket_id}"
            await _eventually_routed(http, f"{dev.intake}/v1/complaints/{ticket_id}")
            # 1. DLH rejects with a reason and a suggestion: PUPR's queue gets it, DLH's sees it go
            await _act(http, ticket_url, {"action": "rejected", "actor": "kabid DLH",
                                          "reason": "saluran, bukan sampah", "suggested_agency": "PUPR"})
            pupr = await _eventually_assigned(http, ticket_url, 2)
            assert pupr["agency"] == "PUPR"
            dlh = await read_topic(dev.kafka, Topics.agency("DLH"), expect=2, timeout=60)
            assert [m["type"] for m in dlh] == ["ticket.assigned", "ticket.withdrawn"]
            # 2. PUPR rejects too: two bounces, so the triage desk gets it and its head is told
            await _act(http, ticket_url, {"action": "rejected", "actor": "kabid PUPR",
                                          "reason": "bukan drainase", "suggested_agency": "DLH"})
            triage = await _eventually_assigned(http, ticket_url, 3)
            assert triage["agency"] == "TRIAGE"
            alerts = await read_topic(dev.kafka, Topics.ESCALATIONS, expect=1, timeout=60,
                                      settle=2.0)
            assert any(a["data"]["clock"] == "routing" and a["ticket_id"] == ticket_id for a in alerts)
            # 3. the desk assigns by hand, recorded with who and why
            chosen = await http.post(f"{ticket_url}/route", json={
                "agency": "DLH", "actor": "admin.rina", "reason": "sampah menyumbat saluran: DLH angkut"})
            assert chosen.status_code == 202, chosen.text
            final = await _eventually_assigned(http, ticket_url, 4)
        assert final["agency"] == "DLH"
        assert [a["agency"] for a in final["assignments"]] == ["DLH", "PUPR", "TRIAGE", "DLH"]
        assert final["rejected_by"] == ["DLH", "PUPR"]
        assert "assigned by hand by admin.rina" in final["routing"]["reason"]
    finally:
        code = stop(dev.process, signal.SIGTERM)
    assert code == 0


async def _act(http: httpx.AsyncClient, ticket_url: str, update: dict[str, str]) -> None:
    done = await http.post(f"{ticket_url}/events", json=update)
    assert done.status_code == 200, done.text


async def _eventually_assigned(http: httpx.AsyncClient, ticket_url: str,
                               assignment: int) -> dict[str, Any]:
    for _ in range(300):
        ticket: dict[str, Any] = (await http.get(ticket_url)).json()
        if ticket.get("assignment") == assignment:
            return ticket
        await asyncio.sleep(0.2)
    raise AssertionError(f"never reached assignment {assignment}: {ticket}")


async def _eventually_routed(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    for _ in range(100):
        view: dict[str, Any] = (await http.get(url)).json()
        if view.get("agency"):
            return view
        await asyncio.sleep(0.2)
    raise AssertionError(f"never routed: {view}")
