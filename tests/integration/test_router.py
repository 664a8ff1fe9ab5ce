"""Router against the embedded broker: decisions on two topics, identity never leaks to an
agency queue, redelivery yields the same event ids, poison goes to dead letters."""

import json
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from services.router.app import create_app
from shared.contracts import Topics
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.support import produce, read_topic, serving

pytestmark = pytest.mark.integration

RULEBOOK = """
tenant: kota-bengkulu
fallback: TRIAGE
urgent_phrases: [kebakaran]
agencies:
  - {code: TRIAGE, name: Meja Pengaduan, authority: internal}
  - code: DLH
    name: Dinas Lingkungan Hidup
    authority: kota
    rules: [{id: dlh.sampah, any: [sampah, tps], category: Sampah}]
  - code: DAMKAR
    name: Dinas Pemadam Kebakaran
    authority: kota
    rules: [{id: damkar.api, any: [kebakaran, sarang tawon]}]
"""


def received(ticket_id: str, text: str, **extra: object) -> bytes:
    data = {"ticket_id": ticket_id, "channel": "whatsapp", "text": text,
            "submitted_at": "2026-11-27T03:00:00Z", **extra}
    return json.dumps({"id": f"evt-{ticket_id}", "type": "complaint.received",
                       "tenant": "kota-bengkulu", "ticket_id": ticket_id, "data": data}).encode()


@pytest.fixture
def router_settings(settings: Settings, tmp_path: Path) -> Settings:
    rulebook = tmp_path / "rulebook.yaml"
    rulebook.write_text(RULEBOOK)
    return settings.model_copy(update={"rulebook": rulebook})


async def test_routes_to_agency_queue_without_hidden_identity(router_settings: Settings) -> None:
    bootstrap = router_settings.kafka_bootstrap_servers
    reporter = {"name": "Budi", "phone": "+6281234567890"}
    async with serving(create_app(router_settings), router_settings.router_port):
        await produce(bootstrap, Topics.RECEIVED, [
            ("T-1", received("T-1", "Sampah di TPS belum diangkut", reporter=reporter)),
            ("T-2", received("T-2", "Sampah numpuk, hubungi saya 0812-3456-7890 ya",
                             reporter=reporter, anonymous=True, title="Sampah - Budi 081234567890")),
            ("T-3", received("T-3", "Ada kebakaran di pasar", reporter=reporter, confidential=True)),
            ("T-4", received("T-4", "Tolong ditindaklanjuti segera pak")),
            ("T-5", b"\xff\xfe not json"),
        ])
        routed = await read_topic(bootstrap, Topics.ROUTED, expect=4)
        dlh = await read_topic(bootstrap, Topics.agency("DLH"), expect=2)
        damkar = await read_topic(bootstrap, Topics.agency("DAMKAR"), expect=1)
        triage = await read_topic(bootstrap, Topics.agency("TRIAGE"), expect=1)
        [letter] = await read_topic(bootstrap, Topics.DEADLETTER, expect=1)

    by_ticket = {e["ticket_id"]: e["data"] for e in routed}
    assert {t: d["agency"] for t, d in by_ticket.items()} == {
        "T-1": "DLH", "T-2": "DLH", "T-3": "DAMKAR", "T-4": "TRIAGE"}
    assert by_ticket["T-1"]["routing"]["rule_ids"] == ["dlh.sampah"]
    assert by_ticket["T-3"]["priority"] == "urgent"
    assigned = {e["ticket_id"]: e["data"] for e in dlh + damkar + triage}
    assert assigned["T-1"]["reporter"]["name"] == "Budi"
    assert assigned["T-2"]["reporter"] is None
    assert "0812" not in assigned["T-2"]["text"]
    assert assigned["T-2"]["title"] == "Sampah - [nama disembunyikan] [nomor disembunyikan]"
    assert assigned["T-3"]["reporter"] is None
    assert all(e["type"] == "ticket.assigned" for e in dlh + damkar + triage)
    assert letter["data"]["source_topic"] == Topics.RECEIVED
    assert letter["data"]["service"] == "router"


async def test_redelivered_complaint_gets_the_same_event_ids(router_settings: Settings) -> None:
    bootstrap = router_settings.kafka_bootstrap_servers
    async with serving(create_app(router_settings), router_settings.router_port):
        message = received("T-9", "Sampah di TPS belum diangkut")
        await produce(bootstrap, Topics.RECEIVED, [("T-9", message), ("T-9", message)])
        routed = await read_topic(bootstrap, Topics.ROUTED, expect=2)
    assert len(routed) == 2
    assert routed[0]["id"] == routed[1]["id"], "consumers dedupe on the id: it must be stable"


