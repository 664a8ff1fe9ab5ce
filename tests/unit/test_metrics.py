"""The pure parts of the metrics: labels of bounded cardinality (confidence bands, kinds of
dead-letter reasons, route templates), which notice is a breach, an open ticket's clock state,
and a refresh that fails without failing the scrape."""

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from services.sla.inbox import DueState
from services.sla.metrics import breach_level, due_state, fired_notices
from services.sla.policy import load_policy
from shared.contracts import Complaint, EventType, Topics, utc_now
from shared.kafka import Incoming, decode_event, refusal
from shared.metrics import Metrics, _letter_labels, confidence_band, install_metrics, reason_kind
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = load_policy(ROOT / "services" / "sla" / "policies" / "default.yaml")
DEMO_POLICY = load_policy(ROOT / "examples" / "policy-demo.yaml")
SETTINGS = Settings(max_record_bytes=1024)


@pytest.mark.parametrize(("confidence", "band"), [
    (1.0, "high"), (0.8, "high"), (0.799, "medium"), (0.5, "medium"), (0.499, "low"), (0.0, "low")])
def test_confidence_falls_in_one_of_three_bands(confidence: float, band: str) -> None:
    assert confidence_band(confidence) == band


def _reason(value: bytes) -> str:
    record = Incoming(topic=Topics.SUBMITTED, partition=0, offset=1, key=None, value=value)
    try:
        decode_event(record, Complaint, EventType.COMPLAINT_SUBMITTED, settings=SETTINGS)
    except ValueError as error:
        return str(error)
    raise AssertionError("the record decoded")


def test_the_reasons_decoding_gives_have_their_own_kinds() -> None:
    envelope = {"id": "e", "type": "ticket.update", "schema_version": 1, "time": "2026-11-28T00:00:00Z",
                "tenant": "t", "ticket_id": None, "data": {}}
    assert reason_kind(_reason(b"x" * 2000)) == "oversized"
    assert reason_kind(_reason(b"not json")) == "invalid"
    assert reason_kind(_reason(json.dumps(envelope).encode()[:100])) == "invalid"
    assert reason_kind("type: expected 'complaint.submitted', got 'ticket.update'") == "wrong_type"
    assert reason_kind("ticket_id: required") == "no_ticket_id"


def test_refusals_are_refused_or_not_processed_never_their_text() -> None:
    assert reason_kind(refusal(ValueError("ticket T-1 is resolved: refused"))) == "refused"
    assert reason_kind(refusal(KeyError("agency"))) == "not_processed"
    assert reason_kind("no ticket BKL-261128-7K3QX9AB within 30 s") == "unknown_ticket"
    assert reason_kind("tenant 'x' is not served by this deployment") == "unknown_tenant"


def test_a_dead_letter_is_labelled_by_its_source_and_reason_kind() -> None:
    body = json.dumps({"data": {"source_topic": Topics.UPDATES, "reason": "ticket_id: required",
                                "payload": "BKL-261128-7K3QX9AB"}}).encode()
    assert _letter_labels(body) == (Topics.UPDATES, "no_ticket_id")
    assert _letter_labels(b"garbage") == ("unknown", "unreadable")


async def test_http_latency_is_labelled_by_route_template_and_known_method_only() -> None:
    app = FastAPI()
    metrics = Metrics("test")

    @app.get("/v1/tickets/{ticket_id}")
    async def ticket(ticket_id: str) -> dict[str, str]:
        return {"id": ticket_id}

    assets = FastAPI()

    @assets.get("/{name}")
    async def asset(name: str) -> dict[str, str]:
        return {"name": name}

    app.mount("/static", assets)
    install_metrics(app, metrics)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        await client.get("/v1/tickets/BKL-261128-7K3QX9AB")
        await client.get("/v1/tickets/BKL-261128-AAAAAAAA")
        await client.get("/nowhere")
        await client.request("BREW", "/nowhere")  # a method the client made up
        await client.get("/static/htmx.min.js")
        exposition = (await client.get("/metrics")).text
    counts = {(s.labels["method"], s.labels["route"], s.labels["status"]): s.value
              for f in text_string_to_metric_families(exposition) for s in f.samples
              if s.name == "disposisi_http_request_duration_seconds_count"}
    assert counts == {("GET", "/v1/tickets/{ticket_id}", "200"): 2, ("GET", "unmatched", "404"): 1,
                      ("other", "unmatched", "404"): 1, ("GET", "/static/{name}", "200"): 1}
    assert "BKL-261128" not in exposition


