"""Poison records against the broker (embedded, or the test cluster): on every consumed topic
a 2 MB record, bytes that are not UTF-8, not JSON, JSON of the wrong shape and text over the
contract's limits are each dead-lettered exactly once, and the good records behind them on the
same partition are processed. A transient store failure retries the batch without re-applying
what was applied or dead-lettering twice."""

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaMessage
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect

from services.intake.app import create_app as create_intake
from services.router.app import create_app as create_router
from services.sla import handlers as sla_handlers
from services.sla.app import create_app as create_sla
from services.sla.store import TicketStore
from shared.contracts import Envelope, EventType, TicketUpdate, Topics, utc_now
from shared.kafka import Outgoing, batch_subscriber, consume_batch, ensure_topics, make_broker
from shared.mongo import Document
from shared.settings import Settings
from tests.conftest import CLUSTER_MESSAGE_MAX_BYTES
from tests.integration.auth_support import Accounts
from tests.integration.sla_support import (
    routed,
    routed_envelope,
    routed_event,
    sla_instance,
    update,
)
from tests.integration.support import eventually, read_topic, serving
from tests.integration.test_router import RULEBOOK, received, reroute_request

pytestmark = pytest.mark.integration

TWO_MB = 2_000_000
GOOD_TEXT = "Sampah di TPS belum diangkut seminggu"


class CountingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextmanager
def counted_log_lines() -> Iterator[CountingHandler]:
    """Warnings and errors logged meanwhile: a consumer stuck retrying a poison record logs
    thousands; one that dead-letters it logs a line per record."""
    handler = CountingHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


