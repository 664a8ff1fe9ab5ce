"""Two tenants on one deployment, through the three running services: each tenant's channel
submits into its own tenant, each complaint is routed by its own tenant's rulebook and kept by
its own policy, and each tenant's people see only their own tickets, reports and rulebook
(another tenant's ticket answers 404, exactly like a ticket that does not exist)."""

from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.sla.links import ProvinceLinks
from shared.contracts import Topics, utc_now
from shared.kafka import ensure_topics, make_broker
from shared.mongo import Document, insert_new
from shared.settings import Settings
from shared.tenants import load_tenants
from tests.integration.auth_support import Accounts
from tests.integration.sla_support import routed_envelope
from tests.integration.support import eventually, read_topic
from tests.integration.tenant_support import CITY, PROVINCE, two_tenants
from tests.integration.test_privacy import pipeline

pytestmark = pytest.mark.integration

# Routed by the city to EXT_PROVINSI (not its authority), by the province to DIKBUD.
SCHOOL = {"channel": "web", "text": "SMA Negeri 5 memungut uang komite tiap bulan, orang tua keberatan"}
GARBAGE = {"channel": "web",
           "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"}
HOSPITAL = {"channel": "web", "text": "Antrian di RSUD M Yunus berjam-jam, pasien telantar di lorong"}


async def _ticket(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any] | None:
    response = await http.get(url, headers=headers)
    return response.json() if response.status_code == 200 else None