def test_the_breach_is_the_first_rung_at_or_past_the_target() -> None:
    levels = DEFAULT_POLICY.escalation
    assert breach_level(levels, "response") == 2      # at: 1.0 (level 3 is after_breach)
    assert breach_level(levels, "update") == 1
    assert breach_level(levels, "ceiling") == 2
    assert breach_level(DEMO_POLICY.escalation, "response") == 2
    assert breach_level(DEMO_POLICY.escalation, "routing") == 1
    only_after = [lvl for lvl in levels if lvl.clock == "response" and lvl.level == 3]
    assert breach_level(only_after, "response") == 3
    assert breach_level(levels[:1], "response") is None  # at 0.75 only: no breach rung


def test_fired_notices_count_a_breach_once_and_measure_the_delay() -> None:
    now = utc_now()

    def doc(level: int, repeat: int) -> dict[str, object]:
        return {"tenant": "kota-bengkulu", "clock": "response", "level": level, "repeat": repeat,
                "triggered_at": now - timedelta(seconds=2), "fired_at": now}

    notices = fired_notices([doc(1, 0), doc(2, 0), doc(2, 1)], lambda tenant: DEMO_POLICY)
    assert [(n.level, n.breach) for n in notices] == [(1, False), (2, True), (2, False)]
    assert all(n.delay_seconds == pytest.approx(2.0) for n in notices)


@pytest.mark.parametrize(("status", "due_in", "soon_in", "state"), [
    ("needs_info", -60, -90, DueState.PAUSED),
    ("assigned", -1, -10, DueState.OVERDUE),
    ("acknowledged", 10, -1, DueState.DUE_SOON),
    ("responded", 100, 10, DueState.ON_TIME),
    ("rejected", None, None, DueState.ON_TIME),
])
def test_an_open_tickets_clock_state_is_the_inboxs(status: str, due_in: float | None,
                                                    soon_in: float | None, state: DueState) -> None:
    now = utc_now()
    ticket = {"status": status,
              "due_next_at": None if due_in is None else now + timedelta(seconds=due_in),
              "due_soon_at": None if soon_in is None else now + timedelta(seconds=soon_in)}
    assert due_state(ticket, now) is state


async def test_a_failing_refresh_is_an_error_metric_and_the_scrape_still_answers() -> None:
    metrics = Metrics("test")
    calls: list[str] = []

    async def broken() -> None:
        calls.append("broken")
        raise ConnectionError("store down")

    async def fine() -> None:
        calls.append("fine")
        metrics.backlogs.outbox.labels("complaints").set(3)

    metrics.refresh_with("outbox", broken)
    metrics.refresh_with("consumer_lag", fine)
    await metrics.refresh_once(within=1.0)
    await metrics.refresh_once(within=1.0)
    samples = {(s.name, s.labels.get("gauge", s.labels.get("outbox"))): s.value
               for f in text_string_to_metric_families(metrics.exposition().decode())
               for s in f.samples}
    assert sorted(calls) == ["broken", "broken", "fine", "fine"]  # a failure stops no other
    assert samples[("disposisi_metrics_refresh_errors_total", "outbox")] == 2
    assert samples[("disposisi_metrics_refresh_ok", "outbox")] == 0
    assert samples[("disposisi_metrics_refresh_ok", "consumer_lag")] == 1
    assert samples[("disposisi_outbox_backlog", "complaints")] == 3
