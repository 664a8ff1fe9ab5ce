"""The triage desk's page and the supervisor's dashboard against the SLA API and the router
on real ports: who may open which page (the APIs' permission table), the TRIAGE queue with
the router's candidates and the bounced tickets' rejections, an assignment with one choice
that the router carries out, the review list of decisions the second opinion disputed (kept
or re-routed by the desk, a re-route stored as a labelled example), escalations arriving live
and acknowledged, the compliance table, chart and CSV, the backlog and the drill-down to an
agency's overdue tickets."""

import csv
import io
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.console.app import create_app as console_app
from services.router.app import create_app as router_app
from services.router.label_store import LABELS
from services.sla.app import create_app as sla_app
from shared.audit_store import LOG as AUDIT_LOG
from shared.contracts import Topics, utc_now
from shared.embedded import free_port
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts, Caller
from tests.integration.sla_support import routed
from tests.integration.support import eventually, produce, serving

pytestmark = pytest.mark.integration

CANDIDATES = [{"agency": "DLH", "score": 1.2, "rule_ids": ["dlh.sampah"]},
              {"agency": "PUPR", "score": 1.1, "rule_ids": ["pupr.drainase"]}]
CLOSE_CALL = {"rulebook_version": "test", "matched_terms": ["got"], "score": 1.2,
              "confidence": 0.1, "candidates": CANDIDATES,
              "reason": "too close to call: DLH 1.2 against PUPR 1.1: the complaint desk decides"}


@dataclass
class Desks:
    url: str
    sla: str
    people: dict[str, Caller]


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "every form carries the CSRF token"
    return found.group(1)


@pytest.fixture
async def desks(settings: Settings, accounts: Accounts) -> AsyncIterator[Desks]:
    settings = settings.model_copy(update={
        "console_port": free_port(), "reroute_max_bounces": 1,  # one rejection: triage decides
        "console_sla_url": f"http://127.0.0.1:{settings.sla_port}",
        "console_intake_url": f"http://127.0.0.1:{settings.intake_port}",
        "console_live_poll_seconds": 0.5})
    people = {"officer": await accounts.user("dlh.andi", "officer", "DLH"),
              "head": await accounts.user("dlh.kepala", "agency_head", "DLH"),
              "triage": await accounts.user("meja.triase", "triage"),
              "supervisor": await accounts.user("inspektorat", "supervisor")}
    async with AsyncExitStack() as stack:
        sla = await stack.enter_async_context(serving(sla_app(settings), settings.sla_port))
        await stack.enter_async_context(serving(router_app(settings), settings.router_port))
        url = await stack.enter_async_context(serving(console_app(settings), settings.console_port))
        yield Desks(url, sla, people)


async def _sign_in(http: httpx.AsyncClient, who: Caller) -> httpx.Response:
    page = await http.get("/login")
    return await http.post("/login", data={"csrf_token": _csrf(page.text),
                                           "username": who.name, "password": who.password})


async def _opened(desks: Desks, ticket_id: str) -> None:
    async def found() -> bool:
        async with httpx.AsyncClient(base_url=desks.sla, timeout=30) as sla:
            answer = await sla.get(f"/v1/tickets/{ticket_id}",
                                   headers=desks.people["supervisor"].headers)
            return answer.status_code == 200
    assert await eventually(found, timeout=60)


