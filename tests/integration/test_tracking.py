"""The citizen's side through the running pipeline: the tracking code shown once at
submission opens the complaint's text and the agency's messages; with the number and code
the citizen answers a needs_info, which reaches the SLA as `citizen_replied` (masked when
the complaint is anonymous) and resumes its clocks. Wrong codes look like unknown numbers and
are limited per ticket."""

from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app as intake_app
from shared.contracts import Topics
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.outage_support import own_broker
from tests.integration.outage_support import pipeline as pipeline_on
from tests.integration.support import eventually, read_topic, serving
from tests.integration.test_privacy import pipeline

pytestmark = pytest.mark.integration

COMPLAINT = {"channel": "web", "anonymous": True, "reporter": {"name": "Rina Marlina"},
             "title": "Sampah menumpuk",
             "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"}


async def _ticket(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any] | None:
    response = await http.get(url, headers=headers)
    return response.json() if response.status_code == 200 else None


async def test_the_code_opens_the_complaint_and_lets_the_citizen_answer(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    web = await accounts.channel("web")
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    async with pipeline(settings) as (intake, sla), httpx.AsyncClient() as http:
        accepted = (await http.post(f"{intake}/v1/complaints", json=COMPLAINT,
                                    headers=web.headers)).json()
        ticket_id, code = accepted["ticket_id"], accepted["tracking_code"]
        ticket = await eventually(lambda: _ticket(http, f"{sla}/v1/tickets/{ticket_id}",
                                                  officer.headers), timeout=60)
        assert ticket is not None and ticket["agency"] == "DLH"
        public_url = f"{intake}/v1/complaints/{ticket_id}"
        replies_url = f"{public_url}/replies"
        answer = {"text": "Fotonya sudah saya kirim, saya Rina, WA O812-3456-7890"}
        too_early = await http.post(replies_url, json=answer, headers={"X-Tracking-Code": code})
        asked = await http.post(f"{sla}/v1/tickets/{ticket_id}/events", headers=officer.headers,
                                json={"action": "needs_info", "note": "Mohon kirim foto lokasi"})
        assert asked.status_code == 200, asked.text
        # Intake learns of the question from the SLA service's ticket.changed, moments later.
        assert await eventually(lambda: _status_is(http, public_url, "needs_info"), timeout=60)
        wrong = await http.post(replies_url, json=answer, headers={"X-Tracking-Code": "AAAA-BBBB-CCCC"})
        without = await http.post(replies_url, json=answer)
        # Read aloud or typed from paper: any case, O for 0 and I for 1 still fit.
        typed = code.lower().replace("0", "o").replace("1", "i")
        sent = await http.post(replies_url, json=answer, headers={"X-Tracking-Code": typed})
        assert sent.status_code == 202, sent.text
        [update] = await read_topic(settings.kafka_bootstrap_servers, Topics.UPDATES, expect=1)
        resumed = await eventually(
            lambda: _resumed(http, f"{sla}/v1/tickets/{ticket_id}", officer.headers), timeout=60)
        assert await eventually(lambda: _status_is(http, public_url, "assigned"), timeout=60)
        anyone = (await http.get(public_url)).json()
        holder = (await http.get(public_url, params={"code": code})).json()

    assert (too_early.status_code, wrong.status_code, without.status_code) == (409, 404, 404)
    assert update["ticket_id"] == ticket_id
    assert update["data"]["action"] == "citizen_replied"
    assert update["data"]["actor"] == "citizen"
    assert update["data"]["note"] == ("Fotonya sudah saya kirim, saya [nama disembunyikan], "
                                      "WA [nomor disembunyikan]")
    assert resumed["status"] == "assigned"
    assert resumed["pauses"][0]["ended_at"] is not None
    # Anyone with the number: where the complaint is, not what it says.
    assert anyone["agency"] == "DLH" and anyone["text"] is None and anyone["title"] is None
    assert [step["note"] for step in anyone["history"]] == [None] * len(anyone["history"])
    assert "matched_terms" not in anyone["routing"] and "reason" not in anyone["routing"]
    # The holder of the code: the complaint, the agency's question and their own answer.
    assert holder["text"] == COMPLAINT["text"] and holder["title"] == "Sampah menumpuk"
    notes = [step["note"] for step in holder["history"]]
    assert "Mohon kirim foto lokasi" in notes and update["data"]["note"] in notes
    assert holder["routing"]["matched_terms"]
    assert asked.json()["history"][-1]["actor"] == "petugas.dlh (officer, DLH)"
    assert "petugas.dlh" not in str(holder) and "petugas.dlh" not in str(anyone)
    [stored] = await mongo[settings.mongodb_database]["complaints"].find().to_list(None)
    assert code not in str(stored), "only a hash of the code is stored"
    assert stored["withheld"]["reporter"]["name"] == "Rina Marlina"
    assert "reporter" not in stored["event"]["data"] or stored["event"]["data"]["reporter"] is None


async def _resumed(http: httpx.AsyncClient, url: str, headers: dict[str, str]
                   ) -> dict[str, Any] | None:
    ticket = await _ticket(http, url, headers)
    return ticket if ticket and ticket["status"] != "needs_info" else None


async def test_wrong_codes_are_limited_per_ticket_and_retries_get_a_code_of_their_own(
        settings: Settings, accounts: Accounts) -> None:
    settings = settings.model_copy(update={"tracking_code_failures": "3/hour"})
    web = await accounts.channel("web")
    async with serving(intake_app(settings), settings.intake_port) as url, httpx.AsyncClient() as http:
        headers = {"Idempotency-Key": "web-form-42", **web.headers}
        first = (await http.post(f"{url}/v1/complaints", json=COMPLAINT, headers=headers)).json()
        retry = (await http.post(f"{url}/v1/complaints", json=COMPLAINT, headers=headers)).json()
        view = f"{url}/v1/complaints/{first['ticket_id']}"
        both = [(await http.get(view, headers={"X-Tracking-Code": c})).status_code
                for c in (first["tracking_code"], retry["tracking_code"])]
        wrong = [(await http.get(view, headers={"X-Tracking-Code": f"WRONG-{i}"})).status_code
                 for i in range(3)]
        locked = await http.get(view, headers={"X-Tracking-Code": first["tracking_code"]})
        unknown = await http.get(f"{url}/v1/complaints/BKL-000000-AAAAAAAA",
                                 headers={"X-Tracking-Code": first["tracking_code"]})
        still_public = await http.get(view)
    assert retry["ticket_id"] == first["ticket_id"] and retry["duplicate"]
    assert retry["tracking_code"] != first["tracking_code"]
    assert both == [200, 200]
    assert wrong == [404, 404, 404]
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert unknown.status_code == 404
    assert still_public.status_code == 200 and still_public.json()["text"] is None


@pytest.mark.own_servers
async def test_a_reply_accepted_while_the_broker_is_down_is_published_after_it(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path,
        accounts: Accounts) -> None:
    """A reply accepted while the broker is down reaches the SLA service once it is back,
    even if the restarted (empty) broker acknowledges the outbox's send and then loses it: the
    reply is published again, under its event id, until the SLA service announces it applied
    it. Applied once; the clocks resume; the public view follows."""
    web = await accounts.channel("web")
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    db = mongo[settings.mongodb_database]
    async with own_broker(settings, tmp_path) as broker, pipeline_on(broker.settings) as urls, \
            httpx.AsyncClient(timeout=60) as http:
        accepted = (await http.post(f"{urls.intake}/v1/complaints", json=COMPLAINT,
                                    headers=web.headers)).json()
        ticket_id, code = accepted["ticket_id"], accepted["tracking_code"]
        sla_url, public_url = f"{urls.sla}/v1/tickets/{ticket_id}", f"{urls.intake}/v1/complaints/{ticket_id}"
        assert await eventually(lambda: _ticket(http, sla_url, officer.headers), timeout=120)
        asked = await http.post(f"{sla_url}/events", headers=officer.headers,
                                json={"action": "needs_info", "note": "Mohon kirim foto lokasi"})
        assert asked.status_code == 200, asked.text
        assert await eventually(lambda: _status_is(http, public_url, "needs_info"), timeout=60)
        broker.stop()
        sent = await http.post(f"{public_url}/replies", json={"text": "Sudah saya kirim fotonya"},
                               headers={"X-Tracking-Code": code})
        assert sent.status_code == 202, "a reply is stored, whatever the broker does"
        await broker.start_empty()
        resumed = await eventually(lambda: _resumed(http, sla_url, officer.headers), timeout=180)
        settled = await eventually(lambda: db["replies"].find_one({"settled_at": {"$ne": None}}),
                                   timeout=60)
        public = await eventually(lambda: _status_is(http, public_url, "assigned"), timeout=60)
    assert resumed is not None, "the SLA service applied the reply"
    assert resumed["pauses"][0]["ended_at"] is not None
    replies = [step for step in resumed["history"] if step["action"] == "citizen_replied"]
    assert [step["note"] for step in replies] == ["Sudah saya kirim fotonya"], "applied once"
    assert settled is not None and settled["outcome"] == "applied"
    assert public and public["history"][-1]["action"] == "citizen_replied"


async def _status_is(http: httpx.AsyncClient, url: str, status: str) -> dict[str, Any] | None:
    view = await _ticket(http, url, {})
    return view if view and view["status"] == status else None
