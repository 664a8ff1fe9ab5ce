"""Intake's tracking view is its own read model, fed by the SLA service's `ticket.changed`: it
keeps answering while the SLA service is down, never goes back to an older version, and the
replies the SLA service settled (applied or refused) are no longer republished."""

import asyncio
import json
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app as create_intake
from services.router.app import create_app as create_router
from services.sla.app import create_app as create_sla
from shared.contracts import Topics, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.outage_support import RECONCILE_SHORT
from tests.integration.support import eventually, produce, serving

pytestmark = pytest.mark.integration

COMPLAINT = {"channel": "web",
             "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"}


async def _view(http: httpx.AsyncClient, url: str, **where: Any) -> dict[str, Any] | None:
    response = await http.get(url)
    view: dict[str, Any] = response.json()
    return view if all(view.get(k) == v for k, v in where.items()) else None


def _changed(ticket_id: str, version: int, status: str, **data: Any) -> tuple[str, bytes]:
    event = {"id": f"changed-{ticket_id}-{version}", "type": "ticket.changed",
             "tenant": "kota-bengkulu", "ticket_id": ticket_id, "time": utc_now().isoformat(),
             "data": {"version": version, "status": status, "agency": "DLH",
                      "agency_name": "Dinas Lingkungan Hidup", "history": [], **data}}
    return ticket_id, json.dumps(event).encode()


async def test_the_view_follows_the_sla_and_keeps_answering_while_it_is_down(
        settings: Settings, accounts: Accounts) -> None:
    web = await accounts.channel("web")
    async with serving(create_intake(settings), settings.intake_port) as intake, \
            serving(create_router(settings), settings.router_port), \
            httpx.AsyncClient(timeout=30) as http:
        async with serving(create_sla(settings), settings.sla_port):
            posted = (await http.post(f"{intake}/v1/complaints", json=COMPLAINT,
                                      headers=web.headers)).json()
            url = f"{intake}/v1/complaints/{posted['ticket_id']}"
            routed = await eventually(lambda: _view(http, url, agency="DLH"), timeout=60)
        # The SLA service has stopped: intake answers from its own copy.
        while_down = await http.get(url, headers={"X-Tracking-Code": posted["tracking_code"]})
    assert routed is not None and routed["status"] == "assigned" and routed["deadlines"]
    assert while_down.status_code == 200
    assert while_down.json()["agency"] == "DLH" and while_down.json()["deadlines"] == routed["deadlines"]
    assert while_down.json()["text"] == COMPLAINT["text"]


async def test_a_reply_the_sla_refused_is_settled_and_not_published_again(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    web = await accounts.channel("web")
    settings = settings.model_copy(update=RECONCILE_SHORT)
    replies = mongo[settings.mongodb_database]["replies"]
    bootstrap = settings.kafka_bootstrap_servers
    async with serving(create_intake(settings), settings.intake_port) as intake, \
            httpx.AsyncClient(timeout=30) as http:
        posted = (await http.post(f"{intake}/v1/complaints", json=COMPLAINT,
                                  headers=web.headers)).json()
        ticket_id, url = posted["ticket_id"], f"{intake}/v1/complaints/{posted['ticket_id']}"
        await produce(bootstrap, Topics.CHANGES, [_changed(ticket_id, 2, "needs_info")])
        assert await eventually(lambda: _view(http, url, status="needs_info"), timeout=60)
        sent = await http.post(f"{url}/replies", json={"text": "Ini fotonya"},
                               headers={"X-Tracking-Code": posted["tracking_code"]})
        [reply] = await replies.find().to_list(None)
        # Meanwhile the agency resolved the ticket: the SLA service refuses the reply. An older
        # announcement arriving late changes nothing.
        await produce(bootstrap, Topics.CHANGES, [
            _changed(ticket_id, 3, "resolved", replies_refused=[reply["_id"]]),
            _changed(ticket_id, 1, "assigned")])
        settled = await eventually(lambda: replies.find_one({"settled_at": {"$ne": None}}),
                                   timeout=60)
        republished_then = settled["republished"] if settled and "republished" in settled else 0
        await asyncio.sleep(3 * RECONCILE_SHORT["reconcile_after_seconds"])
        later = await replies.find_one({"_id": reply["_id"]})
        view = (await http.get(url)).json()
        ready = (await http.get(f"{intake}/readyz")).json()
    assert sent.status_code == 202
    assert settled is not None and settled["outcome"] == "refused"
    assert later is not None and later.get("republished", 0) == republished_then, \
        "a settled reply is not published again"
    assert view["status"] == "resolved", "the newest version wins"
    assert ready["checks"]["reply_reconciliation"] == {"ok": True}
