"""Logs of an anonymous complaint's whole flow (intake, router, SLA, an escalation, the
agency's reply), written at DEBUG through the production log configuration: the reporter's
name, phone and e-mail appear in no line, while the lines do name the ticket, and the
escalation's line carries its trace id."""

import io
import json
import logging
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from services.intake.app import create_app as intake_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from shared.contracts import Topics
from shared.logs import configure_logging
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.otlp_support import otlp_receiver
from tests.integration.support import eventually, read_topic, serving

pytestmark = pytest.mark.integration

REPORTER = {"name": "Ratna Kusumawati", "phone": "0812-7788-9911", "email": "ratna.kusuma@example.com"}
# The same identity as a citizen also writes it into the text.
TEXT = ("Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat. Saya Ratna "
        "Kusumawati, hubungi 0812-7788-9911 atau ratna.kusuma@example.com")
# Each part on its own, and the phone number's digits however punctuated (not a fragment
# short enough to turn up inside a timestamp).
IDENTITY = ["Ratna", "Kusumawati", "0812-7788-9911", "7788-9911", "081277889911", "81277889911",
            "ratna.kusuma", "ratna.kusuma@example.com"]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    pymongo_level = logging.getLogger("pymongo").level
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level
        logging.getLogger("pymongo").setLevel(pymongo_level)


async def test_an_anonymous_complaints_flow_logs_no_reporter_identity(
        settings: Settings, accounts: Accounts, captured: io.StringIO,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    web = await accounts.channel("web")
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    with otlp_receiver() as (endpoint, _):
        settings = settings.model_copy(update={"otlp_endpoint": endpoint})
        async with AsyncExitStack() as stack, httpx.AsyncClient() as http:
            intake = await stack.enter_async_context(
                serving(intake_app(settings), settings.intake_port))
            await stack.enter_async_context(serving(router_app(settings), settings.router_port))
            sla = await stack.enter_async_context(serving(sla_app(settings), settings.sla_port))
            response = await http.post(f"{intake}/v1/complaints", headers=web.headers, json={
                "channel": "web", "text": TEXT, "reporter": REPORTER, "anonymous": True})
            assert response.status_code == 202, response.text
            ticket_id = response.json()["ticket_id"]
            await read_topic(settings.kafka_bootstrap_servers, Topics.ESCALATIONS, expect=1,
                             timeout=90)
            answer = await http.post(f"{sla}/v1/tickets/{ticket_id}/events", headers=officer.headers,
                                     json={"action": "responded", "note": "Truk dijadwalkan besok"})
            assert answer.status_code in (200, 202), answer.text

            async def fired() -> list[dict[str, Any]]:
                return [line for line in _lines(captured) if line.get("event") == "escalation fired"]

            escalation_lines = await eventually(fired, timeout=30)
    lines = _lines(captured)
    text = captured.getvalue()
    leaked = [s for s in IDENTITY if s.lower() in text.lower()]
    assert not leaked, f"reporter identity in the logs: {leaked}"
    # The capture did see the flow: lines from all three services' work, naming the ticket.
    assert len(lines) > 20
    handled = [line for line in lines if line.get("ticket_id") == ticket_id
               and line["event"].startswith("handled ")]
    assert handled and all(len(line["trace_id"]) == 32 for line in handled)
    assert escalation_lines and escalation_lines[0]["ticket_id"] == ticket_id
    assert escalation_lines[0]["level"] == "info" and len(escalation_lines[0]["trace_id"]) == 32


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    found = []
    for line in stream.getvalue().splitlines():
        if line.strip():
            found.append(json.loads(line))
    return found

