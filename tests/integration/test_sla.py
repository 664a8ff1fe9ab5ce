"""The SLA service against the embedded broker and store: idempotent tickets, updates over
HTTP and Kafka, pause and resume, rejection -> reroute request, re-assignment, the triage
desk's manual routing, and two full services firing each level once."""

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from services.sla.app import create_app
from shared.audit_store import AuditLog
from shared.contracts import Topics, derived_event_id, utc_now
from shared.embedded import free_port
from shared.mongo import Document
from shared.settings import Settings
from tests.conftest import DEMO_POLICY
from tests.integration.auth_support import Accounts
from tests.integration.sla_support import routed, update
from tests.integration.support import at_least, eventually, produce, read_topic, serving

pytestmark = pytest.mark.integration


async def test_tickets_are_idempotent_and_follow_updates(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    settings = settings.model_copy(update={"parked_update_seconds": 1.0})
    bootstrap = settings.kafka_bootstrap_servers
    tickets = mongo[settings.mongodb_database]["tickets"]
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    async with serving(create_app(settings), settings.sla_port) as url, \
            httpx.AsyncClient(headers=officer.headers) as http:
        now = utc_now()
        await produce(bootstrap, Topics.ROUTED, [routed("T-1", now), routed("T-1", now),
                                                 routed("T-2", now)])
        assert await eventually(lambda: at_least(tickets, 2))
        await produce(bootstrap, Topics.UPDATES, [
            update("T-1", "u-1", "acknowledged"), update("T-1", "u-1", "acknowledged"),
            update("T-1", "u-2", "resolved"), update("T-404", "u-3", "responded"),
            update("T-1", "u-4", "responded")])  # after resolved: refused
        letters = await read_topic(bootstrap, Topics.DEADLETTER, expect=2)
        ticket = (await http.get(f"{url}/v1/tickets/T-1")).json()

        responded = await http.post(f"{url}/v1/tickets/T-2/events", json={"action": "responded",
                                    "note": "Truk dijadwalkan besok"}, headers={"Idempotency-Key": "k"})
        repeat = await http.post(f"{url}/v1/tickets/T-2/events", json={"action": "responded",
                                 "note": "Truk dijadwalkan besok"}, headers={"Idempotency-Key": "k"})
        refused = await http.post(f"{url}/v1/tickets/T-1/events", json={"action": "acknowledged"})
        unknown = await http.post(f"{url}/v1/tickets/nope/events", json={"action": "acknowledged"})
        invalid = await http.post(f"{url}/v1/tickets/T-2/events", json={"action": "rejected"})

    assert await tickets.count_documents({}) == 2
    assert [h["action"] for h in ticket["history"]] == ["assigned", "acknowledged", "resolved"]
    assert ticket["status"] == "resolved"
    assert ticket["resolved_at"] is not None and ticket["resolution_met"] is True
    assert ticket["next_check_at"] is None
    assert sorted(letter["data"]["reason"][:25] for letter in letters) == [
        "no ticket T-404 within 1 ", "ticket T-1 is resolved: r"]
    [unknown_letter] = [x for x in letters if "T-404" in x["data"]["reason"]]
    assert unknown_letter["data"]["source_topic"] == Topics.UPDATES  # the original record
    assert '"u-3"' in unknown_letter["data"]["payload"]
    assert responded.status_code == 200 and responded.json()["status"] == "responded"
    assert responded.json()["first_response_at"] is not None
    assert len(repeat.json()["history"]) == len(responded.json()["history"])
    assert (refused.status_code, unknown.status_code, invalid.status_code) == (409, 404, 422)
    assert "a rejection must give a reason" in invalid.json()["errors"][0]["problem"]


async def test_pause_and_resume_over_http(settings: Settings, accounts: Accounts,
                                          tmp_path: Path) -> None:
    # The demo policy's 24x7 clock with a response target of an hour rather than 5 s: on a
    # loaded machine 5 s could pass before the pause, and a breached clock is not shifted.
    policy = tmp_path / "policy-hour.yaml"
    policy.write_text(DEMO_POLICY.read_text().replace("response: 5s", "response: 1h"))
    settings = settings.model_copy(update={"sla_policy": policy})
    bootstrap = settings.kafka_bootstrap_servers
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    async with serving(create_app(settings), settings.sla_port) as url, \
            httpx.AsyncClient(headers=officer.headers) as http:
        await produce(bootstrap, Topics.ROUTED, [routed("T-P", utc_now())])
        assert await eventually(lambda: _status(http, f"{url}/v1/tickets/T-P"))
        before = (await http.get(f"{url}/v1/tickets/T-P")).json()
        asked = await http.post(f"{url}/v1/tickets/T-P/events",
                                json={"action": "needs_info", "note": "Mohon foto lokasi"})
        replied = await http.post(f"{url}/v1/tickets/T-P/events", json={"action": "citizen_replied"})
        asked_again = await http.post(f"{url}/v1/tickets/T-P/events", json={"action": "needs_info"})
        await http.post(f"{url}/v1/tickets/T-P/events", json={"action": "citizen_replied"})
        over_limit = await http.post(f"{url}/v1/tickets/T-P/events", json={"action": "needs_info"})
    assert (asked.json()["status"], asked.json()["next_check_at"]) == ("needs_info", None)
    resumed = replied.json()
    assert resumed["status"] == "assigned"
    [pause] = resumed["pauses"]
    assert pause["ended_at"] is not None and pause["working_seconds"] > 0
    shifted = datetime.fromisoformat(resumed["response_due_at"]) - \
        datetime.fromisoformat(before["response_due_at"])
    assert shifted.total_seconds() == pytest.approx(pause["working_seconds"], abs=0.01)
    assert asked_again.json()["pauses"][-1]["quick_repause"] is True
    assert over_limit.status_code == 409
    assert "pauses.max_per_ticket is 2" in over_limit.json()["detail"]


async def _status(http: httpx.AsyncClient, url: str) -> bool:
    return (await http.get(url)).status_code == 200


async def _status_is(http: httpx.AsyncClient, url: str, status: str) -> bool:
    response = await http.get(url)
    return response.status_code == 200 and response.json()["status"] == status


async def test_rejection_sends_a_reroute_request_once(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    head = await accounts.user("kabid.dlh", "agency_head", "DLH")
    async with serving(create_app(settings), settings.sla_port) as url, \
            httpx.AsyncClient(headers=head.headers) as http:
        await produce(bootstrap, Topics.ROUTED, [routed("T-R", utc_now())])
        assert await eventually(lambda: _status(http, f"{url}/v1/tickets/T-R"))
        body = {"action": "rejected", "reason": "bukan Tupoksi DLH", "suggested_agency": "PUPR"}
        spoofed = await http.post(f"{url}/v1/tickets/T-R/events", json={**body, "actor": "Walikota"})
        first = await http.post(f"{url}/v1/tickets/T-R/events", json=body, headers={"Idempotency-Key": "r"})
        again = await http.post(f"{url}/v1/tickets/T-R/events", json=body, headers={"Idempotency-Key": "r"})
        requests = await read_topic(bootstrap, Topics.REROUTE, expect=2, timeout=6)
    assert (first.status_code, again.status_code, spoofed.status_code) == (200, 200, 422)
    assert spoofed.json()["errors"][0]["field"] == "actor"
    assert first.json()["status"] == "rejected"
    assert first.json()["rejected_by"] == ["DLH"]
    [request] = requests
    assert request["type"] == "ticket.reroute_requested"
    assert request["id"] == derived_event_id("reroute", "T-R:a1:rejected")
    data = request["data"]
    assert (data["cause"], data["reason"], data["actor"], data["suggested_agency"]) == \
        ("rejected", "bukan Tupoksi DLH", "kabid.dlh (agency_head, DLH)", "PUPR")
    assert (data["ticket"]["agency"], data["ticket"]["assignment"], data["ticket"]["rejected_by"]) == \
        ("DLH", 1, ["DLH"])
    [stored] = await mongo[settings.mongodb_database]["reroutes"].find().to_list(None)
    assert stored["published"]  # (NX-27017 returns a $set true as 1)


async def test_a_newer_routing_decision_reassigns_the_ticket(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    tickets = mongo[settings.mongodb_database]["tickets"]
    submitted = utc_now()
    async with serving(create_app(settings), settings.sla_port):
        await produce(bootstrap, Topics.ROUTED, [routed("T-A", submitted)])
        assert await eventually(lambda: at_least(tickets, 1))
        await produce(bootstrap, Topics.ROUTED, [
            routed("T-A", submitted, agency="PUPR", assignment=2, previous_agency="DLH",
                   routed_at=submitted + timedelta(seconds=2)),
            routed("T-A", submitted, agency="DLH", assignment=1),       # duplicates: no change
            routed("T-A", submitted, agency="PUPR", assignment=2)])
        assert await eventually(lambda: _assignment_is(tickets, "T-A", 2))
        await produce(bootstrap, Topics.ROUTED, [routed("T-B", submitted)])  # after the duplicates
        assert await eventually(lambda: at_least(tickets, 2))
    ticket = await tickets.find_one({"_id": "T-A"})
    assert ticket is not None
    assert (ticket["agency"], ticket["assignment"], ticket["status"]) == ("PUPR", 2, "assigned")
    assert [h["action"] for h in ticket["history"]] == ["assigned", "rerouted"]
    assert [(a["agency"], a["outcome"]) for a in ticket["assignments"]] == \
        [("DLH", "rerouted"), ("PUPR", None)]
    assert ticket["assigned_at"] == submitted.replace(microsecond=submitted.microsecond // 1000 * 1000) \
        + timedelta(seconds=2)
    assert ticket["clocks"]["response"]["started_at"] == ticket["assigned_at"]
    assert ticket["citizen_clocks"]["response"]["started_at"] == ticket["submitted_at"]


async def _assignment_is(tickets: AsyncCollection[Document], ticket_id: str, assignment: int) -> bool:
    found = await tickets.find_one({"_id": ticket_id})
    return found is not None and found["assignment"] == assignment


async def test_the_triage_desk_routes_by_hand(settings: Settings, mongo: AsyncMongoClient[Document],
                                              accounts: Accounts) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    desk = await accounts.user("meja.triase", "triage")
    async with serving(create_app(settings), settings.sla_port) as url, \
            httpx.AsyncClient(headers=desk.headers) as http:
        await produce(bootstrap, Topics.ROUTED, [routed("T-M", utc_now(), agency="TRIAGE"),
                                                 routed("T-done", utc_now(), agency="TRIAGE"),
                                                 routed("T-dlh", utc_now())])
        await produce(bootstrap, Topics.UPDATES, [update("T-done", "u-done", "resolved")])
        assert await eventually(lambda: _status_is(http, f"{url}/v1/tickets/T-done", "resolved"))
        choice = {"agency": "PUPR", "reason": "jalan berlubang: PUPR"}
        accepted = await http.post(f"{url}/v1/tickets/T-M/route", json=choice,
                                   headers={"X-Request-ID": "req-desk"})
        repeated = await http.post(f"{url}/v1/tickets/T-M/route", json=choice)
        unknown_agency = await http.post(f"{url}/v1/tickets/T-M/route", json={**choice, "agency": "DINAS_X"})
        spoofed = await http.post(f"{url}/v1/tickets/T-M/route", json={**choice, "actor": "Walikota"})
        not_in_triage = await http.post(f"{url}/v1/tickets/T-dlh/route", json=choice)
        unknown_ticket = await http.post(f"{url}/v1/tickets/T-404/route", json=choice)
        resolved = await http.post(f"{url}/v1/tickets/T-done/route", json=choice)
        requests = await read_topic(bootstrap, Topics.REROUTE, expect=2, timeout=6)
    assert (accepted.status_code, repeated.status_code) == (202, 202)
    assert accepted.json() == repeated.json()
    request = accepted.json()
    assert (request["cause"], request["agency"], request["actor"], request["reason"]) == \
        ("manual", "PUPR", "meja.triase (triage)", "jalan berlubang: PUPR")
    assert request["ticket"]["agency"] == "TRIAGE"
    assert unknown_agency.status_code == 422
    assert unknown_agency.json()["errors"][0]["field"] == "agency"
    assert "DINAS_X" in unknown_agency.json()["errors"][0]["problem"]
    assert spoofed.status_code == 422
    assert spoofed.json()["errors"][0]["field"] == "actor"
    assert (unknown_ticket.status_code, resolved.status_code) == (404, 409)
    assert not_in_triage.status_code == 404  # the desk sees the triage queue only
    assert [(r["data"]["cause"], r["data"]["agency"]) for r in requests] == [("manual", "PUPR")]
    audited = await AuditLog(mongo[settings.mongodb_database]).latest(settings.tenant, limit=10,
                                                                      ticket_id="T-M")
    assert [(e["action"], e["actor"], e["request_id"]) for e in audited
            if e["action"] == "manual_assignment"] == [
        ("manual_assignment", {"name": "meja.triase", "role": "triage", "agency": None,
                               "kind": "person"}, "req-desk")]


async def test_two_services_fire_each_level_exactly_once(settings: Settings) -> None:
    """Demo policy: response target 5 s, levels at 75% and 100%. Two SLA services share the
    store and the topic; every (ticket, level) must appear on the topic once."""
    bootstrap = settings.kafka_bootstrap_servers
    twin = settings.model_copy(update={"sla_port": free_port(), "instance_id": "twin"})
    async with serving(create_app(settings), settings.sla_port), \
            serving(create_app(twin), twin.sla_port):
        now = utc_now()
        await produce(bootstrap, Topics.ROUTED, [routed(f"T-{i}", now) for i in range(30)])
        events = await read_topic(bootstrap, Topics.ESCALATIONS, expect=60, timeout=40, settle=3)
    fired = Counter((e["ticket_id"], e["data"]["clock"], e["data"]["level"]) for e in events)
    assert len(fired) == 60
    assert set(fired.values()) == {1}, [k for k, v in fired.items() if v > 1]
    assert {e["data"]["recipients"][0]["role"] for e in events} == {"agency_head"}


async def test_an_update_read_before_its_ticket_opens_is_applied_when_it_does(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    """After a downtime the SLA may read an agency's update before the routing decision that
    opens the ticket: the update waits for the ticket instead of being dead-lettered."""
    bootstrap = settings.kafka_bootstrap_servers
    db = mongo[settings.mongodb_database]
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    async with serving(create_app(settings), settings.sla_port) as url, \
            httpx.AsyncClient(headers=officer.headers) as http:
        await produce(bootstrap, Topics.UPDATES, [update("T-7", "u-7", "acknowledged", actor="staf")])
        assert await eventually(lambda: at_least(db["parked_updates"], 1))
        await produce(bootstrap, Topics.ROUTED, [routed("T-7", utc_now())])

        async def acknowledged() -> bool:
            response = await http.get(f"{url}/v1/tickets/T-7")
            return response.status_code == 200 and response.json()["status"] == "acknowledged"

        assert await eventually(acknowledged)
        letters = await read_topic(bootstrap, Topics.DEADLETTER, expect=1, timeout=2.0)
    assert letters == []
    assert await db["parked_updates"].count_documents({}) == 0
