"""The compliance report route on the embedded store: ticket documents as the SLA core keeps
them (the ticket contract), read back through the period queries, as JSON and CSV."""

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.sla.report_store import ensure_report_indexes, load_report_inputs
from services.sla.reports import ComplianceZones, compliance_report, tally_escalations
from services.sla.reports_api import ReportSource, build_reports_router, report_period
from services.sla.timing import report_epochs
from shared.accounts import AccountStore
from shared.auth import Authenticator, guard
from shared.contracts import utc_now
from shared.mongo import Document
from shared.runtime import validation_error
from shared.settings import Settings
from tests.conftest import TEST_AUTH_SECRET
from tests.integration.auth_support import Accounts

pytestmark = pytest.mark.integration

TIMEZONE = "Asia/Jakarta"
NOW = utc_now()
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
FIRST_DAY = (NOW - 10 * DAY).astimezone(ZoneInfo(TIMEZONE)).date()
PERIOD_QUERY = {"from": FIRST_DAY.isoformat(), "to": (FIRST_DAY + 11 * DAY).isoformat()}


def assignment(agency: str, number: int, at: datetime, ended_at: datetime | None = None,
               outcome: str | None = None) -> dict[str, Any]:
    return {"agency": agency, "assignment": number, "assigned_at": at, "ended_at": ended_at,
            "outcome": outcome, "reason": None}


def ticket(ticket_id: str, at: datetime, agency: str = "DLH", **fields: Any) -> Document:
    doc: Document = {
        "_id": ticket_id, "status": "assigned", "agency": agency, "assignment": 1,
        "category": "Sampah", "channel": "web", "priority": "normal", "submitted_at": at,
        "assigned_at": at, "first_response_at": None, "resolved_at": None,
        "response_working_seconds": None, "resolution_working_seconds": None,
        "response_met": None, "resolution_met": None, "response_due_at": NOW + DAY,
        "resolution_due_at": NOW + 10 * DAY, "assignments": [assignment(agency, 1, at)],
        "rejected_by": [], "pauses": [], "next_check_at": NOW + DAY,
        "history": [{"at": at, "action": "assigned", "actor": "router", "agency": agency}],
    }
    return doc | fields


def documents() -> tuple[list[Document], list[Document]]:
    received, moved = NOW - 5 * DAY, NOW - 4 * DAY
    tickets = [
        # DLH -> PUPR inside the period; PUPR answered late, with a quick re-pause on the way.
        ticket("T-moved", received, agency="PUPR", assignment=2, assigned_at=moved, status="responded",
               first_response_at=moved + HOUR, response_met=False, response_working_seconds=30 * 3600.0,
               assignments=[assignment("DLH", 1, received, moved, "rejected"),
                            assignment("PUPR", 2, moved)], rejected_by=["DLH"],
               pauses=[{"started_at": moved + 2 * HOUR, "ended_at": moved + 3 * HOUR,
                        "working_seconds": 3600.0, "quick_repause": True}]),
        # DLH answered on time and resolved it, within the period.
        ticket("T-done", received, status="resolved", first_response_at=received + 2 * HOUR,
               response_met=True, response_working_seconds=2 * 3600.0, resolved_at=received + DAY,
               resolution_met=True, next_check_at=None),
        # Submitted long before the period and still open: only the backlog sees it.
        ticket("T-old", NOW - 90 * DAY, response_met=False, response_due_at=NOW - 80 * DAY),
        # Closed before the period: nothing of it counts.
        ticket("T-closed", NOW - 60 * DAY, status="resolved", resolved_at=NOW - 50 * DAY,
               response_met=True, resolution_met=True, first_response_at=NOW - 59 * DAY,
               response_working_seconds=3600.0),
    ]
    escalations = [
        {"_id": "T-moved:a1:response:1:0", "ticket_id": "T-moved", "agency": "DLH", "assignment": 1,
         "clock": "response", "level": 1, "repeat": 0, "late": False, "fired_at": received + HOUR},
        {"_id": "T-moved:a1:response:1:1", "ticket_id": "T-moved", "agency": "DLH", "assignment": 1,
         "clock": "response", "level": 1, "repeat": 1, "late": False, "fired_at": received + 2 * HOUR},
        {"_id": "T-old:a1:response:2:0", "ticket_id": "T-old", "agency": "DLH", "assignment": 1,
         "clock": "response", "level": 2, "repeat": 0, "late": False, "fired_at": NOW - 80 * DAY},
        {"_id": "T-old:a1:ceiling:3:0", "ticket_id": "T-old", "agency": "DLH", "assignment": 1,
         "clock": "ceiling", "level": 3, "repeat": 0, "late": False, "fired_at": NOW - 2 * DAY},
    ]
    return tickets, escalations