async def produce_to_partition_0(bootstrap: str, topic: str,
                                 messages: list[tuple[str, bytes]]) -> list[int]:
    """Send in order to one partition (so good records sit behind the poison) and return the
    offsets. The producer allows 4 MiB: a client other than Disposisi may well send 2 MB (and
    the test cluster's brokers accept it, see CLUSTER_MESSAGE_MAX_BYTES)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                max_request_size=CLUSTER_MESSAGE_MAX_BYTES)
    await producer.start()
    try:
        offsets = []
        for key, value in messages:
            meta = await producer.send_and_wait(topic, value, key=key.encode(), partition=0)
            offsets.append(meta.offset)
        return offsets
    finally:
        await producer.stop()


def envelope_bytes(event_type: str, ticket_id: str, data: Any) -> bytes:
    return json.dumps({"id": f"poison-{ticket_id}", "type": event_type, "tenant": "kota-bengkulu",
                       "ticket_id": ticket_id, "data": data}).encode()


def shapeless(event_type: str) -> list[tuple[str, bytes]]:
    """Records no consumer can decode, whatever its topic."""
    return [
        ("P-utf8", b"\xff\xfe\xfa not utf-8 \xc3\x28"),
        ("P-json", b'{"id": "x", "type": '),
        ("P-array", b"[1, 2, 3]"),
        ("P-shape", envelope_bytes(event_type, "P-shape", {"unexpected": True})),
        ("P-type", envelope_bytes("ticket.escalated", "P-type", {})),
    ]


async def dead_letters_of(settings: Settings, topic: str, expect: int) -> list[dict[str, Any]]:
    """Every dead letter about ``topic``, read with a settle time so a duplicate shows."""
    letters = await read_topic(settings.kafka_bootstrap_servers, Topics.DEADLETTER, expect=expect,
                               timeout=60, settle=4.0)
    return [letter["data"] for letter in letters if letter["data"]["source_topic"] == topic]


def assert_each_dead_lettered_once(letters: list[dict[str, Any]], poison: list[tuple[str, bytes]],
                                   offsets: list[int], settings: Settings) -> None:
    by_offset = {letter["offset"]: letter for letter in letters}
    assert sorted(letter["offset"] for letter in letters) == sorted(offsets), \
        "each poison record is dead-lettered exactly once"
    for (key, value), offset in zip(poison, offsets, strict=True):
        letter = by_offset[offset]
        assert letter["partition"] == 0
        assert letter["key"] == key
        assert letter["reason"]
        assert letter["payload_size"] == len(value)
        assert letter["payload_sha256"] == hashlib.sha256(value).hexdigest()
        assert len(letter["payload"].encode()) <= settings.deadletter_payload_bytes
        assert letter["payload_truncated"] == (len(value) > settings.deadletter_payload_bytes)


def assert_oversized_reason(letters: list[dict[str, Any]], offset: int) -> None:
    [letter] = [letter for letter in letters if letter["offset"] == offset]
    assert "bytes" in letter["reason"] and "limit" in letter["reason"], letter["reason"]


@pytest.fixture
def router_settings(settings: Settings, tmp_path: Path) -> Settings:
    rulebook = tmp_path / "rulebook.yaml"
    rulebook.write_text(RULEBOOK)
    return settings.model_copy(update={"rulebook": rulebook})


async def test_intake_dead_letters_each_poison_submission_once(settings: Settings) -> None:
    submission = {"channel": "web", "text": GOOD_TEXT}
    poison = [
        ("P-big", envelope_bytes("complaint.submitted", "P-big",
                                 {**submission, "text": "sampah " * (TWO_MB // 7)})),
        ("P-long", envelope_bytes("complaint.submitted", "P-long",
                                  {**submission, "text": "sampah " * 1000})),
        *shapeless("complaint.submitted"),
    ]
    good = ("S-good", json.dumps({"id": "sub-good", "type": "complaint.submitted",
                                  "tenant": "kota-bengkulu", "data": submission}).encode())
    bootstrap = settings.kafka_bootstrap_servers
    await ensure_topics(settings, Topics.fixed())
    with counted_log_lines() as log_lines:
        async with serving(create_intake(settings), settings.intake_port):
            offsets = await produce_to_partition_0(bootstrap, Topics.SUBMITTED, [*poison, good])
            [complaint] = await read_topic(bootstrap, Topics.RECEIVED, expect=1, timeout=60)
            letters = await dead_letters_of(settings, Topics.SUBMITTED, expect=len(poison))
    assert complaint["data"]["text"] == GOOD_TEXT
    assert_each_dead_lettered_once(letters, poison, offsets[:-1], settings)
    assert_oversized_reason(letters, offsets[0])
    assert log_lines.count < 5 * len(poison)


async def test_router_dead_letters_poison_on_both_topics_once(router_settings: Settings) -> None:
    settings = router_settings
    big = "sampah " * (TWO_MB // 7)
    received_poison = [
        ("P-big", received("P-big", big)),
        ("P-long", received("P-long", "sampah " * 1000)),
        *shapeless("complaint.received"),
    ]
    rejected = {"cause": "rejected", "actor": "petugas DLH", "reason": "bukan tupoksi kami"}
    reroute_poison = [
        ("P-big", reroute_request("P-big", {**rejected, "reason": big}, agency="DLH",
                                  rejected_by=["DLH"])),
        ("P-long", reroute_request("P-long", {**rejected, "reason": "x" * 5000}, agency="DLH",
                                   rejected_by=["DLH"])),
        *shapeless("ticket.reroute_requested"),
    ]
    bootstrap = settings.kafka_bootstrap_servers
    await ensure_topics(settings, Topics.fixed())
    with counted_log_lines() as log_lines:
        async with serving(create_router(settings), settings.router_port):
            received_offsets = await produce_to_partition_0(
                bootstrap, Topics.RECEIVED, [*received_poison, ("G-1", received("G-1", GOOD_TEXT))])
            reroute_offsets = await produce_to_partition_0(bootstrap, Topics.REROUTE, [
                *reroute_poison,
                ("G-2", reroute_request("G-2", {**rejected, "suggested_agency": "DAMKAR"},
                                        agency="DLH", rejected_by=["DLH"]))])
            decided = await read_topic(bootstrap, Topics.ROUTED, expect=2, timeout=60)
            expected = len(received_poison) + len(reroute_poison)
            from_received = await dead_letters_of(settings, Topics.RECEIVED, expect=expected)
            from_reroute = await dead_letters_of(settings, Topics.REROUTE, expect=expected)
    assert {(e["ticket_id"], e["data"]["agency"]) for e in decided} == {("G-1", "DLH"),
                                                                         ("G-2", "DAMKAR")}
    assert_each_dead_lettered_once(from_received, received_poison, received_offsets[:-1], settings)
    assert_each_dead_lettered_once(from_reroute, reroute_poison, reroute_offsets[:-1], settings)
    assert_oversized_reason(from_received, received_offsets[0])
    assert_oversized_reason(from_reroute, reroute_offsets[0])
    assert log_lines.count < 5 * expected


async def test_sla_dead_letters_poison_on_both_topics_once(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    now = utc_now()
    big_routed = routed_event("P-big", now, text="sampah " * (TWO_MB // 7))
    mb_routed = routed_event("P-mb", now, text="sampah " * (900_000 // 7))  # under the byte limit
    routed_poison = [
        ("P-big", json.dumps(big_routed).encode()),
        ("P-mb", json.dumps(mb_routed).encode()),
        *shapeless("ticket.routed"),
    ]
    update_poison = [
        update("U-1", "u-big", "responded", note="x" * TWO_MB),
        update("U-1", "u-long", "responded", note="x" * 5000),
        *shapeless("ticket.update"),
    ]
    bootstrap = settings.kafka_bootstrap_servers
    db = mongo[settings.mongodb_database]
    await ensure_topics(settings, Topics.fixed())
    with counted_log_lines() as log_lines:
        async with serving(create_sla(settings), settings.sla_port) as url, \
                httpx.AsyncClient(base_url=url, headers=officer.headers) as http:
            routed_offsets = await produce_to_partition_0(
                bootstrap, Topics.ROUTED, [*routed_poison, routed("U-1", now), routed("G-1", now)])
            # The updates' ticket is open first: an update read before its ticket is parked and
            # applied later, an ordering this test is not about (see the issue 8 note).
            assert await eventually(lambda: db["tickets"].find_one({"_id": "U-1"}), timeout=60)
            update_offsets = await produce_to_partition_0(bootstrap, Topics.UPDATES, [
                update("U-1", "u-ack", "acknowledged"), *update_poison,
                update("U-1", "u-reply", "responded", note="Truk dijadwalkan besok")])

            async def responded() -> bool:
                response = await http.get("/v1/tickets/U-1")
                return response.status_code == 200 and response.json()["status"] == "responded"

            assert await eventually(responded, timeout=60)
            assert await eventually(lambda: db["tickets"].find_one({"_id": "G-1"}), timeout=60)
            expected = len(routed_poison) + len(update_poison)
            from_routed = await dead_letters_of(settings, Topics.ROUTED, expect=expected)
            from_updates = await dead_letters_of(settings, Topics.UPDATES, expect=expected)
            history = (await http.get("/v1/tickets/U-1")).json()["history"]
    assert await db["tickets"].count_documents({"_id": {"$in": ["P-big", "P-mb"]}}) == 0
    assert [h["action"] for h in history if h["action"] != "assigned"] == ["acknowledged",
                                                                            "responded"]
    assert_each_dead_lettered_once(from_routed, routed_poison, routed_offsets[:-2], settings)
    assert_each_dead_lettered_once(from_updates, update_poison, update_offsets[1:-1], settings)
    assert_oversized_reason(from_routed, routed_offsets[0])
    assert_oversized_reason(from_updates, update_offsets[1])
    [mb_letter] = [letter for letter in from_routed if letter["offset"] == routed_offsets[1]]
    assert "data.text" in mb_letter["reason"]
    assert log_lines.count < 5 * expected


class FlakyTicketStore(TicketStore):
    """The real store, losing its connection once when it opens the first batch of tickets and
    once on the first write of ticket F-2: transient failures in the middle of a batch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failed: list[str] = []

    def _fail_once(self, what: str) -> None:
        if what not in self.failed:
            self.failed.append(what)
            raise AutoReconnect(f"connection lost while writing {what} (injected)")

    async def add_new(self, tickets: Sequence[Document]) -> int:
        self._fail_once("new tickets")
        return await super().add_new(tickets)

    async def save_if_unchanged(self, ticket: Document, version: int) -> bool:
        if ticket["_id"] == "F-2":
            self._fail_once("F-2")
        return await super().save_if_unchanged(ticket, version)


