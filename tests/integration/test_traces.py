"""Traces through the running pipeline, exported over real OTLP/HTTP to a receiver on
loopback: one complaint posted to intake makes ONE trace that holds intake's HTTP span, the
router's consume span, the agency message's send, the SLA's ticket opening and the escalation
its scheduler fires seconds later (the 5-second demo policy). Also: an outbox document keeps
the context it was stored under, so a sweep that publishes it after a crash continues the
trace; and with tracing off, nothing is added to documents or messages."""

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from opentelemetry import trace
from pymongo import AsyncMongoClient

from services.intake.app import create_app as intake_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from shared.contracts import Complaint, EventType, Topics, envelope, utc_now
from shared.kafka import ensure_topics, make_broker
from shared.mongo import Document
from shared.outbox import OutboxRelay, outbox_fields
from shared.settings import Settings
from shared.telemetry import bind, start_tracing
from tests.integration.auth_support import Accounts
from tests.integration.otlp_support import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.integration.support import eventually, read_topic, serving

pytestmark = pytest.mark.integration

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP span kinds
TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, OtlpReceiver]]:
    # The SDK's batch processor sends every 5 s by default; sooner keeps the test short.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    with otlp_receiver() as found:
        yield found


@asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[str]:
    async with AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings), settings.intake_port))
        await stack.enter_async_context(serving(router_app(settings), settings.router_port))
        await stack.enter_async_context(serving(sla_app(settings), settings.sla_port))
        yield intake


def ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    by_id = {s.span_id: s for s in spans}
    chain = []
    while span.parent_id and span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


def one(spans: list[ReceivedSpan], service: str, name: str, kind: int | None = None,
        ) -> ReceivedSpan | None:
    return next((s for s in spans if s.service == f"disposisi-{service}" and s.name == name
                 and (kind is None or s.kind == kind)), None)


async def test_one_trace_joins_the_submission_the_routing_the_ticket_and_its_escalation(
        settings: Settings, accounts: Accounts, mongo: AsyncMongoClient[Document],
        receiver: tuple[str, OtlpReceiver]) -> None:
    endpoint, otlp = receiver
    settings = settings.model_copy(update={"otlp_endpoint": endpoint})
    web = await accounts.channel("web")
    async with pipeline(settings) as intake, httpx.AsyncClient() as http:
        response = await http.post(f"{intake}/v1/complaints", headers=web.headers,
                                   json={"channel": "web", "text": TEXT})
        assert response.status_code == 202, response.text
        ticket_id = response.json()["ticket_id"]
        # The demo policy's first response level fires 3.75 s after the assignment.
        escalations = await read_topic(settings.kafka_bootstrap_servers, Topics.ESCALATIONS,
                                       expect=1, timeout=90)
        assert [e["ticket_id"] for e in escalations][:1] == [ticket_id]

        async def whole_trace() -> dict[str, ReceivedSpan] | None:
            spans = otlp.snapshot()
            root = next((s for s in spans if s.service == "disposisi-intake" and s.kind == SERVER
                         and s.attributes.get("http.route") == "/v1/complaints"), None)
            if root is None:
                return None
            mine = otlp.trace(root.trace_id)
            wanted = {
                "received sent": one(mine, "intake", f"{Topics.RECEIVED} publish", PRODUCER),
                "router consumed": one(mine, "router", f"{Topics.RECEIVED} process", CONSUMER),
                "agency message": one(mine, "router", f"{Topics.agency('DLH')} publish", PRODUCER),
                "sla consumed": one(mine, "sla", f"{Topics.ROUTED} process", CONSUMER),
                "ticket opened": one(mine, "sla", "ticket open"),
                "escalation fired": one(mine, "sla", "escalation fire"),
                "escalation sent": one(mine, "sla", f"{Topics.ESCALATIONS} publish", PRODUCER),
            }
            if any(s is None for s in wanted.values()):
                return None
            return {"root": root, **{k: s for k, s in wanted.items() if s is not None}}

        found = await eventually(whole_trace, timeout=60)
        assert found, f"incomplete trace; spans received: {[(s.service, s.name) for s in otlp.snapshot()]}"
    spans = otlp.trace(found["root"].trace_id)
    root = found["root"]
    assert root.parent_id == ""  # the submission starts the trace
    # One tree: the escalation's send descends, hop by hop, from intake's HTTP span.
    chain = [s.span_id for s in ancestors(found["escalation sent"], spans)]
    for step in ("escalation fired", "ticket opened", "sla consumed", "router consumed",
                 "received sent", "root"):
        assert found[step].span_id in chain, f"{step} is not an ancestor of the escalation's send"
    assert found["router consumed"].span_id in [s.span_id for s in
                                                ancestors(found["agency message"], spans)]
    for step in ("ticket opened", "escalation fired", "agency message"):
        assert found[step].attributes.get("disposisi.ticket_id") == ticket_id
    # The ticket keeps its context for its later escalations; the complaint's outbox too.
    db = mongo[settings.mongodb_database]
    ticket = await db["tickets"].find_one({"_id": ticket_id})
    assert ticket is not None and root.trace_id in ticket["trace"]["traceparent"]