async def test_the_triage_desk_assigns_with_one_choice_and_sees_bounced_tickets(
        desks: Desks, settings: Settings) -> None:
    now = utc_now()
    await produce(settings.kafka_bootstrap_servers, Topics.ROUTED, [
        routed("T-CLOSE", now, agency="TRIAGE", routing=CLOSE_CALL, category=None,
               text="Got di depan pasar mampet dan sampah menumpuk"),
        routed("T-BOUNCE", now, agency="DLH", text="Lampu jalan padam")])
    await _opened(desks, "T-BOUNCE")
    async with httpx.AsyncClient(base_url=desks.sla, timeout=30) as sla:
        rejected = await sla.post("/v1/tickets/T-BOUNCE/events", headers=desks.people["officer"].headers,
                                  json={"action": "rejected", "reason": "Lampu jalan urusan Dishub",
                                        "suggested_agency": "DISHUB"})
        assert rejected.status_code == 200, rejected.text
    async with httpx.AsyncClient(base_url=desks.url, timeout=30) as http:
        signed = await _sign_in(http, desks.people["triage"])
        assert signed.status_code == 303 and signed.headers["location"] == "/triage"

        async def queued() -> str | None:
            page = (await http.get("/triage")).text
            return page if "T-CLOSE" in page and "T-BOUNCE" in page else None
        page = await eventually(queued, timeout=60)  # the router bounces T-BOUNCE to the desk
        fresh, bounced = page.split('id="h-bounced"')
        assert 'value="DLH">Teruskan ke DLH' in fresh and "pupr.drainase" in fresh
        assert "T-BOUNCE" in bounced and "Lampu jalan urusan Dishub" in bounced
        assert "menyarankan DISHUB" in bounced and 'sse-connect="/triage/live' in page
        async with http.stream("GET", "/triage/live") as live:
            assert live.headers["content-type"].startswith("text/event-stream")
            lines = live.aiter_lines()
            assert "event: queue" in [await anext(lines) for _ in range(2)]

        unsigned = await http.post("/triage/T-CLOSE/assign", data={"agency": "DLH"})
        assert unsigned.status_code == 403
        empty = await http.post("/triage/T-CLOSE/assign", data={"csrf_token": _csrf(page), "agency": ""})
        assert empty.status_code == 400 and 'href="#other-T-CLOSE"' in empty.text
        chosen = await http.post("/triage/T-CLOSE/assign", data={
            "csrf_token": _csrf(page), "agency": "DLH", "source": "candidate"})
        assert chosen.status_code == 303, chosen.text

        async def left_the_queue() -> bool:
            return "T-CLOSE" not in (await http.get("/triage")).text
        assert await eventually(left_the_queue, timeout=60)
    async with httpx.AsyncClient(base_url=desks.sla, timeout=30) as sla:
        ticket = (await sla.get("/v1/tickets/T-CLOSE", headers=desks.people["officer"].headers)).json()
        assert ticket["agency"] == "DLH"
        assert "dipilih meja triase dari kandidat router" in ticket["routing"]["reason"]
        assert "meja.triase" in ticket["routing"]["reason"]


DISPUTED = {"rulebook_version": "test", "rule_ids": ["dlh.sampah"], "matched_terms": ["sampah"],
            "score": 2.4, "confidence": 0.8,
            "reason": "sampah (dlh.sampah); second opinion disputes: PERKIM 0.91 (rules' DLH "
                      "0.04): for the desk to review",
            "second_opinion": {"agency": "PERKIM", "probability": 0.91,
                               "rules_choice_probability": 0.04, "verdict": "disputes",
                               "review": True, "model_version": "m-test"}}


