"""Store round trips on intake's write path, counted by a command listener on the real store:
a new complaint costs one insert (no read-back), a duplicate key still answers with the earlier
complaint, the outbox marks a batch published without reading it back, concurrent writers'
events are published in batches, a channel's API key is not looked up on every post (nor once
per request of a burst), and the audit log's writer does not look for the chain's end it wrote."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient

from services.intake.domain import fingerprint, hash_tracking_code
from services.intake.store import Accepted, ComplaintStore, TrackedTicket, TrackingStore
from shared.accounts import AccountStore
from shared.audit import Actor, AuditAction, AuditRecord
from shared.audit_store import AuditLog
from shared.auth import Authenticator
from shared.contracts import Complaint, ComplaintSubmission, EventType, Topics, envelope, utc_now
from shared.kafka import ensure_topics, make_broker
from shared.mongo import Document
from shared.outbox import OutboxRelay, PublishQueue, outbox_fields
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.support import Commands, read_topic

pytestmark = pytest.mark.integration
TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"


@pytest.fixture
async def listened(settings: Settings) -> AsyncIterator[tuple[AsyncMongoClient[Document], Commands]]:
    commands = Commands()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, event_listeners=[commands])
    try:
        yield client, commands
    finally:
        await client.close()


def accepted(settings: Settings, key: str, ticket_id: str) -> Accepted:
    content = ComplaintSubmission(channel="web", text=TEXT)
    complaint = Complaint(ticket_id=ticket_id, channel="web", text=TEXT, submitted_at=utc_now())
    return Accepted(key=key, complaint=complaint, fingerprint=fingerprint(content),
                    tenant=settings.tenant, tracking_code_hash=hash_tracking_code("code"))


def never_reissued(item: Accepted) -> Accepted:
    raise AssertionError(f"{item.key} was reissued")


async def test_new_complaints_cost_one_insert_and_duplicates_answer_with_the_earlier_one(
        settings: Settings, listened: tuple[AsyncMongoClient[Document], Commands]) -> None:
    client, commands = listened
    store = ComplaintStore(client[settings.mongodb_database], settings)
    await store.ensure_indexes()
    commands.clear()
    first = await store.save([accepted(settings, f"k{i}", f"BKL-{i}") for i in range(5)],
                             never_reissued)
    assert commands.sent == [("insert", "complaints")], "a new complaint is one round trip"
    assert [first[f"k{i}"]["duplicate"] for i in range(5)] == [False] * 5
    stored = await client[settings.mongodb_database]["complaints"].find_one({"_id": "k3"})
    assert stored is not None
    assert {k: v for k, v in first["k3"].items() if k != "duplicate"} == stored, \
        "what save returns is what the store holds"

    commands.clear()
    again = await store.save([accepted(settings, "k1", "BKL-91"), accepted(settings, "k9", "BKL-9")],
                             never_reissued)
    assert commands.sent == [("insert", "complaints"), ("find", "complaints")]
    assert (again["k1"]["duplicate"], again["k1"]["ticket_id"]) == (True, "BKL-1")
    assert (again["k9"]["duplicate"], again["k9"]["ticket_id"]) == (False, "BKL-9")


async def test_a_colliding_tracking_number_is_reissued(
        settings: Settings, listened: tuple[AsyncMongoClient[Document], Commands]) -> None:
    client, _ = listened
    store = ComplaintStore(client[settings.mongodb_database], settings)
    await store.ensure_indexes()
    await store.save([accepted(settings, "a", "BKL-1")], never_reissued)

    def reissue(item: Accepted) -> Accepted:
        return accepted(settings, item.key, "BKL-2")

    saved = await store.save([accepted(settings, "b", "BKL-1")], reissue)
    assert (saved["b"]["ticket_id"], saved["b"]["duplicate"]) == ("BKL-2", False)


def outbox_doc(settings: Settings, number: int, owner: str, lease_seconds: float = 60) -> Document:
    complaint = Complaint(ticket_id=f"BKL-{number}", channel="web", text=TEXT, submitted_at=utc_now())
    event = envelope(complaint, type=EventType.COMPLAINT_RECEIVED, tenant=settings.tenant,
                     ticket_id=complaint.ticket_id, event_id=f"e-{number}")
    return {"_id": f"BKL-{number}", **outbox_fields(Topics.RECEIVED, event,
                                                     lease_seconds=lease_seconds,
                                                     owner=owner, now=utc_now())}


async def test_a_batch_is_sent_and_marked_in_one_round_trip_held_first_when_its_lease_is_old(
        settings: Settings, listened: tuple[AsyncMongoClient[Document], Commands]) -> None:
    client, commands = listened
    await ensure_topics(settings, [Topics.RECEIVED])
    broker = make_broker(settings, "round-trips-test")
    await broker.start()
    outbox = client[settings.mongodb_database]["outbox"]
    relay = OutboxRelay(outbox, broker, lease_seconds=60, owner="me")
    try:
        docs = [outbox_doc(settings, i, "me") for i in range(10)]
        await outbox.insert_many([dict(d) for d in docs])
        commands.clear()
        await relay.publish(docs)
        assert commands.on("outbox") == ["update"], "just written and leased: only marked"
        assert await outbox.count_documents({"published": True}) == 10

        # Leased to this writer, but most of the lease has gone (a slow hand-over): a sweep
        # may take such documents soon, so they are held before they are sent.
        aging = [outbox_doc(settings, i, "me", lease_seconds=10) for i in range(40, 45)]
        await outbox.insert_many([dict(d) for d in aging])
        commands.clear()
        await relay.publish(aging)
        assert commands.on("outbox") == ["update", "update"], "hold, then mark published"
        assert await outbox.count_documents({"published": True}) == 15

        queue = PublishQueue(relay)
        later = [outbox_doc(settings, i, "me") for i in range(10, 40)]
        await outbox.insert_many([dict(d) for d in later])
        commands.clear()
        for doc in later:  # thirty writers hand over one each, without waiting
            queue.put([doc])
        await queue.flush()
        assert await outbox.count_documents({"published": True}) == 45
        assert len(commands.on("outbox")) <= 2, "thirty events go out in one or two batches"
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.RECEIVED, expect=45)
        assert sorted(e["id"] for e in events) == sorted(f"e-{i}" for i in range(45))
    finally:
        await broker.stop()


def authenticator(settings: Settings, client: AsyncMongoClient[Document], *,
                  cache_seconds: float) -> Authenticator:
    return Authenticator(settings.model_copy(update={"api_key_cache_seconds": cache_seconds}),
                         AccountStore(client[settings.mongodb_database]))


async def test_an_api_key_is_checked_once_then_trusted_for_a_while(
        settings: Settings, listened: tuple[AsyncMongoClient[Document], Commands],
        accounts: Accounts) -> None:
    client, commands = listened
    key = (await accounts.channel("web")).headers["X-API-Key"]
    cached = authenticator(settings, client, cache_seconds=3600.0)
    uncached = authenticator(settings, client, cache_seconds=0.0)
    commands.clear()
    assert [(await cached.from_key(key)) is not None for _ in range(5)] == [True] * 5
    assert commands.on("api_keys") == ["find"]
    commands.clear()
    assert [(await uncached.from_key(key)) is not None for _ in range(3)] == [True] * 3
    assert commands.on("api_keys") == ["find"] * 3
    assert await cached.from_key(key[:-2] + "xx") is None  # a wrong key is never cached as valid


async def test_concurrent_requests_with_one_api_key_wait_for_one_lookup(
        settings: Settings, listened: tuple[AsyncMongoClient[Document], Commands],
        accounts: Accounts) -> None:
    client, commands = listened
    key = (await accounts.channel("web")).headers["X-API-Key"]
    auth = authenticator(settings, client, cache_seconds=3600.0)
    commands.clear()
    requests = [asyncio.create_task(auth.from_key(key)) for _ in range(8)]
    await asyncio.sleep(0)  # all eight are waiting for the lookup now
    requests[0].cancel()  # one client goes away: the others still get their answer
    answers = await asyncio.gather(*requests[1:])
    assert [a is not None and a.name == "web" for a in answers] == [True] * 7
    assert commands.on("api_keys") == ["find"], "a burst of one key's requests is one lookup"
    assert requests[0].cancelled()

    commands.clear()
    wrong = key[:-2] + "xx"
    assert await asyncio.gather(*(auth.from_key(wrong) for _ in range(4))) == [None] * 4
    assert commands.on("api_keys") == ["find"]
    assert await auth.from_key(wrong) is None
    assert commands.on("api_keys") == ["find", "find"], "a refused key is asked again later"


def audit_record(key: str) -> AuditRecord:
    return AuditRecord(tenant="kota-bengkulu", key=key, action=AuditAction.SUBMISSION,
                       ticket_id=key, actor=Actor.channel("web"), after={"status": "received"})


async def test_the_audit_writer_holding_the_chains_end_appends_without_looking_for_it(
        settings: Settings, listened: tuple[AsyncMongoClient[Document], Commands]) -> None:
    client, commands = listened
    db = client[settings.mongodb_database]
    log, other = AuditLog(db), AuditLog(db)  # two processes sharing the chain (intake, SLA)
    await log.append([audit_record("s-1")])  # a cold start looks for the end
    commands.clear()
    await log.append([audit_record("s-2"), audit_record("s-3")])
    assert commands.on("audit_log") == ["insert"], "it wrote the end itself: no lookup"
    commands.clear()
    await asyncio.gather(*(log.append([audit_record(f"c-{i}")]) for i in range(5)))
    assert commands.on("audit_log") == ["insert"] * 5, "its concurrent appends take turns"

    await other.append([audit_record("u-1")])  # another writer moves the end
    commands.clear()
    await log.append([audit_record("s-4")])
    assert commands.on("audit_log") == ["insert", "find", "insert"], \
        "the entry in the way stops the insert; it looks, then appends after it"
    commands.clear()
    await log.append([audit_record("s-5")])
    assert commands.on("audit_log") == ["find", "insert"], "after another writer: looks first"
    commands.clear()
    await log.append([audit_record("s-6")])
    assert commands.on("audit_log") == ["insert"], "no other writer since: no lookup again"

    commands.clear()
    assert await log.append([audit_record("s-6")]) == 0  # a redelivery is still appended once
    check = await log.verify("kota-bengkulu")
    assert check.ok and check.count == 12


def tracked_ticket(ticket_id: str, version: int) -> TrackedTicket:
    return TrackedTicket(_id=ticket_id, tenant="kota-bengkulu", version=version, status="assigned",
                         agency="DLH", agency_name=None, priority=None, category=None, assignment=1,
                         routing=None, deadlines={}, history=[], changed_at=utc_now())


async def test_ticket_changes_reach_the_tracking_view_in_one_write_keeping_the_newest(
        settings: Settings, listened: tuple[AsyncMongoClient[Document], Commands]) -> None:
    client, commands = listened
    tracking = TrackingStore(client[settings.mongodb_database])
    assert await tracking.save_all([tracked_ticket("T-1", 2), tracked_ticket("T-2", 1)]) == 2
    commands.clear()
    stored = await tracking.save_all([tracked_ticket("T-1", 1), tracked_ticket("T-2", 3),
                                      tracked_ticket("T-3", 1)])
    assert commands.sent == [("update", "tracking")], "one round trip for the batch"
    assert stored == 2  # T-1's version 1 is older than the stored 2
    versions = {d["_id"]: d["version"] for d in
                await client[settings.mongodb_database]["tracking"].find({}).to_list(None)}
    assert versions == {"T-1": 2, "T-2": 3, "T-3": 1}
