"""Privacy through the running pipeline: four complaints (anonymous, confidential, both,
neither), each carrying ten personal strings, go through intake, router and SLA; what an
agency, the SLA's ticket view and the public tracking view show of the hidden ones holds none
of them, and the reporter never leaves intake for a hidden complaint."""

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest

from services.intake.app import create_app as intake_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from shared.contracts import Topics
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.support import eventually, read_topic, serving

pytestmark = pytest.mark.integration

REPORTER = {"name": "Siti Aminah", "phone": "0812-3456-7890", "email": "siti.aminah@example.com"}
# Ten personal strings, each written the way citizens write them.
PERSONAL = [
    "Siti Aminah",
    "1771034502850003",  # NIK
    "1771 0345 0285 0004",  # KK, grouped
    "O812-3456-7890",  # letter O for the zero
    "0813.9876.5432",
    "+62 821-1111-2222",
    "siti[at]example.com",
    "siti.aminah@example.com",
    "aminah (at) contoh (dot) co (dot) id",
    "Aminah",
]
TEXT = ("Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat. "
        "Saya Siti Aminah, NIK 1771034502850003, KK 1771 0345 0285 0004. Hubungi O812-3456-7890, "
        "0813.9876.5432 atau +62 821-1111-2222, email siti[at]example.com, "
        "siti.aminah@example.com atau aminah (at) contoh (dot) co (dot) id. "
        "Tetangga memanggil saya Aminah. Sudah dilaporkan tanggal 28-11-2026 pukul 10.30, RT 03/RW 05.")
TITLE = "Sampah menumpuk - laporan Siti Aminah"
# What must survive masking: agencies act on dates, times and addresses.
KEPT = ["28-11-2026", "10.30", "RT 03/RW 05", "Jl. Suprapto"]
KINDS = {"anonymous": {"anonymous": True}, "confidential": {"confidential": True},
         "both": {"anonymous": True, "confidential": True}, "neither": {}}


def leaks(view: Any) -> list[str]:
    blob = json.dumps(view, ensure_ascii=False, default=str).lower()
    return [s for s in PERSONAL if s.lower() in blob]


@asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[tuple[str, str]]:
    async with AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings), settings.intake_port))
        await stack.enter_async_context(serving(router_app(settings), settings.router_port))
        sla = await stack.enter_async_context(serving(sla_app(settings), settings.sla_port))
        yield intake, sla


async def test_hidden_complaints_reach_no_agency_or_public_view_with_personal_data(
        settings: Settings, accounts: Accounts) -> None:
    web = await accounts.channel("web")
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    bootstrap = settings.kafka_bootstrap_servers
    async with pipeline(settings) as (intake, sla), httpx.AsyncClient() as http:
        posted: dict[str, dict[str, Any]] = {}
        for kind, flags in KINDS.items():
            response = await http.post(f"{intake}/v1/complaints", headers=web.headers, json={
                "channel": "web", "title": TITLE, "text": TEXT, "reporter": REPORTER, **flags})
            assert response.status_code == 202, response.text
            posted[kind] = response.json()
        ids = {kind: body["ticket_id"] for kind, body in posted.items()}
        received = {e["ticket_id"]: e["data"]
                    for e in await read_topic(bootstrap, Topics.RECEIVED, expect=4)}
        assigned = {e["ticket_id"]: e["data"]
                    for e in await read_topic(bootstrap, Topics.agency("DLH"), expect=4)}

        async def ticket_views() -> dict[str, Any] | None:
            views = {kind: await http.get(f"{sla}/v1/tickets/{ticket_id}", headers=officer.headers)
                     for kind, ticket_id in ids.items()}
            if any(v.status_code != 200 for v in views.values()):
                return None
            return {kind: v.json() for kind, v in views.items()}

        tickets = await eventually(ticket_views, timeout=60)
        assert tickets is not None, "the SLA opened every ticket"
        public = {kind: (await http.get(f"{intake}/v1/complaints/{ticket_id}")).json()
                  for kind, ticket_id in ids.items()}
        with_code = {kind: (await http.get(
            f"{intake}/v1/complaints/{ids[kind]}",
            headers={"X-Tracking-Code": posted[kind]["tracking_code"]})).json()
            for kind in KINDS}

    hidden = ["anonymous", "confidential", "both"]
    assert {k: leaks(assigned[ids[k]]) for k in hidden} == {k: [] for k in hidden}
    assert {k: leaks(tickets[k]) for k in hidden} == {k: [] for k in hidden}
    assert {k: leaks(received[ids[k]]) for k in hidden} == {k: [] for k in hidden}
    assert all(received[ids[k]]["reporter"] is None for k in hidden)
    # Without the tracking code nobody reads the complaint, hidden or not.
    assert {k: leaks(public[k]) for k in KINDS} == {k: [] for k in KINDS}
    assert all(public[k]["text"] is None and public[k]["title"] is None for k in KINDS)
    # With it, the citizen reads their complaint as the agency does.
    assert {k: leaks(with_code[k]) for k in hidden} == {k: [] for k in hidden}
    assert all("reporter" not in view for view in [*public.values(), *with_code.values()])
    for kind in hidden:
        assert all(kept in assigned[ids[kind]]["text"] for kept in KEPT), assigned[ids[kind]]["text"]
        assert assigned[ids[kind]]["reporter"] is None
        assert assigned[ids[kind]]["title"] == "Sampah menumpuk - laporan [nama disembunyikan]"
    # A complaint that hides nothing reaches its agency as written, reporter included.
    assert leaks(assigned[ids["neither"]]) == PERSONAL
    assert assigned[ids["neither"]]["reporter"]["name"] == "Siti Aminah"
    assert with_code["neither"]["text"] == TEXT