@pytest.fixture
async def flaky_sla(settings: Settings, mongo: AsyncMongoClient[Document]) -> AsyncIterator[
        FlakyTicketStore]:
    """SLA subscribers on the real broker and store, with tickets F-1 and F-2 open; then the
    store starts failing (once each) as FlakyTicketStore says."""
    async with sla_instance(settings, mongo) as sla:
        now = utc_now()
        await sla.open_tickets([routed_envelope(t, now) for t in ("F-1", "F-2")])
        store = FlakyTicketStore(mongo[settings.mongodb_database])
        sla.store = store
        broker = make_broker(settings, "sla-flaky")
        sla_handlers.register(broker, sla)
        await ensure_topics(settings, Topics.fixed())
        await broker.start()
        try:
            yield store
        finally:
            await broker.stop()


async def test_a_transient_failure_retries_the_batch_without_repeating_effects(
        flaky_sla: FlakyTicketStore, settings: Settings) -> None:
    store, bootstrap = flaky_sla, settings.kafka_bootstrap_servers
    routed_offsets = await produce_to_partition_0(bootstrap, Topics.ROUTED, [
        ("F-3", b"\xff not a routing decision"), routed("F-3", utc_now())])
    update_offsets = await produce_to_partition_0(bootstrap, Topics.UPDATES, [
        update("F-1", "f1-ack", "acknowledged"), ("F-1", b"\xff not an update"),
        update("F-2", "f2-ack", "acknowledged")])

    async def all_done() -> bool:
        tickets = [await store.get(t) for t in ("F-1", "F-2", "F-3")]
        return all(t is not None for t in tickets) and [t["status"] for t in tickets if t] == [
            "acknowledged", "acknowledged", "assigned"]

    assert await eventually(all_done, timeout=60)
    letters = await read_topic(bootstrap, Topics.DEADLETTER, expect=2, timeout=60, settle=4.0)
    assert sorted(store.failed) == ["F-2", "new tickets"], "both batches met a failure and retried"
    assert sorted((d["data"]["source_topic"], d["data"]["offset"]) for d in letters) == sorted(
        [(Topics.ROUTED, routed_offsets[0]), (Topics.UPDATES, update_offsets[1])]), \
        "each poison record is dead-lettered once, though its batch was delivered twice"
    first = await store.get("F-1")
    assert first is not None
    assert first["applied_events"].count("f1-ack") == 1
    assert [h["action"] for h in first["history"]].count("acknowledged") == 1


