"""The SLA service announces each change of a ticket as `ticket.changed`: the public state
only (no officer's name, no internal note), under an id derived from ticket and version, again
when it reads an update it already applied; a citizen's reply it refuses is announced as
refused, so intake stops republishing it, and a repeat of it is not dead-lettered again."""

import pytest
from pymongo import AsyncMongoClient

from services.sla.flows import AlreadyRefused, UpdateRefused
from shared.contracts import TicketUpdate, Topics, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.sla_support import routed_envelope, sla_instance
from tests.integration.support import read_topic

pytestmark = pytest.mark.integration


async def test_each_change_is_announced_with_the_public_state_only(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    async with sla_instance(settings, mongo) as sla:
        await sla.open_tickets([routed_envelope("T-1", utc_now())])
        await sla.apply("T-1", TicketUpdate(action="note", actor="petugas.andi",
                                            note="Warga ini sering lapor, cek dulu"), "u-1")
        await sla.apply("T-1", TicketUpdate(action="needs_info", actor="petugas.andi",
                                            note="Mohon kirim foto lokasi"), "u-2")
        await sla.apply("T-1", TicketUpdate(action="citizen_replied", actor="citizen",
                                            note="Sudah saya kirim"), "reply-1")
        await sla.apply("T-1", TicketUpdate(action="citizen_replied", actor="citizen",
                                            note="Sudah saya kirim"), "reply-1")  # a repeat
        changes = await read_topic(settings.kafka_bootstrap_servers, Topics.CHANGES, expect=5,
                                   timeout=60, settle=1)

    versions = [c["data"]["version"] for c in changes]
    assert sorted(set(versions)) == [1, 2, 3, 4], "one announcement per version"
    last = [c for c in changes if c["data"]["version"] == 4]
    assert len(last) == 2 and len({c["id"] for c in last}) == 1, "re-announced under the same id"
    state = last[0]["data"]
    assert state["status"] == "assigned" and state["agency"] == "DLH"
    assert state["replies_applied"] == ["reply-1"] and state["replies_refused"] == []
    assert [s["action"] for s in state["history"]] == ["assigned", "needs_info", "citizen_replied"]
    assert [s["note"] for s in state["history"]][1:] == ["Mohon kirim foto lokasi", "Sudah saya kirim"]
    assert "petugas.andi" not in str(changes) and "sering lapor" not in str(changes)


async def test_a_refused_reply_is_announced_as_refused_and_refused_again_quietly(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    reply = TicketUpdate(action="citizen_replied", actor="citizen", note="Ini fotonya")
    async with sla_instance(settings, mongo) as sla:
        await sla.open_tickets([routed_envelope("T-2", utc_now())])
        with pytest.raises(UpdateRefused) as first:
            await sla.apply("T-2", reply, "reply-2")  # nobody asked: the ticket is not paused
        with pytest.raises(AlreadyRefused):
            await sla.apply("T-2", reply, "reply-2")  # republished by intake
        changes = await read_topic(settings.kafka_bootstrap_servers, Topics.CHANGES, expect=3,
                                   timeout=60, settle=1)
        ticket = await sla.store.get("T-2")

    assert not isinstance(first.value, AlreadyRefused), "the first refusal is dead-lettered"
    assert ticket is not None and ticket["status"] == "assigned" and not ticket["pauses"]
    newest = max(changes, key=lambda c: c["data"]["version"])["data"]
    assert newest["replies_refused"] == ["reply-2"] and newest["replies_applied"] == []
    assert [s["action"] for s in newest["history"]] == ["assigned"]
