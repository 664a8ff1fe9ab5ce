"""Open311 GeoReport v2 against a running intake, driven by third-party GeoReport clients from
PyPI used as they are: civicbot's ``Open311Client`` (lists services, validates against the
service definition, posts the form, reads JSON) and ``georeport`` (reads JSON and XML).

The clients are synchronous (urllib, requests): they run in a thread while the served app runs
in the test's event loop."""

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from civicbot.http import HttpError, HttpTransport, RateLimiter
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint
from georeport import GeoReport
from pymongo import AsyncMongoClient

from services.intake.app import create_app as create_intake
from services.router.app import create_app as create_router
from services.sla.app import create_app as create_sla
from shared.contracts import Topics, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.outage_support import own_broker, pipeline
from tests.integration.support import eventually, produce, serving

pytestmark = pytest.mark.integration

TENANT = "kota-bengkulu"
T = TypeVar("T")
TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"


async def off_loop(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(call, *args, **kwargs)


def civicbot(base: str) -> Open311Client:
    endpoint = Endpoint(id="disposisi", name="Disposisi", base_url=f"{base}/open311/v2", write=True)
    # Its politeness pause between calls to one host, kept short on loopback.
    transport = HttpTransport(rate_limiter=RateLimiter(min_interval=0.0))
    return Open311Client(endpoint, transport, jurisdiction_id=TENANT)


def post(client: Open311Client, key: str, **fields: Any) -> dict[str, Any]:
    """A request filed the way civicbot files one for real: checked against the live service
    list and definition first."""
    prepared = client.create_request(fields.pop("service_code", "sampah"), dry_run=False,
                                     confirm="SEND", api_key=key, validate_remote=True, **fields)
    [answer] = prepared.response
    assert isinstance(answer, dict)
    return answer


def changed(ticket_id: str, version: int, status: str, **data: Any) -> tuple[str, bytes]:
    """The SLA service's announcement of a ticket's public state."""
    event = {"id": f"changed-{ticket_id}-{version}", "type": "ticket.changed", "tenant": TENANT,
             "ticket_id": ticket_id, "time": utc_now().isoformat(),
             "data": {"version": version, "status": status, "agency": "DLH",
                      "agency_name": "Dinas Lingkungan Hidup", "category": "Sampah",
                      "history": [{"at": utc_now().isoformat(), "action": "assigned", "agency": "DLH"}],
                      **data}}
    return ticket_id, json.dumps(event).encode()


def refusal(error: HttpError) -> tuple[int, list[dict[str, Any]]]:
    body: list[dict[str, Any]] = json.loads(error.body)
    return error.status, body


async def test_a_client_lists_services_posts_and_follows_a_request(
        settings: Settings, accounts: Accounts) -> None:
    key = (await accounts.channel("open311")).headers["X-API-Key"]
    due = (utc_now() + timedelta(days=3)).replace(microsecond=0)
    async with serving(create_intake(settings), settings.intake_port) as intake:
        client = civicbot(intake)
        services = await off_loop(client.list_services)
        definition = await off_loop(client.get_service_definition, "sampah")
        answer = await off_loop(post, client, key, lat=-3.7956, lng=102.2592,
                                description=TEXT, media_url="https://foto.example.org/tps.jpg",
                                first_name="Budi", last_name="Santoso", phone="0812-3456-7890",
                                email="budi@example.org", attributes={"kelurahan": "Padang Jati"})
        ticket_id = answer["service_request_id"]
        before = await off_loop(client.get_request, ticket_id)
        await produce(settings.kafka_bootstrap_servers, Topics.CHANGES, [
            changed(ticket_id, 1, "assigned", deadlines={"resolution_due": due.isoformat()})])
        after = await eventually(lambda: _routed(client, ticket_id), timeout=60)
        token = await off_loop(client.get_token, answer["token"])
        xml = GeoReport(f"{intake}/open311/v2", jurisdiction=TENANT, output_format="xml")
        xml_services = await off_loop(xml.get_service_list)
        xml_request = await off_loop(xml.get_service_request, ticket_id)
        listed = await off_loop(client.list_requests, service_code="sampah", status="open")
        closed = await off_loop(client.list_requests, status="closed")
    by_code = {s["service_code"]: s for s in services}
    assert by_code["sampah"]["group"] == "Dinas Lingkungan Hidup Kota Bengkulu"
    assert by_code["jalan-rusak"]["service_name"] == "Jalan rusak" and len(services) > 50
    assert {a["code"] for a in definition["attributes"]} >= {"anonymous", "confidential"}
    assert ticket_id.startswith("BKL-") and "kode pelacakan" in answer["service_notice"]
    assert before["status"] == "open" and before["agency_responsible"] is None
    assert before["service_code"] == "sampah" and before["expected_datetime"] is None
    assert after["agency_responsible"] == "Dinas Lingkungan Hidup"
    assert after["expected_datetime"] == due.astimezone(_jakarta()).isoformat()
    assert after["lat"] == -3.7956 and after["description"] is None, "no text without the key"
    assert token == [{"service_request_id": ticket_id, "token": answer["token"]}]
    assert len(xml_services) == len(services)
    assert xml_request["service_request_id"] == ticket_id
    assert xml_request["agency_responsible"] == "Dinas Lingkungan Hidup"
    assert [r["service_request_id"] for r in listed] == [ticket_id] and closed == []


async def _routed(client: Open311Client, ticket_id: str) -> dict[str, Any] | None:
    found = await off_loop(client.get_request, ticket_id)
    return found if found and found["agency_responsible"] else None


def _jakarta() -> Any:
    from zoneinfo import ZoneInfo
    return ZoneInfo("Asia/Jakarta")


async def test_an_anonymous_request_keeps_the_reporter_inside_intake(
        settings: Settings, accounts: Accounts, mongo: AsyncMongoClient[Document]) -> None:
    key = (await accounts.channel("open311")).headers["X-API-Key"]
    text = TEXT + ". Hubungi saya di budi@example.org atau 0812-3456-7890"
    async with serving(create_intake(settings), settings.intake_port) as intake:
        client = civicbot(intake)
        answer = await off_loop(post, client, key, lat=-3.79, lng=102.26, description=text,
                                first_name="Budi", email="budi@example.org",
                                attributes={"anonymous": "true"})
        ticket_id = answer["service_request_id"]
        public = await off_loop(client.get_request, ticket_id)
        with_key = (await off_loop(client.list_requests, service_request_ids=[ticket_id]))
        async with httpx.AsyncClient() as http:
            keyed = (await http.get(f"{intake}/open311/v2/requests/{ticket_id}.json",
                                    params={"api_key": key})).json()
    stored = await mongo[settings.mongodb_database]["complaints"].find_one({"ticket_id": ticket_id})
    assert stored is not None
    published = stored["event"]["data"]
    assert published["reporter"] is None and published["anonymous"] is True
    assert "budi@example.org" not in json.dumps(published) and "3456" not in published["text"]
    assert stored["withheld"]["reporter"]["email"] == "budi@example.org"
    assert public["description"] is None and public["lat"] is None, "an anonymous place is not public"
    assert with_key[0]["lat"] is None, "list_requests sends no key: the same public view"
    [detailed] = keyed
    assert detailed["lat"] == -3.79 and detailed["description"] == published["text"]


async def test_refusals_come_in_the_specifications_shape(settings: Settings,
                                                         accounts: Accounts) -> None:
    key = (await accounts.channel("open311")).headers["X-API-Key"]
    web_key = (await accounts.channel("web")).headers["X-API-Key"]
    async with serving(create_intake(settings), settings.intake_port) as intake:
        client = civicbot(intake)
        problems: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        attempts: dict[str, Callable[[], Any]] = {
            "wrong key": lambda: post(client, "dsp_nope_nope", lat=-3.79, lng=102.26, description=TEXT),
            "web key": lambda: post(client, web_key, lat=-3.79, lng=102.26, description=TEXT),
            "short text": lambda: post(client, key, lat=-3.79, lng=102.26, description="bau"),
            "bad email": lambda: post(client, key, address_string="Jl. Suprapto", description=TEXT,
                                      email="budi-at-example"),
            "unknown request": lambda: client.get_request("BKL-000000-XXXXXXXX"),
            "unknown service": lambda: client.get_service_definition("tidak-ada"),
        }
        for name, attempt in attempts.items():
            with pytest.raises(HttpError) as raised:
                await off_loop(attempt)
            problems[name] = refusal(raised.value)
        async with httpx.AsyncClient() as http:
            xml = await http.post(f"{intake}/open311/v2/requests.xml",
                                  data={"api_key": key, "service_code": "tidak-ada", "lat": "-3.79",
                                        "long": "102.26", "description": TEXT})
            no_location = await http.post(f"{intake}/open311/v2/requests.json",
                                          data={"api_key": key, "service_code": "sampah",
                                                "description": TEXT})
            bad_dates = await http.get(f"{intake}/open311/v2/requests.json",
                                       params={"start_date": "kemarin"})
            edge = await http.get(f"{intake}/open311/v2/requests.json",
                                  params={"end_date": "0001-01-01T00:00:00Z"})
    assert problems["wrong key"][0] == 403 and problems["web key"][0] == 403
    assert problems["short text"] == (400, [{"code": 400, "description":
                                              "description: String should have at least 10 characters"}])
    assert problems["bad email"][0] == 400
    assert problems["bad email"][1][0]["description"].startswith("email:")
    assert "budi-at-example" not in problems["bad email"][1][0]["description"]
    assert problems["unknown request"][0] == 404 and problems["unknown service"][0] == 404
    assert xml.status_code == 400 and xml.text.count("<error><code>400</code>") == 1
    assert no_location.status_code == 400 and "location" in no_location.json()[0]["description"]
    assert bad_dates.status_code == 400 and bad_dates.json()[0]["description"].startswith("start_date")
    assert edge.status_code == 400 and edge.json()[0]["code"] == 400


async def test_a_retried_post_with_its_idempotency_key_is_one_request(
        settings: Settings, accounts: Accounts, mongo: AsyncMongoClient[Document]) -> None:
    key = (await accounts.channel("open311")).headers["X-API-Key"]
    form = {"api_key": key, "service_code": "sampah", "lat": "-3.79", "long": "102.26",
            "description": TEXT}
    async with serving(create_intake(settings), settings.intake_port) as intake, \
            httpx.AsyncClient() as http:
        url = f"{intake}/open311/v2/requests.json"
        first = await http.post(url, data=form, headers={"Idempotency-Key": "app-42"})
        again = await http.post(url, data=form, headers={"Idempotency-Key": "app-42"})
        other = await http.post(url, data={**form, "description": TEXT + " lagi"},
                                headers={"Idempotency-Key": "app-42"})
    assert first.status_code == again.status_code == 200
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    assert first.json()[0]["token"] == again.json()[0]["token"]
    assert other.status_code == 409 and other.json()[0]["code"] == 409
    assert await mongo[settings.mongodb_database]["complaints"].count_documents({}) == 1


async def test_a_posted_request_reaches_its_agency_and_reads_back_the_sla_deadline(
        settings: Settings, accounts: Accounts) -> None:
    key = (await accounts.channel("open311")).headers["X-API-Key"]
    async with serving(create_intake(settings), settings.intake_port) as intake, \
            serving(create_router(settings), settings.router_port), \
            serving(create_sla(settings), settings.sla_port):
        client = civicbot(intake)
        answer = await off_loop(post, client, key, lat=-3.7956, lng=102.2592, description=TEXT,
                                media_url="https://foto.example.org/tps.jpg")
        found = await eventually(lambda: _routed(client, answer["service_request_id"]), timeout=90)
    assert found is not None, "the request was never routed"
    assert found["agency_responsible"] == "Dinas Lingkungan Hidup Kota Bengkulu"
    assert found["service_code"] == "sampah" and found["expected_datetime"] is not None
    assert found["status"] == "open"


@pytest.mark.own_servers
async def test_a_request_posted_while_the_broker_is_down_reaches_its_agency_after(
        settings: Settings, accounts: Accounts, tmp_path: Path) -> None:
    """The post is stored before it is answered: with the broker down the client still gets
    its request id, and once the broker is back (empty) the outbox and the reconciliation
    carry it to the router and the SLA service."""
    key = (await accounts.channel("open311")).headers["X-API-Key"]
    async with own_broker(settings, tmp_path) as broker, pipeline(broker.settings) as urls:
        client = civicbot(urls.intake)
        await off_loop(client.list_services)  # the client's look-up before the outage
        broker.stop()
        answer = await off_loop(post, client, key, lat=-3.7956, lng=102.2592, description=TEXT)
        await broker.start_empty()
        found = await eventually(lambda: _routed(client, answer["service_request_id"]), timeout=180)
    assert answer["service_request_id"].startswith("BKL-")
    assert found is not None and found["agency_responsible"] == "Dinas Lingkungan Hidup Kota Bengkulu"
    assert found["expected_datetime"] is not None