async def test_a_reroute_from_an_agency_without_a_queue_does_not_block_the_next(
        router_settings: Settings) -> None:
    """A ticket held by an agency the rulebook no longer knows (no queue topic exists) is
    re-routed, its withdrawal lands on a queue made for it, and the next request is served."""
    settings = router_settings
    bootstrap = settings.kafka_bootstrap_servers
    rejected = {"cause": "rejected", "actor": "petugas", "reason": "bukan tupoksi kami"}
    await ensure_topics(settings, Topics.fixed())
    async with serving(create_router(settings), settings.router_port):
        await produce_to_partition_0(bootstrap, Topics.REROUTE, [
            ("G-9", reroute_request("G-9", rejected, agency="GONE", rejected_by=["GONE"])),
            ("G-10", reroute_request("G-10", rejected, agency="DAMKAR", rejected_by=["DAMKAR"]))])
        decided = await read_topic(bootstrap, Topics.ROUTED, expect=2, timeout=60)
        [withdrawn] = await read_topic(bootstrap, Topics.agency("GONE"), expect=1, timeout=30)
        letters = await read_topic(bootstrap, Topics.DEADLETTER, expect=1, timeout=2)
    assert sorted((e["ticket_id"], e["data"]["agency"]) for e in decided) == [
        ("G-10", "DLH"), ("G-9", "DLH")]
    assert withdrawn["type"] == "ticket.withdrawn"
    assert letters == []


async def test_a_record_its_handler_refuses_costs_one_letter_and_the_rest_are_handled(
        settings: Settings) -> None:
    """The shared consumer on a real broker: when handling a batch fails because of one
    record's content, the others are handled one by one and only that record is
    dead-lettered; a store failure first retries the whole batch."""
    topic = "disposisi.test.poison"
    bootstrap = settings.kafka_bootstrap_servers
    await ensure_topics(settings, [topic, Topics.DEADLETTER])
    handled: list[str] = []
    failures: list[str] = []

    async def handle(events: list[Envelope[TicketUpdate]]) -> list[Outgoing]:
        if not failures:
            failures.append("store")
            raise AutoReconnect("connection lost (injected)")
        if any(e.ticket_id == "BAD" for e in events):
            failures.append("BAD")
            raise LookupError("no agency XYZ in the rulebook")
        handled.extend(str(e.ticket_id) for e in events)
        return []

    broker = make_broker(settings, "poison-test")

    @batch_subscriber(broker, topic, group_id="poison-test", settings=settings,
                      description="test")
    async def consume(body: list[bytes], message: KafkaMessage) -> None:
        await consume_batch(broker, message, TicketUpdate, EventType.TICKET_UPDATE, handle,
                            settings=settings, service="test")

    await broker.start()
    try:
        offsets = await produce_to_partition_0(bootstrap, topic, [
            update(t, f"e-{t}", "acknowledged") for t in ("A", "BAD", "C")])
        async def both_handled() -> bool:
            return set(handled) == {"A", "C"}

        assert await eventually(both_handled, timeout=60)
        letters = await dead_letters_of(settings, topic, expect=1)
    finally:
        await broker.stop()
    assert sorted(set(handled)) == ["A", "C"]
    assert failures[0] == "store" and "BAD" in failures
    assert [(letter["offset"], letter["reason"]) for letter in letters] == [
        (offsets[1], "not processed: LookupError: no agency XYZ in the rulebook")]
