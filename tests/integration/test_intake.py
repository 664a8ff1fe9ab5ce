"""Intake against the embedded broker and store: stored before 202, published, idempotent,
clear 422s, poison to dead letters, unpublished complaints republished after an outage."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.intake.app import create_app
from services.intake.flows import Submission
from shared.contracts import ComplaintSubmission, Topics, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.outage_support import own_broker, pipeline
from tests.integration.support import eventually, produce, read_topic, serving

pytestmark = pytest.mark.integration

COMPLAINT = {"channel": "web",
             "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"}


async def test_complaint_is_stored_before_202_and_published(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    web = await accounts.channel("web")
    async with serving(create_app(settings), settings.intake_port) as url, \
            httpx.AsyncClient(headers=web.headers) as http:
        body = {**COMPLAINT, "reporter": {"name": "Rina", "phone": "0812-3456-7890"},
                "location": {"kecamatan": "Ratu Samban", "address": "Jl. Suprapto"}}
        response = await http.post(f"{url}/v1/complaints", json=body)
        assert response.status_code == 202
        ticket_id = response.json()["ticket_id"]
        stored = await mongo[settings.mongodb_database]["complaints"].find_one({"ticket_id": ticket_id})
        assert stored is not None, "the complaint must be in MongoDB when 202 is answered"
        [event] = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=1)
        assert event["type"] == "complaint.received"
        assert event["ticket_id"] == ticket_id
        assert event["data"]["reporter"]["phone"] == "+6281234567890"
        tracking = await http.get(f"{url}/v1/complaints/{ticket_id}")
        assert tracking.status_code == 200
        assert tracking.json()["status"] == "received"
        assert "reporter" not in tracking.json()


async def test_retries_with_the_same_key_return_the_same_ticket(settings: Settings,
                                                                 accounts: Accounts) -> None:
    web, lapor = await accounts.channel("web"), await accounts.channel("lapor")
    async with serving(create_app(settings), settings.intake_port) as url, \
            httpx.AsyncClient(headers=web.headers) as http:
        headers = {"Idempotency-Key": "wa-msg-0001", **web.headers}
        first = await http.post(f"{url}/v1/complaints", json=COMPLAINT, headers=headers)
        again = await http.post(f"{url}/v1/complaints", json=COMPLAINT, headers=headers)
        assert first.status_code == again.status_code == 202
        assert first.json()["ticket_id"] == again.json()["ticket_id"]
        assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
        other = await http.post(f"{url}/v1/complaints", headers=headers,
                                json={**COMPLAINT, "text": "Lampu jalan di depan rumah mati total"})
        assert other.status_code == 409
        by_external = [await http.post(f"{url}/v1/complaints",
                                       json={**COMPLAINT, "channel": "lapor", "external_id": "L-77"},
                                       headers=lapor.headers)
                       for _ in range(2)]
        assert by_external[0].json()["ticket_id"] == by_external[1].json()["ticket_id"]


async def test_invalid_complaints_get_422_naming_each_field(settings: Settings,
                                                             accounts: Accounts) -> None:
    web = await accounts.channel("web")
    async with serving(create_app(settings), settings.intake_port) as url, \
            httpx.AsyncClient(headers=web.headers) as http:
        response = await http.post(f"{url}/v1/complaints", json={
            "channel": "fax", "text": "short", "reporter": {"phone": "12", "email": "not-mail"},
            "location": {"lat": 3.8}, "colour": "red"})
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert {"channel", "text", "reporter.phone", "reporter.email", "location", "colour"} <= fields
        missing = await http.post(f"{url}/v1/complaints", json={"channel": "web"})
        assert [e["field"] for e in missing.json()["errors"]] == ["text"]


async def test_submitted_topic_accepts_valid_and_dead_letters_poison(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    valid = {"id": "0b9c1f1e-0000-4000-8000-000000000001", "type": "complaint.submitted",
             "tenant": "kota-bengkulu", "data": {**COMPLAINT, "channel": "whatsapp"}}
    async with serving(create_app(settings), settings.intake_port):
        await produce(settings.kafka_bootstrap_servers, Topics.SUBMITTED, [
            (None, b"{not json"),
            (None, json.dumps({**valid, "id": "x2", "data": {"channel": "whatsapp"}}).encode()),
            (None, json.dumps(valid).encode()),
            (None, json.dumps(valid).encode()),  # redelivered by the channel: no second ticket
        ])
        letters = await read_topic(settings.kafka_bootstrap_servers, Topics.DEADLETTER, expect=2)
        received = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=2,
                                    settle=1.0)
    reasons = sorted(letter["data"]["reason"] for letter in letters)
    assert "invalid JSON" in reasons[0] or "json" in reasons[0].lower()
    assert "data.text: Field required" in reasons[1]
    assert all(letter["data"]["source_topic"] == Topics.SUBMITTED for letter in letters)
    assert len({e["ticket_id"] for e in received}) == 1
    docs = await mongo[settings.mongodb_database]["complaints"].find().to_list(None)
    assert [d["_id"] for d in docs] == [f"evt:{valid['id']}"]


async def test_unpublished_complaints_are_republished_by_the_sweep(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """A complaint stored while the broker was unreachable (its publisher gone) is published
    once its lease runs out."""
    app = create_app(settings)
    async with serving(app, settings.intake_port):
        intake = app.state.intake
        [doc] = await intake.store([_submission()])
        await mongo[settings.mongodb_database]["complaints"].update_one(
            {"_id": doc["_id"]}, {"$set": {"lease_until": utc_now().timestamp() - 1,
                                           "lease_owner": "a-crashed-intake"}})
        [event] = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=1)
        assert event["ticket_id"] == doc["ticket_id"]

        async def published() -> bool:
            stored = await mongo[settings.mongodb_database]["complaints"].find_one({"_id": doc["_id"]})
            return bool(stored and stored["published"])

        assert await eventually(published)


def _submission() -> Submission:
    return Submission(ComplaintSubmission.model_validate(COMPLAINT), key=None)


@pytest.mark.own_servers
async def test_complaints_accepted_during_a_broker_outage_are_published_after_it(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path,
        accounts: Accounts) -> None:
    """Accepted while the broker is down, the complaint becomes a ticket once it is back,
    whatever happens to the outbox's retried send in between: the restarted (empty) broker may
    acknowledge a send and then lose it, and the reconciliation publishes it again until the SLA
    service says the ticket is open. The public view shows it routed."""
    web = await accounts.channel("web")
    db = mongo[settings.mongodb_database]
    async with own_broker(settings, tmp_path) as broker, pipeline(broker.settings) as urls, \
            httpx.AsyncClient(timeout=60, headers=web.headers) as http:
        broker.stop()
        response = await http.post(f"{urls.intake}/v1/complaints", json=COMPLAINT)
        assert response.status_code == 202, "accepting must not depend on the broker"
        assert (await http.get(f"{urls.intake}/readyz")).status_code == 503
        await broker.start_empty()
        ticket_id = response.json()["ticket_id"]
        ticketed = await eventually(lambda: _ticketed(db, ticket_id), timeout=180)
        view = await eventually(lambda: _routed_view(http, f"{urls.intake}/v1/complaints/{ticket_id}"),
                                timeout=60)
    assert ticketed, "the complaint accepted during the outage became a ticket"
    assert await db["tickets"].count_documents({"_id": ticket_id}) == 1
    assert view and view["agency"] == "DLH" and view["status"] == "assigned"


async def _ticketed(db: AsyncDatabase[Document], ticket_id: str) -> bool:
    complaint = await db["complaints"].find_one({"ticket_id": ticket_id})
    return bool(complaint and complaint["ticketed_at"] is not None)


async def _routed_view(http: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    view: dict[str, Any] = (await http.get(url)).json()
    return view if view.get("agency") else None
