"""An officer's update over HTTP races a re-routing of its ticket, against the embedded broker
and store: the update is checked against the ticket's agency, then the router hands the
ticket to another agency before the update is applied. It must not apply (the ticket is no
longer the officer's): 404, exactly as for a ticket the officer never had."""

import asyncio
from datetime import timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.sla import app as sla_app
from services.sla.store import TicketStore
from shared.contracts import Topics, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.sla_support import routed
from tests.integration.support import eventually, produce, serving

pytestmark = pytest.mark.integration


class RerouteAfterTheCheck(TicketStore):
    """Once armed, the next read of the ticket (the API's agency check) is answered with
    what was stored, and only after the router's re-routing of it to PUPR has landed."""

    armed: asyncio.Event | None = None
    bootstrap = ""

    async def get(self, ticket_id: str, *, tenant: str | None = None) -> Document | None:
        checked = await super().get(ticket_id, tenant=tenant)
        armed = type(self).armed
        if armed is None or not armed.is_set():
            return checked
        armed.clear()
        submitted = utc_now() - timedelta(minutes=1)
        await produce(type(self).bootstrap, Topics.ROUTED,
                      [routed(ticket_id, submitted, agency="PUPR", assignment=2)])

        async def rerouted() -> bool:
            now = await super(RerouteAfterTheCheck, self).get(ticket_id)
            return now is not None and now["agency"] == "PUPR"

        assert await eventually(rerouted, timeout=60)
        return checked


async def test_an_update_checked_against_one_agency_is_not_applied_after_a_rerouting(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts,
        monkeypatch: pytest.MonkeyPatch) -> None:
    db = mongo[settings.mongodb_database]
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    monkeypatch.setattr(sla_app, "TicketStore", RerouteAfterTheCheck)
    RerouteAfterTheCheck.bootstrap = settings.kafka_bootstrap_servers
    RerouteAfterTheCheck.armed = asyncio.Event()
    async with serving(sla_app.create_app(settings), settings.sla_port) as url, \
            httpx.AsyncClient(headers=officer.headers, timeout=90) as http:
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED,
                      [routed("T-R", utc_now() - timedelta(minutes=1))])

        async def opened() -> bool:
            return (await http.get(f"{url}/v1/tickets/T-R")).status_code == 200

        assert await eventually(opened, timeout=60)
        RerouteAfterTheCheck.armed.set()
        answer = await http.post(f"{url}/v1/tickets/T-R/events",
                                 json={"action": "resolved", "note": "Sudah diangkut"})
        after = await http.get(f"{url}/v1/tickets/T-R")
    ticket = await db["tickets"].find_one({"_id": "T-R"})
    assert ticket is not None
    assert answer.status_code == 404, answer.text
    assert answer.json()["detail"] == "no ticket T-R"
    assert after.status_code == 404  # now PUPR's
    assert ticket["agency"] == "PUPR" and ticket["status"] == "assigned"
    assert [h["action"] for h in ticket["history"]] == ["assigned", "rerouted"]
    assert ticket["resolved_at"] is None