async def test_a_sweep_publishing_after_a_crash_continues_the_stored_trace(
        settings: Settings, mongo: AsyncMongoClient[Document],
        receiver: tuple[str, OtlpReceiver]) -> None:
    endpoint, otlp = receiver
    settings = settings.model_copy(update={"otlp_endpoint": endpoint})
    await ensure_topics(settings, [Topics.RECEIVED])
    tracing = start_tracing(settings, "outbox-test")
    complaint = Complaint(ticket_id="BKL-T1", channel="web", text="Sampah belum diangkut",
                          submitted_at=utc_now())
    event = envelope(complaint, type=EventType.COMPLAINT_RECEIVED, tenant=settings.tenant,
                     ticket_id="BKL-T1", event_id="trace-e-1")
    with tracing.tracer.start_as_current_span("accept") as accepting:
        # Stored by a writer that crashed at once: its lease has already run out.
        doc = {"_id": "BKL-T1", **outbox_fields(Topics.RECEIVED, event, lease_seconds=-1.0,
                                                owner="crashed", now=utc_now())}
    accepted_trace = format(accepting.get_span_context().trace_id, "032x")
    outbox = mongo[settings.mongodb_database]["outbox"]
    await outbox.insert_one(doc)
    broker = make_broker(settings, "outbox-test")
    bind(broker, tracing)
    await broker.start()
    try:
        # Later, outside any span: another replica's sweep.
        assert trace.get_current_span().get_span_context().is_valid is False
        relay = OutboxRelay(outbox, broker, lease_seconds=5.0, owner="sweeper")
        assert await relay.sweep() == 1
    finally:
        await broker.stop()
        await tracing.shutdown()
    headers = await first_headers(settings.kafka_bootstrap_servers, Topics.RECEIVED)
    assert accepted_trace in headers["traceparent"]
    sent = await eventually(lambda: _found(otlp, accepted_trace, f"{Topics.RECEIVED} publish"))
    assert sent and sent.parent_id == format(accepting.get_span_context().span_id, "016x")


async def _found(otlp: OtlpReceiver, trace_id: str, name: str) -> ReceivedSpan | None:
    return next((s for s in otlp.trace(trace_id) if s.name == name), None)


async def first_headers(bootstrap: str, topic: str) -> dict[str, str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        for _ in range(60):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    return {k: v.decode() for k, v in record.headers}
        raise AssertionError(f"nothing on {topic}")
    finally:
        await consumer.stop()


async def test_with_tracing_off_nothing_is_added_to_documents_or_messages(
        settings: Settings, accounts: Accounts, mongo: AsyncMongoClient[Document]) -> None:
    assert settings.otlp_endpoint is None  # the default
    web = await accounts.channel("web")
    async with serving(intake_app(settings), settings.intake_port, consumers_assigned=False) as intake, \
            httpx.AsyncClient() as http:
        response = await http.post(f"{intake}/v1/complaints", headers=web.headers,
                                   json={"channel": "web", "text": TEXT})
        assert response.status_code == 202, response.text
        headers = await first_headers(settings.kafka_bootstrap_servers, Topics.RECEIVED)
    assert "traceparent" not in headers and headers["event-type"] == "complaint.received"
    stored = await mongo[settings.mongodb_database]["complaints"].find_one(
        {"ticket_id": response.json()["ticket_id"]})
    assert stored is not None and "trace" not in stored