def reroute_request(ticket_id: str, request: Mapping[str, object], *, agency: str,
                    rejected_by: list[str], reporter: dict[str, str] | None = None) -> bytes:
    ticket = {"agency": agency, "agency_name": agency, "authority": "kota", "priority": "normal",
              "routing": {"rulebook_version": "v0"}, "channel": "whatsapp",
              "text": "Sampah di TPS belum diangkut seminggu", "reporter": reporter,
              "submitted_at": "2026-11-27T03:00:00Z", "assignment": 1, "rejected_by": rejected_by}
    return json.dumps({"id": f"rr-{ticket_id}", "type": "ticket.reroute_requested",
                       "tenant": "kota-bengkulu", "ticket_id": ticket_id,
                       "data": {"ticket": ticket, **request}}).encode()


async def test_rejection_reroutes_withdraws_and_alerts_after_two_bounces(
        router_settings: Settings) -> None:
    bootstrap = router_settings.kafka_bootstrap_servers
    rejected = {"cause": "rejected", "actor": "petugas DLH", "reason": "bukan tupoksi kami"}
    async with serving(create_app(router_settings), router_settings.router_port):
        await produce(bootstrap, Topics.REROUTE, [
            ("R-1", reroute_request("R-1", {**rejected, "suggested_agency": "DAMKAR"}, agency="DLH",
                                    rejected_by=["DLH"], reporter={"name": "Budi"})),
            ("R-2", reroute_request("R-2", rejected, agency="DAMKAR", rejected_by=["DLH", "DAMKAR"])),
            ("R-3", reroute_request("R-3", {"cause": "manual", "actor": "admin.rina",
                                            "reason": "sampah: DLH", "agency": "DLH"},
                                    agency="TRIAGE", rejected_by=["DLH", "DAMKAR"])),
        ])
        routed = await read_topic(bootstrap, Topics.ROUTED, expect=3)
        damkar = await read_topic(bootstrap, Topics.agency("DAMKAR"), expect=2)
        dlh = await read_topic(bootstrap, Topics.agency("DLH"), expect=2)
        triage = await read_topic(bootstrap, Topics.agency("TRIAGE"), expect=2)
        [alert] = await read_topic(bootstrap, Topics.ESCALATIONS, expect=1, settle=1.0)

    decided = {e["ticket_id"]: e["data"] for e in routed}
    assert {t: (d["agency"], d["assignment"], d["previous_agency"]) for t, d in decided.items()} == {
        "R-1": ("DAMKAR", 2, "DLH"), "R-2": ("TRIAGE", 2, "DAMKAR"), "R-3": ("DLH", 2, "TRIAGE")}
    assert decided["R-3"]["assigned_by"] == "admin.rina"
    assert decided["R-1"]["assigned_by"] is None
    kinds = {(e["ticket_id"], e["type"]) for e in damkar + dlh + triage}
    assert kinds == {("R-1", "ticket.assigned"), ("R-1", "ticket.withdrawn"),
                     ("R-2", "ticket.withdrawn"), ("R-2", "ticket.assigned"),
                     ("R-3", "ticket.withdrawn"), ("R-3", "ticket.assigned")}
    [withdrawn] = [e["data"] for e in dlh if e["type"] == "ticket.withdrawn"]
    assert withdrawn == {"agency": "DLH", "assignment": 1, "new_agency": "DAMKAR",
                         "reason": withdrawn["reason"]}
    assert "suggested DAMKAR" in withdrawn["reason"]
    [assigned] = [e["data"] for e in damkar if e["type"] == "ticket.assigned"]
    assert assigned["reporter"]["name"] == "Budi"  # the new agency can answer the citizen
    assert alert["ticket_id"] == "R-2"
    assert alert["data"]["clock"] == "routing"
    assert alert["data"]["recipients"] == [{"role": "agency_head", "name": None}]


async def test_rulebook_hot_reload_over_http(router_settings: Settings, accounts: Accounts) -> None:
    app = create_app(router_settings)
    admin = await accounts.user("admin.kota", "admin")
    async with serving(app, router_settings.router_port) as base, \
            httpx.AsyncClient(base_url=base, headers=admin.headers) as http:
        before = (await http.get("/v1/rulebook")).json()
        router_settings.rulebook.write_text("tenant: x\nagencies: []\n")
        refused = await http.post("/v1/rulebook/reload")
        still = (await http.get("/v1/rulebook")).json()
        router_settings.rulebook.write_text(RULEBOOK.replace("sarang tawon", "tawon"))
        accepted = await http.post("/v1/rulebook/reload")
    assert before["agencies"] == 3
    assert refused.status_code == 422
    assert "fallback agency 'TRIAGE' is not defined" in refused.json()["detail"]
    assert still["version"] == before["version"]
    assert still["last_error"] == refused.json()["detail"]
    assert accepted.status_code == 200
    assert accepted.json()["version"] != before["version"]
    assert accepted.json()["last_error"] is None
