"""The inbox read model (``inbox`` collection, one small entry per open ticket) stays in step
with the tickets through every change the SLA service writes: opened, updated, paused,
picked up, rejected, re-routed to another agency (withdrawn from the first), resolved; a
write lost between the ticket and its entry heals on redelivery; an empty model is filled
from the open tickets at start. Against the embedded store."""

from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from services.sla.flows import Sla
from shared.contracts import TicketUpdate, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.sla_support import routed_envelope, sla_instance

pytestmark = pytest.mark.integration


async def entry(sla: Sla, ticket_id: str) -> Document | None:
    return await sla.store.inbox.find_one({"_id": ticket_id})


async def ticket(sla: Sla, ticket_id: str) -> Document:
    found = await sla.store.get(ticket_id)
    assert found is not None
    return found


async def test_the_entry_follows_the_ticket_from_opening_to_resolution(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    now = utc_now()
    async with sla_instance(settings, mongo) as sla:
        await sla.open_tickets([routed_envelope("T-1", now - timedelta(hours=1), category="Drainase",
                                                location={"kelurahan": "Padang Jati"},
                                                text="Got mampet di Jl. Hibrida")])
        opened = await entry(sla, "T-1")
        stored = await ticket(sla, "T-1")
        assert opened is not None
        assert (opened["tenant"], opened["agency"], opened["status"], opened["category"],
                opened["kelurahan"], opened["version"]) == (
            stored["tenant"], "DLH", "assigned", "Drainase", "Padang Jati", stored["version"])
        assert opened["due_next_epoch"] == stored["due_next_at"].timestamp()
        assert opened["due_soon_epoch"] == stored["due_soon_at"].timestamp()
        assert opened["search"] == "t-1\x1fgot mampet di jl. hibrida"

        await sla.apply("T-1", TicketUpdate(action="acknowledged"), "u-1")
        assert (await entry(sla, "T-1") or {})["status"] == "acknowledged"
        await sla.apply("T-1", TicketUpdate(action="picked_up", actor="dlh.andi"), "u-2")
        assert (await entry(sla, "T-1") or {})["assignee"] == (await ticket(sla, "T-1"))["assignee"]
        await sla.apply("T-1", TicketUpdate(action="needs_info", note="Alamat?"), "u-3")
        paused = await entry(sla, "T-1")
        assert paused is not None and paused["status"] == "needs_info"
        assert paused["version"] == (await ticket(sla, "T-1"))["version"]

        await sla.apply("T-1", TicketUpdate(action="citizen_replied"), "u-4")
        await sla.apply("T-1", TicketUpdate(action="resolved", note="Sudah dibersihkan"), "u-5")
        assert (await ticket(sla, "T-1"))["status"] == "resolved"
        assert await entry(sla, "T-1") is None  # out of the inbox


async def test_a_rejected_ticket_stays_listed_until_it_is_re_routed_to_the_new_agency(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    now = utc_now()
    async with sla_instance(settings, mongo) as sla:
        await sla.open_tickets([routed_envelope("T-2", now)])
        await sla.apply("T-2", TicketUpdate(action="rejected", reason="Bukan tupoksi DLH",
                                            suggested_agency="PUPR"), "u-1")
        rejected = await entry(sla, "T-2")
        assert rejected is not None and (rejected["agency"], rejected["status"]) == ("DLH", "rejected")
        await sla.open_tickets([routed_envelope("T-2", now, agency="PUPR", assignment=2)])
        moved = await entry(sla, "T-2")
        assert moved is not None and (moved["agency"], moved["status"]) == ("PUPR", "assigned")
        assert moved["version"] == (await ticket(sla, "T-2"))["version"]


async def test_an_entry_lost_after_the_tickets_write_is_written_on_redelivery(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    now = utc_now()
    async with sla_instance(settings, mongo) as sla:
        await sla.open_tickets([routed_envelope("T-3", now)])
        # As if the process died between the ticket's insert and its entry's write.
        await sla.store.inbox.delete_one({"_id": "T-3"})
        await sla.open_tickets([routed_envelope("T-3", now)])  # the broker redelivers
        assert (await entry(sla, "T-3") or {}).get("agency") == "DLH"


async def test_an_older_state_never_overwrites_a_newer_entry(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    async with sla_instance(settings, mongo) as sla:
        await sla.open_tickets([routed_envelope("T-4", utc_now())])
        await sla.apply("T-4", TicketUpdate(action="acknowledged"), "u-1")
        newer = await entry(sla, "T-4")
        assert newer is not None
        # A slow writer syncing what it read before the acknowledgement: kept out.
        await sla.store.inbox.replace_one({"_id": "T-4"}, {**newer, "version": newer["version"] + 5})
        await sla.store.sync_inbox(["T-4"])
        assert (await entry(sla, "T-4") or {})["version"] == newer["version"] + 5


async def test_an_empty_model_is_filled_from_the_open_tickets_only(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    async with sla_instance(settings, mongo) as sla:
        await sla.open_tickets([routed_envelope("T-5", utc_now()), routed_envelope("T-6", utc_now())])
        await sla.apply("T-6", TicketUpdate(action="resolved", note="Selesai"), "u-1")
        await sla.store.inbox.delete_many({})
        assert await sla.store.backfill_inbox() == 1
        assert [doc["_id"] async for doc in sla.store.inbox.find({})] == ["T-5"]
        assert await sla.store.backfill_inbox() == 0  # not empty: nothing to do
