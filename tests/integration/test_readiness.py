"""Honest health: /healthz says the process lives, /readyz says it can work now (broker,
consumer partitions, store), and a store outage answers 503 with Retry-After, not a 500."""

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app as create_intake
from services.router.app import create_app as create_router
from shared.contracts import Topics
from shared.embedded import free_port, start_kafka, start_mongo
from shared.kafka import ensure_topics
from shared.mongo import Document
from shared.settings import Settings
from tests.conftest import EMBEDDED_KAFKA_SETTINGS
from tests.integration.auth_support import Accounts
from tests.integration.support import eventually, serving

pytestmark = pytest.mark.integration

COMPLAINT = {"channel": "web",
             "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"}


async def _readiness(http: httpx.AsyncClient, url: str) -> tuple[int, dict[str, Any]]:
    response = await http.get(f"{url}/readyz", timeout=30)
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def _ready(http: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    code, body = await _readiness(http, url)
    return body if code == 200 else None


async def _not_ready_for(http: httpx.AsyncClient, url: str, check: str) -> dict[str, Any] | None:
    code, body = await _readiness(http, url)
    return body if code == 503 and check in body["failed"] else None


async def test_store_outage_answers_503_with_retry_after_and_recovers(
        settings: Settings, tmp_path: Path) -> None:
    # A store of its own (even when the suite runs against real MongoDB): the test stops it.
    store = start_mongo(free_port(), tmp_path)
    # Every call checks its key in the store (no cache): the 503 below is the sign-in check's.
    settings = settings.model_copy(update={
        "mongodb_url": f"mongodb://{store.address}/?directConnection=true",
        "api_key_cache_seconds": 0})
    own_store: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        async with serving(create_intake(settings), settings.intake_port) as url, \
                httpx.AsyncClient(timeout=30) as http:
            web = await Accounts(settings, own_store).channel("web")  # in the store it stops
            http.headers.update(web.headers)
            assert (await http.post(f"{url}/v1/complaints", json=COMPLAINT)).status_code == 202
            ready = await eventually(lambda: _ready(http, url), timeout=60)
            assert ready and ready["checks"]["mongodb"] == {"ok": True}

            store.stop()
            started = time.monotonic()
            refused = await http.post(f"{url}/v1/complaints", json=COMPLAINT)
            print(f"\n503 answered {time.monotonic() - started:.3f} s after the POST")
            # The sign-in check reads the store first: its 503 says the key cannot be checked.
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) >= 1
            assert refused.json() == {"errors": [{
                "field": None, "problem": "the account store is unreachable; try again shortly"}]}
            # Sign-in with the store stopped: the same 503, in the same shape.
            sign_in = await http.post(f"{url}/v1/auth/token",
                                      data={"username": "someone", "password": "whatever-it-is"})
            assert sign_in.status_code == 503
            assert sign_in.headers["Retry-After"] == refused.headers["Retry-After"]
            assert sign_in.json() == refused.json()
            started = time.monotonic()
            # The public tracking view checks no credentials: the store handler answers.
            tracking = await http.get(f"{url}/v1/complaints/BKL-261128-7K3QX9AB")
            print(f"503 answered {time.monotonic() - started:.3f} s after a later GET")
            assert tracking.status_code == 503
            assert tracking.headers["Retry-After"] == refused.headers["Retry-After"]
            assert tracking.json() == {"errors": [{"field": None,
                                                   "problem": "store unavailable, retry later"}]}
            code, body = await _readiness(http, url)
            assert code == 503 and body["failed"] == ["mongodb"]
            assert body["checks"]["mongodb"] == {"ok": False, "problem": "store unreachable"}
            assert (await http.get(f"{url}/healthz")).status_code == 200, "the process lives"

            store = start_mongo(store.port, tmp_path)  # same data directory
            assert await eventually(lambda: _ready(http, url), timeout=60)
            again = await http.post(f"{url}/v1/complaints", json=COMPLAINT)
            assert again.status_code == 202
    finally:
        await own_store.close()
        store.stop()


@pytest.mark.own_servers
async def test_readiness_follows_the_broker_down_and_back(settings: Settings,
                                                          tmp_path: Path) -> None:
    # A broker of its own: the test stops it and starts an empty one on the same port.
    broker = start_kafka(free_port(), tmp_path)
    settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.address,
                                           **EMBEDDED_KAFKA_SETTINGS})
    try:
        async with serving(create_router(settings), settings.router_port) as url, \
                httpx.AsyncClient(timeout=30) as http:
            ready = await eventually(lambda: _ready(http, url), timeout=60)
            assert ready and ready["checks"]["consumers"] == {"ok": True}

            broker.stop()
            down = await eventually(lambda: _not_ready_for(http, url, "kafka"), timeout=60)
            assert down and down["checks"]["kafka"]["problem"] == "broker unreachable"
            assert (await http.get(f"{url}/healthz")).status_code == 200, "the process lives"

            broker = start_kafka(broker.port, tmp_path)  # memory storage: the topics are gone
            await ensure_topics(settings, [*Topics.fixed(), Topics.agency("DLH")])
            assert await eventually(lambda: _ready(http, url), timeout=120)
    finally:
        broker.stop()


async def test_consumers_without_partitions_are_not_ready(settings: Settings) -> None:
    """Before the group assigns partitions (here: never, the app is not started) the
    consumers check names each waiting subscriber."""
    app = create_router(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://router") as http:
        code, body = await _readiness(http, "http://router")
    assert code == 503
    assert "consumers" in body["failed"]
    assert Topics.RECEIVED in body["checks"]["consumers"]["problem"]
    assert Topics.REROUTE in body["checks"]["consumers"]["problem"]
