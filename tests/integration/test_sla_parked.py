"""Updates read before their ticket opens, against the embedded broker and store: a ticket's
updates are applied in the order they were produced, however the routed and the updates
consumers interleave, and a crash between applying a parked update and unparking it is made
good by redelivery without applying anything twice."""

import json
from collections.abc import Sequence
from datetime import timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect

from services.sla import app as sla_app
from services.sla.flows import Sla
from services.sla.store import TicketStore
from shared.contracts import TicketUpdate, Topics, utc_now
from shared.kafka import Incoming
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.sla_support import routed, routed_envelope, sla_instance, update
from tests.integration.support import at_least, eventually, produce, read_topic, serving

pytestmark = pytest.mark.integration


def _record(offset: int, ticket_id: str, event_id: str, action: str, **fields: str) -> Incoming:
    """An update as the updates consumer reads it: a ticket's updates share its partition."""
    key, value = update(ticket_id, event_id, action, **fields)
    return Incoming(topic=Topics.UPDATES, partition=0, offset=offset, key=key.encode(), value=value)


async def _take(sla: Sla, record: Incoming) -> None:
    """What the updates consumer does with one record (decoding aside)."""
    event = json.loads(record.value)
    await sla.take_update(record, event["ticket_id"], TicketUpdate.model_validate(event["data"]),
                          event["id"])


async def test_an_update_read_after_the_ticket_opens_waits_for_the_parked_ones(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """``acknowledged`` is read before the routing decision and parked. The routed consumer
    opens the ticket; before it applies the parked update, the updates consumer reads the
    next one, ``responded``. Applied in that order the ticket refused ``acknowledged`` (a
    responded ticket cannot be acknowledged): it was lost to a dead letter. Produced order
    must win: acknowledged, then responded, no dead letter."""
    db = mongo[settings.mongodb_database]
    async with sla_instance(settings, mongo) as sla:
        await _take(sla, _record(10, "T-9", "u-1", "acknowledged"))
        assert await db["parked_updates"].count_documents({}) == 1
        await sla.open_tickets([routed_envelope("T-9", utc_now() - timedelta(seconds=1))])
        await _take(sla, _record(11, "T-9", "u-2", "responded", note="Dijadwalkan"))
        refused = await sla.apply_parked(["T-9"])  # the routed consumer goes on
        ticket = await sla.store.get("T-9")
    letters = await read_topic(settings.kafka_bootstrap_servers, Topics.DEADLETTER, expect=1,
                               timeout=3)
    assert ticket is not None
    assert [h["action"] for h in ticket["history"]] == ["assigned", "acknowledged", "responded"]
    assert ticket["status"] == "responded"
    assert ticket["applied_events"] == ["u-1", "u-2"]
    assert (refused, [letter["data"]["reason"] for letter in letters]) == (0, [])
    assert await db["parked_updates"].count_documents({}) == 0


class StoreLostOnUnpark(TicketStore):
    """The store goes away once, right after the first parked update took effect and before
    it is unparked: the routed consumer's batch fails there and is redelivered."""

    crashed = False

    async def unpark(self, ids: Sequence[str]) -> None:
        if ids and not type(self).crashed:
            type(self).crashed = True
            raise AutoReconnect("store lost (injected between apply and unpark)")
        await super().unpark(ids)


async def test_a_crash_between_applying_and_unparking_is_made_good_by_redelivery(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two updates wait for their ticket. The routed decision arrives; the SLA service applies
    ``acknowledged`` and loses the store before unparking it, so its routed batch is not
    committed and is read again: ``acknowledged`` is not applied twice, ``responded``
    follows it, nothing stays parked and nothing is dead-lettered."""
    bootstrap = settings.kafka_bootstrap_servers
    db = mongo[settings.mongodb_database]
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    monkeypatch.setattr(sla_app, "TicketStore", StoreLostOnUnpark)
    StoreLostOnUnpark.crashed = False
    async with serving(sla_app.create_app(settings), settings.sla_port) as url, \
            httpx.AsyncClient(headers=officer.headers) as http:
        await produce(bootstrap, Topics.UPDATES, [
            update("T-C", "u-1", "acknowledged"), update("T-C", "u-2", "responded", note="Besok")])
        assert await eventually(lambda: at_least(db["parked_updates"], 2))
        await produce(bootstrap, Topics.ROUTED, [routed("T-C", utc_now())])

        async def unparked() -> bool:
            return StoreLostOnUnpark.crashed and \
                await db["parked_updates"].count_documents({}) == 0

        assert await eventually(unparked, timeout=60)
        ticket = (await http.get(f"{url}/v1/tickets/T-C")).json()
        letters = await read_topic(bootstrap, Topics.DEADLETTER, expect=1, timeout=3)
    assert [h["action"] for h in ticket["history"]] == ["assigned", "acknowledged", "responded"]
    assert [h["event_id"] for h in ticket["history"][1:]] == ["u-1", "u-2"]
    assert ticket["status"] == "responded"
    assert letters == []