async def test_the_desk_reviews_decisions_the_second_opinion_disputed(
        desks: Desks, settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    now = utc_now()
    text = "Daun kering dan sampah ranting di taman tidak disapu petugas taman"
    await produce(settings.kafka_bootstrap_servers, Topics.ROUTED, [
        routed(ticket_id, now, agency="DLH", routing=DISPUTED, text=text)
        for ticket_id in ("T-KEEP", "T-MOVE")])
    await _opened(desks, "T-MOVE")
    async with httpx.AsyncClient(base_url=desks.url, timeout=30) as http:
        await _sign_in(http, desks.people["officer"])
        assert (await http.get("/triage/review")).status_code == 403  # not the officer's page
    async with httpx.AsyncClient(base_url=desks.url, timeout=30) as http:
        await _sign_in(http, desks.people["triage"])

        async def listed() -> str | None:
            page = (await http.get("/triage/review")).text
            return page if "T-KEEP" in page and "T-MOVE" in page else None
        page = await eventually(listed, timeout=60)
        assert 'href="/triage/review" aria-current="page"' in page
        card = page.split('data-ticket="T-MOVE"')[1].split("</article>")[0]
        assert "Keputusan aturan:</strong> DLH" in card and "dlh.sampah" in card
        assert "Pendapat kedua (model statistik):" in card and "Perlu ditinjau meja triase." in card
        assert "Pilihan model: PERKIM" in card and "peluang 91%" in card
        assert 'value="PERKIM">Alihkan ke pilihan model (PERKIM)' in card
        ticket_page = await http.get("/tickets/T-KEEP")  # the desk may open a disputed ticket
        assert ticket_page.status_code == 200 and "Pendapat kedua (model statistik):" in ticket_page.text

        kept = await http.post("/triage/review/T-KEEP/accept", data={"csrf_token": _csrf(page)})
        assert kept.status_code == 303 and kept.headers["location"] == "/triage/review"
        moved = await http.post("/triage/T-MOVE/assign", data={
            "csrf_token": _csrf(page), "agency": "PERKIM", "source": "review", "back": "review"})
        assert moved.status_code == 303 and moved.headers["location"] == "/triage/review"
        again = await http.post("/triage/review/T-KEEP/accept", data={"csrf_token": _csrf(page)})
        assert again.status_code == 303  # the same acceptance: nothing written twice

        async def emptied() -> bool:
            shown = (await http.get("/triage/review")).text
            return "T-KEEP" not in shown and "T-MOVE" not in shown
        assert await eventually(emptied, timeout=60)
        moved_on = await http.post("/triage/review/T-MOVE/accept", data={"csrf_token": _csrf(page)})
        assert moved_on.status_code == 400 and "tidak dapat diterima" in moved_on.text
    async with httpx.AsyncClient(base_url=desks.sla, timeout=30) as sla:
        keep = (await sla.get("/v1/tickets/T-KEEP", headers=desks.people["supervisor"].headers)).json()
        assert keep["agency"] == "DLH" and keep["history"][-1]["action"] == "review_accepted"
        assert "meja.triase" in keep["history"][-1]["actor"]
        move = (await sla.get("/v1/tickets/T-MOVE", headers=desks.people["supervisor"].headers)).json()
        assert move["agency"] == "PERKIM" and "setelah meninjau" in move["routing"]["reason"]
        # settled, the tickets are their agencies' again: the desk no longer sees them
        hidden = await sla.get("/v1/tickets/T-KEEP", headers=desks.people["triage"].headers)
        assert hidden.status_code == 404
    audited = await mongo[settings.mongodb_database][AUDIT_LOG].find(
        {"ticket_id": "T-KEEP", "action": "review_accepted"}).to_list()
    assert len(audited) == 1 and audited[0]["actor"]["name"] == "meja.triase"
    label = await mongo[settings.mongodb_database][LABELS].find_one({"ticket_id": "T-MOVE"})
    assert label is not None and (label["kind"], label["agency"], label["routed"]["agency"]) == (
        "reroute", "PERKIM", "DLH")
    assert label["routed"]["rule_ids"] == ["dlh.sampah"]


async def test_each_role_opens_only_the_pages_its_api_permissions_allow(desks: Desks) -> None:
    refused = {"officer": ["/triage", "/triage/live", "/dashboard", "/dashboard/live",
                           "/dashboard/compliance.csv", "/dashboard/agencies/DLH"],
               "triage": ["/dashboard", "/dashboard/agencies/DLH"],
               "supervisor": ["/triage"], "head": ["/triage", "/dashboard/agencies/PDAM"]}
    for role, paths in refused.items():
        async with httpx.AsyncClient(base_url=desks.url, timeout=30) as http:
            assert (await _sign_in(http, desks.people[role])).status_code == 303
            for path in paths:
                answer = await http.get(path)
                assert answer.status_code == 403, (role, path, answer.status_code)
            if role == "officer":
                page = await http.get("/inbox")
                assert 'href="/triage"' not in page.text and 'href="/dashboard"' not in page.text
                posted = await http.post("/dashboard/escalations/x/acknowledge",
                                         data={"csrf_token": _csrf(page.text)})
                assert posted.status_code == 403
    async with httpx.AsyncClient(base_url=desks.url, timeout=30) as http:
        assert (await http.get("/dashboard")).headers["location"] == "/login"
        assert (await http.get("/dashboard/live")).status_code == 401
        await _sign_in(http, desks.people["head"])  # an agency head: its own agency, no button
        own = await http.get("/dashboard")
        assert own.status_code == 200 and "Kepatuhan per instansi" in own.text
        assert "/acknowledge" not in own.text
        assert (await http.get("/dashboard/agencies/DLH")).status_code == 200


async def test_the_supervisor_sees_escalations_live_acknowledges_and_reads_compliance(
        desks: Desks, settings: Settings) -> None:
    await produce(settings.kafka_bootstrap_servers, Topics.ROUTED, [
        routed("T-LATE", utc_now(), agency="DLH", text="Sampah numpuk di pasar",
               location={"kelurahan": "Padang Jati"})])
    async with httpx.AsyncClient(base_url=desks.url, timeout=30) as http:
        signed = await _sign_in(http, desks.people["supervisor"])
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
        async with http.stream("GET", "/dashboard/live") as live:  # the demo policy: 3.75 s
            async for line in live.aiter_lines():
                if line.startswith("data:") and 'data-escalation="' in line and "T-LATE" in line:
                    break
        page = await http.get("/dashboard")
        escalation_id = re.search(r'data-escalation="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        forged = await http.post(f"/dashboard/escalations/{escalation_id}/acknowledge",
                                 data={"csrf_token": "x" * 32})
        assert forged.status_code == 403
        acked = await http.post(f"/dashboard/escalations/{escalation_id}/acknowledge",
                                data={"csrf_token": _csrf(page.text)})
        assert acked.status_code == 303
        shown = await http.get("/dashboard")
        assert "pemberitahuan ulang untuk langkah ini dihentikan" in shown.text
        row = shown.text.split(f'data-escalation="{escalation_id}"')[1].split("</tr>")[0]
        assert "Diterima" in row and "inspektorat" in row
        async with httpx.AsyncClient(base_url=desks.sla, timeout=30) as sla:
            listed = (await sla.get("/v1/escalations", params={"state": "acknowledged"},
                                    headers=desks.people["supervisor"].headers)).json()
            assert escalation_id in [e["escalation_id"] for e in listed["escalations"]]

        # Compliance: the table, the chart over the zones, the backlog, the CSV export.
        assert 'id="compliance"' in shown.text and 'data-group="DLH"' in shown.text
        assert shown.text.count("<svg") == 2 and 'class="band band-red"' in shown.text
        assert ">DLH</text>" in shown.text and 'id="backlog"' in shown.text
        exported = await http.get("/dashboard/compliance.csv")
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(exported.text)))
        assert rows[0][0] == "agency" and "DLH" in [r[0] for r in rows[1:]]

        # Drill-down: the agency's overdue tickets, and the same list as CSV (no complaint text).
        async def overdue() -> bool:
            return 'data-ticket="T-LATE"' in (await http.get("/dashboard/agencies/DLH")).text
        assert await eventually(overdue, timeout=60)
        listed_csv = await http.get("/dashboard/agencies/DLH/overdue.csv")
        assert listed_csv.headers["content-type"].startswith("text/csv")
        [header, late] = list(csv.reader(io.StringIO(listed_csv.text)))
        assert header[0] == "ticket_id" and late[0] == "T-LATE" and late[5] == "Padang Jati"
        assert "+07:00" in late[7] and "numpuk di pasar" not in listed_csv.text
        assert (await http.get("/dashboard/agencies/dlh")).status_code == 403
