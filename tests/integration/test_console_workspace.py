"""The agency workspace beyond the inbox's first slice, against intake and the SLA API on real
ports: every page in English when the browser or the switch asks (dates still in WIB), picking
up a ticket (recorded in history and the audit log, shown in the inbox, the "mine" filter), and
reply templates on the ticket's forms."""

import asyncio
import re

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Document
from shared.settings import Settings
from tests.integration.support import eventually
from tests.integration.test_console import Console, _csrf, _sign_in, console

pytestmark = pytest.mark.integration
_ = console  # the fixture, shared with test_console.py

INDONESIAN_LABELS = ("Kotak masuk", "Tenggat", "Riwayat", "Tindakan", "Pelapor", "Lokasi",
                     "Mengapa tiket ini ke sini", "Keluar", "Terima tiket", "Selesaikan")


async def _listed(http: httpx.AsyncClient, ticket_id: str, **params: str) -> bool:
    return ticket_id in (await http.get("/inbox", params=params)).text


async def test_english_for_a_browser_that_asks_or_after_the_switch(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        indonesian = await http.get("/login")
        assert '<html lang="id">' in indonesian.text and "Masuk ke ruang kerja" in indonesian.text
        english = await http.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert '<html lang="en">' in english.text and "Sign in to the workspace" in english.text
        assert 'href="/language/en?next=%2Flogin"' in indonesian.text  # the switch on the page

        switched = await http.get("/language/en", params={"next": "/inbox?q=pasar"})
        assert switched.status_code == 303 and switched.headers["location"] == "/inbox?q=pasar"
        assert http.cookies["disposisi_lang"] == "en"
        wrong = await _sign_in(http, "dlh.andi", "not-the-password")
        assert "Wrong username or password" in wrong.text
        await _sign_in(http, "dlh.andi", console.officer.password)
        assert await eventually(lambda: _listed(http, "T-DLH"))
        inbox = (await http.get("/inbox")).text
        assert "Inbox" in inbox and "open tickets" in inbox and "Nearest deadline first" not in inbox
        ticket = (await http.get("/tickets/T-DLH")).text
        assert "Why this ticket came here" in ticket and "Acknowledge ticket" in ticket
        assert re.search(r"\d{1,2} (January|February|March|April|May|June|July|August|September"
                         r"|October|November|December) \d{4} \d\d\.\d\d WIB", ticket)
        shown = re.sub(r"<[^>]+>", " ", ticket)
        left = [label for label in INDONESIAN_LABELS if re.search(rf"\b{label}\b", shown)]
        assert not left, f"not translated on the ticket page: {left}"
        # The live fragments too (a generous bound only so that a failure cannot hang).
        async with asyncio.timeout(120), http.stream("GET", "/inbox/live") as live:
            async for line in live.aiter_lines():
                assert "tiket terbuka" not in line
                if line.startswith("data:") and "open tickets" in line:
                    break

        back = await http.get("/language/id", params={"next": "/tickets/T-DLH"},
                              follow_redirects=True)
        assert "Mengapa tiket ini ke sini" in back.text


@pytest.mark.parametrize("elsewhere", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
async def test_the_switch_never_sends_the_browser_to_another_site(console: Console,
                                                                  elsewhere: str) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        answer = await http.get("/language/en", params={"next": elsewhere})
        assert answer.status_code == 303 and answer.headers["location"] == "/"


async def test_an_officer_picks_up_a_ticket_shown_with_their_name_and_audited(
        console: Console, settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    colleague = await console.accounts.user("dlh.budi", "officer", "DLH")
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as andi, \
            httpx.AsyncClient(base_url=console.url, timeout=30) as budi:
        await _sign_in(andi, "dlh.andi", console.officer.password)
        await _sign_in(budi, "dlh.budi", colleague.password)
        assert await eventually(lambda: _listed(andi, "T-DLH"))
        page = await andi.get("/tickets/T-DLH")
        assert "Belum diambil" in page.text and 'id="form-picked_up"' in page.text
        for attempt in range(2):  # a double click is one pick-up (the form's nonce)
            picked = await andi.post("/tickets/T-DLH/actions", data={
                "csrf_token": _csrf(page.text), "action": "picked_up", "nonce": "p-1"})
            assert picked.status_code == 303, (attempt, picked.text)
        page = await andi.get("/tickets/T-DLH")
        assert re.search(r'id="assignee">dlh\.andi \(officer, DLH\)<', page.text)
        assert 'id="form-picked_up"' not in page.text  # already mine
        assert page.text.count("Diambil petugas") == 1
        row = re.search(r'<tr data-ticket="T-DLH">.*?</tr>', (await andi.get("/inbox")).text, re.S)
        assert row and re.search(r'class="assignee">dlh\.andi<', row.group(0))
        assert await _listed(andi, "T-DLH", mine="1")
        assert not await _listed(budi, "T-DLH", mine="1")
        assert await _listed(budi, "T-DLH")
        assert 'id="form-picked_up"' in (await budi.get("/tickets/T-DLH")).text  # may take over

    audit = await mongo[settings.mongodb_database]["audit_log"].find(
        {"ticket_id": "T-DLH", "action": "update:picked_up"}).to_list(None)
    assert len(audit) == 1
    assert audit[0]["actor"]["name"] == "dlh.andi"
    assert audit[0]["after"] == {"assignee": "dlh.andi (officer, DLH)"}
    triage = await console.accounts.user("desk.tina", "triage")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.sla_port}", timeout=30) as api:
        refused = await api.post("/v1/tickets/T-DLH/events", json={"action": "picked_up"},
                                 headers=triage.headers)
        assert refused.status_code == 403


async def test_an_officer_picks_a_reply_template_of_the_agency(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        await _sign_in(http, "dlh.andi", console.officer.password)
        assert await eventually(lambda: _listed(http, "T-DLH"))
        page = await http.get("/tickets/T-DLH")
        asking = re.search(r'<select id="needs_info-template".*?</select>', page.text, re.S)
        assert asking and "Minta foto" in asking.group(0) and "Sampah sudah diangkut" not in asking.group(0)
        resolving = re.search(r'<select id="resolved-template".*?</select>', page.text, re.S)
        assert resolving and "Sampah sudah diangkut" in resolving.group(0)
        assert 'data-fills="needs_info-note"' in page.text
        assert (await http.get("/static/replies.js")).status_code == 200
        unknown = await http.post("/tickets/T-DLH/actions", data={
            "csrf_token": _csrf(page.text), "action": "needs_info", "nonce": "t-0",
            "template": "Tidak ada"})
        assert unknown.status_code == 400 and "templat tidak dikenal" in unknown.text
        # Without the page's script the chosen template's text is what is sent.
        asked = await http.post("/tickets/T-DLH/actions", data={
            "csrf_token": _csrf(page.text), "action": "needs_info", "nonce": "t-1",
            "template": "Minta foto", "note": ""})
        assert asked.status_code == 303, asked.text
        shown = (await http.get("/tickets/T-DLH")).text
        assert "Mohon kirimkan foto kondisi di lokasi" in shown