@pytest.fixture
async def db(mongodb_url: str) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
async def app(db: AsyncDatabase[Document], mongodb_url: str) -> FastAPI:
    """The report route behind the permission guard, as the SLA app mounts it."""
    tickets, escalations = documents()
    await db["tickets"].insert_many(tickets)
    await db["escalations"].insert_many(escalations)
    # Stored as before tickets carried epoch fields: the start-up backfill gives them theirs.
    await ensure_report_indexes(db["tickets"], db["escalations"])
    settings = Settings(mongodb_url=mongodb_url, mongodb_database=db.name,
                        auth_secret=TEST_AUTH_SECRET)
    app = FastAPI(dependencies=[guard("sla")])
    app.state.auth = Authenticator(settings, AccountStore(db))
    app.state.report_source = ReportSource(db["tickets"], db["escalations"], ComplianceZones(),
                                           TIMEZONE)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(build_reports_router())
    return app


async def _client(app: FastAPI, role: str, agency: str | None = None) -> httpx.AsyncClient:
    accounts = Accounts(app.state.auth.settings, app.state.auth.accounts.users.database.client)
    caller = await accounts.user(f"{role.replace('_', '.')}.{agency or 'kota'}".lower(), role, agency)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sla",
                             headers=caller.headers)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(app, "supervisor") as client:
        yield client


async def test_an_agency_head_sees_its_own_agency_only(app: FastAPI) -> None:
    async with await _client(app, "agency_head", "DLH") as head, \
            await _client(app, "officer", "DLH") as officer:
        own = await head.get("/v1/reports/compliance", params=PERIOD_QUERY)
        by_channel = await head.get("/v1/reports/compliance", params={**PERIOD_QUERY, "by": "channel"})
        refused = await officer.get("/v1/reports/compliance", params=PERIOD_QUERY)
    assert own.status_code == 200, own.text
    assert [row["group"] for row in own.json()["rows"]] == ["DLH"]
    assert own.json()["totals"]["tickets_received"] == own.json()["rows"][0]["tickets_received"] == 2
    assert own.json()["totals"]["group"] == "TOTAL"
    assert (by_channel.status_code, refused.status_code) == (403, 403)


def rows_by_group(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["group"]: row for row in body["rows"]}