async def _opened(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    ticket: dict[str, Any] | None = await eventually(lambda: _ticket(http, url, headers), timeout=120)
    assert ticket is not None, f"{url} did not open"
    return ticket


async def _submit(http: httpx.AsyncClient, intake: str, body: dict[str, Any],
                  headers: dict[str, str]) -> str:
    response = await http.post(f"{intake}/v1/complaints", json=body, headers=headers)
    assert response.status_code == 202, response.text
    ticket_id: str = response.json()["ticket_id"]
    return ticket_id


async def test_each_tenant_routes_by_its_rulebook_and_sees_only_its_own(
        settings: Settings, accounts: Accounts, tmp_path: Path) -> None:
    settings = two_tenants(settings, tmp_path, linked=False)
    city_web = await accounts.channel("web", tenant=CITY)
    province_web = await accounts.channel("web", tenant=PROVINCE)
    city_boss = await accounts.user("inspektorat.kota", "supervisor", tenant=CITY)
    province_boss = await accounts.user("inspektorat.prov", "supervisor", tenant=PROVINCE)
    city_dlh = await accounts.user("dlh.kota", "officer", "DLH", tenant=CITY)
    province_triage = await accounts.user("triase.prov", "triage", tenant=PROVINCE)
    city_admin = await accounts.user("admin.kota", "admin", tenant=CITY)
    province_admin = await accounts.user("admin.prov", "admin", tenant=PROVINCE)
    async with pipeline(settings) as (intake, sla), httpx.AsyncClient(timeout=60) as http:
        city_school = await _submit(http, intake, SCHOOL, city_web.headers)
        city_garbage = await _submit(http, intake, GARBAGE, city_web.headers)
        province_school = await _submit(http, intake, SCHOOL, province_web.headers)
        province_hospital = await _submit(http, intake, HOSPITAL, province_web.headers)
        city_ids, province_ids = (city_school, city_garbage), (province_school, province_hospital)
        # A channel cannot link its complaint to another tenant's ticket: only forwarding does.
        forged = await http.post(f"{intake}/v1/complaints", headers=province_web.headers, json={
            **HOSPITAL, "linked_to": {"tenant": CITY, "ticket_id": city_garbage}})
        seen = {}
        for ids, boss in ((city_ids, city_boss), (province_ids, province_boss)):
            for ticket_id in ids:
                seen[ticket_id] = await _opened(http, f"{sla}/v1/tickets/{ticket_id}", boss.headers)
        crossed = {
            "city supervisor on province tickets": [
                (await http.get(f"{sla}/v1/tickets/{t}", headers=city_boss.headers)).status_code
                for t in province_ids],
            "province supervisor on city tickets": [
                (await http.get(f"{sla}/v1/tickets/{t}", headers=province_boss.headers)).status_code
                for t in city_ids],
            "city DLH officer acting on a province ticket": [(await http.post(
                f"{sla}/v1/tickets/{province_hospital}/events", headers=city_dlh.headers,
                json={"action": "note", "note": "dicek"})).status_code],
            "province triage routing a city ticket": [(await http.post(
                f"{sla}/v1/tickets/{city_school}/route", headers=province_triage.headers,
                json={"agency": "DIKBUD", "reason": "sekolah"})).status_code],
        }
        inboxes = {who: (await http.get(f"{sla}/v1/tickets", headers=headers,
                                         params={"per_page": 100})).json()
                   for who, headers in (("city", city_boss.headers),
                                        ("province", province_boss.headers))}
        reports = {who: (await http.get(f"{sla}/v1/reports/compliance", headers=headers)).json()
                   for who, headers in (("city", city_boss.headers),
                                        ("province", province_boss.headers))}
        rulebooks = {who: (await http.get(f"{settings_router(settings)}/v1/rulebook",
                                          headers=headers)).json()
                     for who, headers in (("city", city_admin.headers),
                                          ("province", province_admin.headers))}
        province_queue = await read_topic(settings.kafka_bootstrap_servers,
                                          f"{Topics.AGENCY_PREFIX}{PROVINCE}.RSUD_MY", expect=1)
        city_queue = await read_topic(settings.kafka_bootstrap_servers, Topics.agency("DLH"), expect=1)

    assert city_school.startswith("BKL-") and province_school.startswith("PBK-")
    assert forged.status_code == 422
    assert [e["field"] for e in forged.json()["errors"]] == ["linked_to"]
    assert seen[city_school]["agency"] == "EXT_PROVINSI"  # the city's rulebook: not its authority
    assert seen[province_school]["agency"] == "DIKBUD"     # the province's: its own school agency
    assert seen[city_garbage]["agency"] == "DLH" and seen[province_hospital]["agency"] == "RSUD_MY"
    assert {seen[t]["tenant"] for t in city_ids} == {CITY}
    assert {seen[t]["tenant"] for t in province_ids} == {PROVINCE}
    # The province's own policy: its targets, not the city's (demo) ones.
    assert seen[province_hospital]["sla"]["target"] == "provinsi"
    assert seen[city_garbage]["sla"]["target"] == "demo"
    assert crossed == {k: [404] * len(v) for k, v in crossed.items()}, crossed
    # A supervisor's inbox (every agency of its tenant) lists its own tenant's tickets only.
    listed = {who: {t["ticket_id"] for t in page["tickets"]} for who, page in inboxes.items()}
    assert set(city_ids) <= listed["city"] and all(t.startswith("BKL-") for t in listed["city"])
    assert set(province_ids) <= listed["province"]
    assert all(t.startswith("PBK-") for t in listed["province"]), listed
    assert reports["city"]["totals"]["tickets_received"] == 2
    assert reports["province"]["totals"]["tickets_received"] == 2
    assert {r["group"] for r in reports["city"]["rows"]} == {"EXT_PROVINSI", "DLH"}
    assert {r["group"] for r in reports["province"]["rows"]} == {"DIKBUD", "RSUD_MY"}
    assert (rulebooks["city"]["tenant"], rulebooks["province"]["tenant"]) == (CITY, PROVINCE)
    assert rulebooks["city"]["version"] != rulebooks["province"]["version"]
    # Agencies read their own tenant's queue: the province's is named by its tenant.
    assert [(e["tenant"], e["ticket_id"]) for e in province_queue] == [(PROVINCE, province_hospital)]
    assert [(e["tenant"], e["ticket_id"]) for e in city_queue] == [(CITY, city_garbage)]


def settings_router(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.router_port}"


SCHOOL_NAMED = {**SCHOOL, "reporter": {"name": "Rina Marlina", "phone": "0812-3456-7890"}}
SCHOOL_HIDDEN = {"channel": "web", "anonymous": True, "reporter": {"name": "Budi Santoso"},
                 "text": "Saya Budi Santoso, anak saya di SMK Negeri 3 dimintai uang seragam "
                         "Rp 900.000, hubungi 0813-1111-2222"}


async def _city_ticket_at(http: httpx.AsyncClient, url: str, headers: dict[str, str],
                          status: str) -> dict[str, Any] | None:
    ticket = await _ticket(http, url, headers)
    return ticket if ticket is not None and ticket["status"] == status else None


async def test_a_complaint_the_city_forwards_reaches_the_province_and_its_progress_comes_back(
        settings: Settings, accounts: Accounts, mongo: AsyncMongoClient[Document],
        tmp_path: Path) -> None:
    settings = two_tenants(settings, tmp_path)
    bootstrap = settings.kafka_bootstrap_servers
    city_web = await accounts.channel("web", tenant=CITY)
    city_boss = await accounts.user("inspektorat.kota", "supervisor", tenant=CITY)
    province_boss = await accounts.user("inspektorat.prov", "supervisor", tenant=PROVINCE)
    dikbud = await accounts.user("dikbud.prov", "officer", "DIKBUD", tenant=PROVINCE)
    async with pipeline(settings) as (intake, sla), httpx.AsyncClient(timeout=60) as http:
        named = (await http.post(f"{intake}/v1/complaints", json=SCHOOL_NAMED,
                                 headers=city_web.headers)).json()
        hidden = await _submit(http, intake, SCHOOL_HIDDEN, city_web.headers)
        city_id, code = named["ticket_id"], named["tracking_code"]
        forwarded = {e["data"]["linked_to"]["ticket_id"]: e
                     for e in await read_topic(bootstrap, Topics.SUBMITTED, expect=2, timeout=120)}
        received = await read_topic(bootstrap, Topics.RECEIVED, expect=4, timeout=120)
        province_of = {e["data"]["linked_to"]["ticket_id"]: e["ticket_id"]
                       for e in received if e["tenant"] == PROVINCE}
        province_id = province_of[city_id]
        province_url, city_url = f"{sla}/v1/tickets/{province_id}", f"{sla}/v1/tickets/{city_id}"
        province_ticket = await _opened(http, province_url, dikbud.headers)
        for action, note in (("responded", "Kepala sekolah sudah ditegur"),
                             ("resolved", "Pungutan dihentikan dan uang dikembalikan")):
            done = await http.post(f"{province_url}/events", headers=dikbud.headers,
                                   json={"action": action, "note": note})
            assert done.status_code == 200, done.text
        city_ticket = await eventually(
            lambda: _city_ticket_at(http, city_url, city_boss.headers, "resolved"), timeout=120)

        async def tracked_resolved() -> dict[str, Any] | None:
            # intake's tracking view follows the ticket's changes a moment later
            view: dict[str, Any] = (await http.get(f"{intake}/v1/complaints/{city_id}",
                                                   params={"code": code})).json()
            return view if view.get("status") == "resolved" else None

        tracking = await eventually(tracked_resolved, timeout=60)
        # A sweep that died after publishing, before moving its cursor: the same steps again.
        cursors = mongo[settings.mongodb_database]["link_cursors"]
        await cursors.update_one({"_id": province_id}, {"$set": {"forwarded": 0, "state": "open"}})
        assert await eventually(lambda: cursors.find_one({"_id": province_id, "state": "closed"}),
                                timeout=60)
        again = await _ticket(http, city_url, city_boss.headers)
        crossed = [(await http.get(province_url, headers=city_boss.headers)).status_code,
                   (await http.get(city_url, headers=province_boss.headers)).status_code]
        letters = await read_topic(bootstrap, Topics.DEADLETTER, expect=1, timeout=3)

    assert set(forwarded) == {city_id, hidden}
    # What crosses: the complaint as the city's agency got it.
    named_event, hidden_event = forwarded[city_id], forwarded[hidden]
    assert named_event["tenant"] == hidden_event["tenant"] == PROVINCE
    assert named_event["data"]["reporter"]["name"] == "Rina Marlina"
    assert hidden_event["data"]["reporter"] is None and hidden_event["data"]["anonymous"] is True
    assert "Budi" not in hidden_event["data"]["text"] and "1111" not in hidden_event["data"]["text"]
    assert province_id.startswith("PBK-")
    assert province_ticket["agency"] == "DIKBUD"  # routed by the province's own rulebook
    assert province_ticket["linked_to"] == {"tenant": CITY, "ticket_id": city_id}
    # What comes back: the province's steps on the city's ticket, in order.
    steps = [(h["action"], h["actor"]) for h in city_ticket["history"]]
    actor = f"{PROVINCE} ({province_id})"
    assert steps == [("assigned", "router"), ("acknowledged", actor), ("responded", actor),
                     ("resolved", actor)]
    assert province_id in city_ticket["history"][1]["note"]
    assert city_ticket["history"][3]["note"].endswith("Pungutan dihentikan dan uang dikembalikan")
    assert tracking["status"] == "resolved"
    assert "Kepala sekolah sudah ditegur" in tracking["history"][2]["note"]
    assert again is not None and len(again["history"]) == len(city_ticket["history"])
    assert crossed == [404, 404]
    assert letters == []  # nothing was refused, the repeated steps included


async def test_a_forward_stored_by_a_process_that_died_is_sent_once_by_another(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path) -> None:
    settings = two_tenants(settings, tmp_path)
    tenants, db = load_tenants(settings), mongo[settings.mongodb_database]
    await ensure_topics(settings, [Topics.SUBMITTED])
    decision = routed_envelope("BKL-261201-AAAAAAAA", utc_now(), agency="EXT_PROVINSI")
    broker = make_broker(settings, "links-test")
    await broker.connect()
    try:
        # What a replica that died right after storing the forward leaves: stored, leased to
        # it, never sent.
        died = ProvinceLinks(settings.model_copy(update={"instance_id": "died"}), tenants, db,
                             broker, lambda tenant, code: code)
        await insert_new(died.forwards, [died._forward(decision, utc_now())])
        survivor = ProvinceLinks(settings, tenants, db, broker, lambda tenant, code: code)
        await survivor.ensure_indexes()
        await survivor.routed([decision])  # the decision redelivered: nothing new to store
        assert await eventually(survivor.relay.sweep, timeout=60)  # once the lease ran out
        await survivor.routed([decision])
        await survivor.sweep()
        sent = await read_topic(settings.kafka_bootstrap_servers, Topics.SUBMITTED, expect=1,
                                settle=3.0)
    finally:
        await broker.stop()
    assert [(e["tenant"], e["data"]["linked_to"]) for e in sent] == [
        (PROVINCE, {"tenant": CITY, "ticket_id": "BKL-261201-AAAAAAAA"})]
    assert await db["forwards"].count_documents({}) == 1
