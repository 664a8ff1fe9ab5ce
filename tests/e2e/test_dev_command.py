"""`disposisi dev` from the outside: the five steps a city IT officer sees, then a clean stop."""

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.contracts import Topics
from shared.embedded import port_is_open
from tests.e2e.dev_support import DevSystem
from tests.e2e.support import stop
from tests.integration.mailbox_support import citizen_mail, send
from tests.integration.support import read_topic

pytestmark = pytest.mark.e2e

COMPLAINT = {"channel": "web",
             "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"}


@pytest.fixture
def dev(tmp_path: Path) -> DevSystem:
    return DevSystem(tmp_path / "data", tmp_path / "dev.log")


async def test_dev_runs_the_whole_pipeline_and_stops_cleanly(dev: DevSystem) -> None:
    try:
        dev.wait_ready()
        async with httpx.AsyncClient() as http:
            # 1. a channel posts a complaint with its key and gets a tracking number
            users = dev.credentials()["users"]
            assert {(u["role"], u["agency"]) for u in users.values()} >= {
                ("officer", "DLH"), ("officer", "PDAM"), ("agency_head", "DLH"), ("triage", None),
                ("supervisor", None), ("admin", None)}
            # the chat service submits as the demo whatsapp and sms channels
            assert {"web", "whatsapp", "sms"} <= set(dev.credentials()["api_keys"])
            anonymous = await http.post(f"{dev.intake}/v1/complaints", json=COMPLAINT)
            assert anonymous.status_code == 401
            accepted = await http.post(f"{dev.intake}/v1/complaints", json=COMPLAINT,
                                       headers=dev.channel_headers())
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
            # 5. the DLH officer signs in and acts; the ticket and its clocks follow
            officer = await dev.sign_in(http, "dlh.petugas")
            for action in ("acknowledged", "responded"):
                done = await http.post(f"{dev.sla}/v1/tickets/{ticket_id}/events", headers=officer,
                                       json={"action": action, "note": "Sudah kami jadwalkan"})
                assert done.status_code == 200, done.text
            ticket = (await http.get(f"{dev.sla}/v1/tickets/{ticket_id}", headers=officer)).json()
            assert ticket["status"] == "responded"
            assert ticket["history"][-1]["actor"] == "dlh.petugas (officer, DLH)"
            pdam = await dev.sign_in(http, "pdam.petugas")
            other = await http.get(f"{dev.sla}/v1/tickets/{ticket_id}", headers=pdam)
            assert other.status_code == 404
            assert ticket["clocks"]["response"]["stopped_at"] is not None
            # 6. a mail to the demo complaint address becomes a complaint of the email channel
            mail = citizen_mail(COMPLAINT["text"], subject="Sampah", message_id="<dev@warga.example>")
            await send(dev.ports["mailbox-smtp"], mail, to="pengaduan@localhost")
            received = await read_topic(dev.kafka, Topics.RECEIVED, expect=2, timeout=90)
            assert sorted(m["data"]["channel"] for m in received) == ["email", "web"]
    finally:
        code = stop(dev.process, signal.SIGTERM)
    assert code == 0
    await asyncio.sleep(0.5)
    still_open = [name for name, port in dev.ports.items() if port_is_open(port)]
    assert still_open == [], f"left running after SIGTERM: {still_open}"
    # The broker never restarted: no consumer was found past a log's end (a false alarm would
    # re-read topics from their beginning).
    assert "log was replaced" not in dev.output()


async def test_rejections_reroute_until_the_triage_desk_assigns_by_hand(dev: DevSystem) -> None:
    try:
        dev.wait_ready()
        async with httpx.AsyncClient() as http:
            accepted = await http.post(f"{dev.intake}/v1/complaints", json=COMPLAINT,
                                       headers=dev.channel_headers())
            ticket_id = accepted.json()["ticket_id"]
            ticket_url = f"{dev.sla}/v1/tickets/{ticket_id}"
            dlh, pupr, desk, watcher = [await dev.sign_in(http, name) for name in (
                "dlh.kepala", "pupr.petugas", "meja.triase", "inspektorat")]
            await _eventually_routed(http, f"{dev.intake}/v1/complaints/{ticket_id}")
            # 1. DLH rejects with a reason and a suggestion: PUPR's queue gets it, DLH's sees it go
            await _act(http, ticket_url, dlh, {"action": "rejected", "reason": "saluran, bukan sampah",
                                               "suggested_agency": "PUPR"})
            now_pupr = await _eventually_assigned(http, ticket_url, watcher, 2)
            assert now_pupr["agency"] == "PUPR"
            dlh_queue = await read_topic(dev.kafka, Topics.agency("DLH"), expect=2, timeout=60)
            assert [m["type"] for m in dlh_queue] == ["ticket.assigned", "ticket.withdrawn"]
            # 2. PUPR rejects too: two bounces, so the triage desk gets it and its head is told
            await _act(http, ticket_url, pupr, {"action": "rejected", "reason": "bukan drainase",
                                                "suggested_agency": "DLH"})
            triage = await _eventually_assigned(http, ticket_url, watcher, 3)
            assert triage["agency"] == "TRIAGE"
            alerts = await read_topic(dev.kafka, Topics.ESCALATIONS, expect=1, timeout=60,
                                      settle=2.0)
            assert any(a["data"]["clock"] == "routing" and a["ticket_id"] == ticket_id for a in alerts)
            # 3. the desk assigns by hand, recorded with who and why
            chosen = await http.post(f"{ticket_url}/route", headers=desk, json={
                "agency": "DLH", "reason": "sampah menyumbat saluran: DLH angkut"})
            assert chosen.status_code == 202, chosen.text
            final = await _eventually_assigned(http, ticket_url, watcher, 4)
        assert final["agency"] == "DLH"
        assert [a["agency"] for a in final["assignments"]] == ["DLH", "PUPR", "TRIAGE", "DLH"]
        assert final["rejected_by"] == ["DLH", "PUPR"]
        assert "assigned by hand by meja.triase (triage)" in final["routing"]["reason"]
    finally:
        code = stop(dev.process, signal.SIGTERM)
    assert code == 0


async def _act(http: httpx.AsyncClient, ticket_url: str, caller: dict[str, str],
               update: dict[str, str]) -> None:
    done = await http.post(f"{ticket_url}/events", json=update, headers=caller)
    assert done.status_code == 200, done.text


async def _eventually_assigned(http: httpx.AsyncClient, ticket_url: str, caller: dict[str, str],
                               assignment: int) -> dict[str, Any]:
    for _ in range(300):
        ticket: dict[str, Any] = (await http.get(ticket_url, headers=caller)).json()
        if ticket.get("assignment") == assignment:
            return ticket
        await asyncio.sleep(0.2)
    raise AssertionError(f"never reached assignment {assignment}: {ticket}")


async def _eventually_routed(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    for _ in range(100):
        response = await http.get(url)
        if response.status_code == 429:  # the tracking view's rate limit: wait as told
            await asyncio.sleep(float(response.headers["Retry-After"]))
            continue
        view: dict[str, Any] = response.json()
        if view.get("agency"):
            return view
        await asyncio.sleep(0.2)
    raise AssertionError(f"never routed: {view}")