async def test_report_by_agency_reads_the_period_from_the_store(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/reports/compliance", params=PERIOD_QUERY)
    assert response.status_code == 200, response.text
    body = response.json()
    rows = rows_by_group(body)
    assert set(rows) == {"DLH", "PUPR"}
    dlh, pupr = rows["DLH"], rows["PUPR"]
    assert (dlh["tickets_received"], pupr["tickets_received"]) == (2, 1)
    assert body["totals"]["tickets_received"] == 2
    assert (dlh["responded_on_time_pct"], pupr["responded_on_time_pct"]) == (100.0, 0.0)
    assert pupr["median_response_hours"] == 30.0
    assert (dlh["rejections"], pupr["quick_repauses"]) == (1, 1)
    assert dlh["escalations_by_level"] == {"1": 1, "3": 1}  # the re-notify and the old one left out
    assert dlh["backlog"][">60"] == 1 and pupr["backlog"]["4-5"] == 1
    assert body["totals"]["backlog_total"] == 2
    assert (dlh["zone"], pupr["zone"], body["totals"]["zone"]) == ("green", "red", "red")


async def test_report_as_csv_by_channel(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/reports/compliance",
                              params={**PERIOD_QUERY, "by": "channel", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert [(line["channel"], line["tickets_received"]) for line in lines] == [("web", "2"),
                                                                               ("TOTAL", "2")]
    assert lines[0]["escalations_level_3"] == "1"


async def test_default_period_is_the_last_30_days(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/reports/compliance")).json()
    start, end = (datetime.fromisoformat(body["period"][k]) for k in ("start", "end"))
    assert end - start == 30 * DAY
    assert start <= NOW - 5 * DAY < NOW < end
    assert body["totals"]["tickets_received"] == 2


@pytest.mark.parametrize(("params", "field", "problem"), [
    ({"from": "2026-13-01"}, "query.from", "valid date"),
    ({"from": "2026-11-10", "to": "2026-11-01"}, "query.from", "must be before to"),
    ({"by": "kecamatan"}, "query.by", "'agency', 'category' or 'channel'"),
    ({"format": "xlsx"}, "query.format", "'json' or 'csv'"),
])
async def test_bad_queries_are_422_naming_the_field(http: httpx.AsyncClient, params: dict[str, str],
                                                    field: str, problem: str) -> None:
    response = await http.get("/v1/reports/compliance", params=params)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert problem in error["problem"]


def many_tickets(count: int) -> list[Document]:
    """Tickets of every shape the report distinguishes, spread over 60 days around the period:
    open and resolved, on time and late, re-routed, paused, in three agencies."""
    agencies, channels = ["DLH", "PUPR", "DISHUB"], ["web", "whatsapp", "lapor"]
    docs = []
    for n in range(count):
        at = NOW - (n % 60) * DAY - (n % 24) * HOUR
        agency = agencies[n % 3]
        fields: dict[str, Any] = {"channel": channels[n % 5 % 3],
                                  "category": ["Sampah", "Jalan", None][n % 3],
                                  "response_due_at": at + (n % 4) * DAY}
        if n % 4 == 0:
            fields.update(status="resolved", resolved_at=at + (n % 9) * HOUR + HOUR,
                          first_response_at=at + HOUR, response_met=n % 8 == 0,
                          resolution_met=n % 3 == 0, response_working_seconds=float(600 * (n % 50)))
        elif n % 4 == 1:
            fields.update(status="responded", first_response_at=at + 2 * HOUR, response_met=True,
                          response_working_seconds=float(900 * (n % 30)))
        if n % 7 == 0:
            moved = at + 5 * HOUR
            fields.update(assignment=2, assigned_at=moved,
                          assignments=[assignment(agency, 1, at, moved, ["rejected", "rerouted"][n % 2]),
                                       assignment(agencies[(n + 1) % 3], 2, moved)])
        if n % 11 == 0:
            fields["pauses"] = [{"started_at": at + 3 * HOUR, "ended_at": None,
                                 "working_seconds": None, "quick_repause": True}]
        current = agencies[(n + 1) % 3] if n % 7 == 0 else agency
        docs.append(ticket(f"M-{n}", at, agency=current, **fields))
    return docs


async def test_figures_from_the_indexed_queries_equal_the_computation_over_every_ticket(
        db: AsyncDatabase[Document]) -> None:
    """The report's store queries (on the epoch fields) return what the figures need: the
    report equals the same computation over every ticket and escalation in the store, for each
    grouping and several periods. Half the tickets were stored before the epoch fields existed
    (the backfill gives them theirs), half as the SLA core writes them now."""
    tickets, escalations = documents()
    tickets += many_tickets(300)
    escalations += [{"_id": f"M-{n}:a1:response:1:0", "ticket_id": f"M-{n}", "agency": "DLH",
                     "assignment": 1, "clock": "response", "level": 1 + n % 2, "repeat": n % 3 == 0,
                     "late": False, "fired_at": NOW - (n % 40) * DAY} for n in range(0, 300, 5)]
    current = [{**t, **report_epochs(t)} for t in tickets[::2]]
    await db["tickets"].insert_many([*current, *tickets[1::2]])
    await db["escalations"].insert_many(escalations)
    await ensure_report_indexes(db["tickets"], db["escalations"])
    everything = await db["tickets"].find({}).to_list(None)
    fired = await db["escalations"].find({}).to_list(None)
    by_id = {t["_id"]: t for t in everything}
    zones = ComplianceZones()
    for days_back, length in ((10, 11), (30, 31), (45, 5), (70, 80)):
        first = (NOW - days_back * DAY).astimezone(ZoneInfo(TIMEZONE)).date()
        period = report_period(first, first + length * DAY, timezone=TIMEZONE, today=NOW.date())
        inputs = await load_report_inputs(db["tickets"], db["escalations"], period)
        in_period = [e for e in fired if e["fired_at"] in period]
        for by in ("agency", "category", "channel"):
            from_store = compliance_report(inputs.tickets, inputs.escalations, period=period,
                                           now=NOW, by=by, zones=zones)
            reference = compliance_report(everything, tally_escalations(in_period, by_id),
                                          period=period, now=NOW, by=by, zones=zones)
            assert from_store.model_dump() == reference.model_dump(), (by, days_back)
            assert reference.totals.tickets_received > 0 or days_back == 70
