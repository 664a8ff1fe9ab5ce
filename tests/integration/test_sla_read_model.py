"""The compliance read model on the embedded store: its report equals the full computation over
every ticket, for each grouping and several periods, whether its counters were built by the
back-fill or ticket by ticket; counting again (a redelivered event, a catch-up after a crash
mid-way) adds nothing; and the SLA flow counts a ticket it resolves, once."""

import asyncio
import contextlib
import csv
import io
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.sla.read_model import HOUR_EDGES, bucket_bounds, hour_bucket
from services.sla.read_model_store import BACK_FILL, CatchUp, OpenSnapshot, ReportCounters
from services.sla.reports import (
    ComplianceReport,
    ComplianceZones,
    GroupBy,
    compliance_report,
    tally_escalations,
)
from services.sla.reports_api import report_period
from services.sla.store import changed_now
from services.sla.timing import report_epochs
from shared.contracts import TicketUpdate, UpdateAction, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.sla_support import routed_envelope, sla_instance
from tests.integration.support import eventually
from tests.integration.test_sla_reports import (
    DAY,
    HOUR,
    NOW,
    PERIOD_QUERY,
    TIMEZONE,
    _client,
    app,
    assignment,
    db,
    documents,
    many_tickets,
    ticket,
)

pytestmark = pytest.mark.integration
_ = db, app  # the fixtures: a fresh database (dropped afterwards), the report route on it
PERIODS = ((10, 11), (30, 31), (45, 5), (70, 80), (3, 1))
GROUPINGS: tuple[GroupBy, ...] = ("agency", "category", "channel")


def escalation_docs() -> list[Document]:
    return [{"_id": f"M-{n}:a1:response:1:0", "ticket_id": f"M-{n}", "agency": "DLH",
             "assignment": 1, "clock": "response", "level": 1 + n % 2, "repeat": n % 3 == 0,
             "late": False, "fired_at": NOW - (n % 40) * DAY - n * 60 * 1e-3 * HOUR}
            for n in range(0, 300, 5)]


def returning_tickets() -> list[Document]:
    """Re-routed away and back to the same agency on another day: received once per period."""
    first, away, back = NOW - 20 * DAY, NOW - 18 * DAY, NOW - 12 * DAY
    return [ticket(f"R-{n}", first, agency="DLH", assignment=3, assigned_at=back, status="resolved",
                   first_response_at=back + HOUR, response_met=n % 2 == 0,
                   response_working_seconds=3600.0 * (n + 1), resolved_at=back + 2 * HOUR,
                   resolution_met=True, next_check_at=None,
                   assignments=[assignment("DLH", 1, first, away, "rerouted"),
                                assignment("PUPR", 2, away, back, "manual"),
                                assignment("DLH", 3, back)])
            for n in range(4)]


async def stored(db: AsyncDatabase[Document]) -> tuple[list[Document], list[Document]]:
    tickets, escalations = documents()
    tickets += many_tickets(300) + returning_tickets()
    escalations += escalation_docs()
    await db["tickets"].insert_many([{**t, **report_epochs(t)} for t in tickets])
    await db["escalations"].insert_many(
        [{**e, "fired_epoch": e["fired_at"].timestamp()} for e in escalations])
    return (await db["tickets"].find({}).to_list(None),
            await db["escalations"].find({}).to_list(None))


def counters_of(db: AsyncDatabase[Document]) -> ReportCounters:
    return ReportCounters(db, lambda tenant: TIMEZONE)


def same_figures(model: ComplianceReport, reference: ComplianceReport, where: Any) -> None:
    """Equal in every figure, but the median and p90 (from the histogram) within a bucket."""
    approximate = ("median_response_hours", "p90_response_hours")
    rows = [*model.rows, model.totals]
    expected = [*reference.rows, reference.totals]
    assert [r.group for r in rows] == [r.group for r in expected], where
    for row, want in zip(rows, expected, strict=True):
        assert row.model_dump(exclude=set(approximate)) == want.model_dump(exclude=set(approximate)), \
            (where, row.group)
        for name in approximate:
            got, exact = getattr(row, name), getattr(want, name)
            assert (got is None) == (exact is None), (where, row.group, name)
            if exact is not None:
                assert abs(got - exact) <= tolerance(got, exact), (where, row.group, name, got, exact)


def tolerance(got: float, exact: float) -> float:
    """The widest bucket from the lower of the two values to the one above the higher: the
    values at the two ranks the quantile lies between are each off by their bucket's width."""
    first, last = sorted(int(hour_bucket(v * 3600)[1:]) for v in (got, exact))
    return max(high - low for low, high in map(bucket_bounds, range(first, last + 2))) + 0.01


async def assert_reports_equal(db: AsyncDatabase[Document], counters: ReportCounters,
                               tickets: list[Document], escalations: list[Document]) -> None:
    by_id = {t["_id"]: t for t in tickets}
    zones = ComplianceZones()
    for days_back, length in PERIODS:
        first = (NOW - days_back * DAY).astimezone(ZoneInfo(TIMEZONE)).date()
        period = report_period(first, first + length * DAY, timezone=TIMEZONE, today=NOW.date())
        in_period = [e for e in escalations if e["fired_at"] in period]
        for by in GROUPINGS:
            model = await counters.report(db["tickets"], tenant=None, period=period, now=NOW,
                                          by=by, timezone=TIMEZONE, zones=zones)
            reference = compliance_report(tickets, tally_escalations(in_period, by_id),
                                          period=period, now=NOW, by=by, zones=zones)
            same_figures(model, reference, (by, days_back, length))


async def test_the_back_filled_read_model_reports_what_the_full_computation_does(
        db: AsyncDatabase[Document]) -> None:
    tickets, escalations = await stored(db)
    counters = counters_of(db)
    await counters.ensure_indexes()
    resolved = sum(t["status"] == "resolved" for t in tickets)
    first_notices = sum(not e.get("repeat", 0) for e in escalations)
    counted = await counters.catch_up(db["tickets"], db["escalations"], since=NOW.timestamp())
    assert counted == resolved + first_notices
    await assert_reports_equal(db, counters, tickets, escalations)
    # A second start counts nothing again (the ledger), even over everything.
    await db["report_meta"].delete_many({})
    assert await counters.catch_up(db["tickets"], db["escalations"], since=0) == 0
    await assert_reports_equal(db, counters, tickets, escalations)


async def test_counting_again_adds_nothing_and_a_catch_up_finishes_a_count_cut_short(
        db: AsyncDatabase[Document], mongodb_url: str) -> None:
    """Tickets counted one by one as the flow does, each twice (a redelivered event); the
    process dies after half of them (and their escalations were never counted); a new process
    with its own client catches up from the start-up window."""
    tickets, escalations = await stored(db)
    resolved = [t for t in tickets if t["status"] == "resolved"]
    counters = counters_of(db)
    await counters.ensure_indexes()
    await db["report_meta"].insert_one({"_id": "built", "done": 1})  # not a first start
    half = resolved[: len(resolved) // 2]
    for one in half:
        assert await counters.count_tickets([one]) == 1
        assert await counters.count_tickets([one]) == 0
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        restarted = counters_of(client[db.name])
        since = min(e["fired_at"] for e in escalations).timestamp() - 1
        since = min(since, min(t["resolved_at"].timestamp() for t in resolved) - 1)
        counted = await restarted.catch_up(client[db.name]["tickets"],
                                           client[db.name]["escalations"], since=since)
        assert counted == len(resolved) - len(half) + sum(not e.get("repeat", 0) for e in escalations)
        await assert_reports_equal(client[db.name], restarted, tickets, escalations)
    finally:
        await client.close()


async def test_a_report_from_the_open_tickets_snapshot_sees_what_opened_and_closed_since(
        db: AsyncDatabase[Document]) -> None:
    """The snapshot is taken; then a ticket opens, one is re-assigned and one is resolved (and
    counted): the report still equals the full computation over the tickets as they are now,
    from the tickets written since the snapshot (read by their ``changed_epoch``)."""
    tickets, escalations = await stored(db)
    snapshot = OpenSnapshot(db["tickets"])
    counters = ReportCounters(db, lambda tenant: TIMEZONE, open_tickets=snapshot)
    await counters.ensure_indexes()
    await counters.catch_up(db["tickets"], db["escalations"], since=0)
    await counters.refresh_open()
    later = utc_now()
    opened = ticket("S-new", later, agency="PUPR")
    open_ones = [t for t in tickets if t["status"] == "assigned" and t["_id"].startswith("M-")]
    moved, done = open_ones[0], open_ones[1]
    moved_now = {**moved, "agency": "DISHUB", "assignment": 2, "assigned_at": later,
                 "assignments": [{**moved["assignments"][0], "ended_at": later, "outcome": "rerouted"},
                                 assignment("DISHUB", 2, later)]}
    done_now = {**done, "status": "resolved", "resolved_at": later, "resolution_met": True,
                "first_response_at": later, "response_met": False,
                "response_working_seconds": 7200.0}
    # Written as the ticket store writes them: stamped with the moment of the change.
    await db["tickets"].insert_one({**opened, **report_epochs(opened), **changed_now()})
    for changed in (moved_now, done_now):
        await db["tickets"].replace_one({"_id": changed["_id"]},
                                        {**changed, **report_epochs(changed), **changed_now()})
    assert await counters.count_tickets([done_now]) == 1
    now_stored = await db["tickets"].find({}).to_list(None)
    assert len(now_stored) == len(tickets) + 1
    await assert_reports_equal(db, counters, now_stored, escalations)
    # The next refresh reuses the parts of the tickets that did not change, and recomputes
    # the others: the same figures.
    await counters.refresh_open()
    await assert_reports_equal(db, counters, now_stored, escalations)


APPROXIMATE = ("median_response_hours", "p90_response_hours")


def without_medians(body: str | dict[str, Any]) -> Any:
    """The body without the figures the read model gives from its histogram (checked within a
    bucket above) and without the moment it was generated."""
    if isinstance(body, str):  # CSV
        lines = list(csv.reader(io.StringIO(body)))
        dropped = [lines[0].index(name) for name in APPROXIMATE]
        return [[cell for i, cell in enumerate(line) if i not in dropped] for line in lines]
    rows = [{k: v for k, v in row.items() if k not in APPROXIMATE}
            for row in [*body["rows"], body["totals"]]]
    return {**{k: v for k, v in body.items() if k not in ("rows", "totals", "generated_at")},
            "rows": rows}


async def test_the_route_answers_from_the_read_model_as_it_did_from_every_ticket(
        app: FastAPI, db: AsyncDatabase[Document]) -> None:
    """The same requests (JSON and CSV, each grouping, an agency head's) answered by the
    reference computation and then by the read model: the same figures."""
    requests: list[tuple[str, str | None, dict[str, str]]] = [
        ("supervisor", None, {**PERIOD_QUERY, "by": by}) for by in GROUPINGS]
    requests += [("supervisor", None, {**PERIOD_QUERY, "by": "channel", "format": "csv"}),
                 ("agency_head", "DLH", PERIOD_QUERY)]

    clients = {(role, agency): await _client(app, role, agency)
               for role, agency in {(role, agency) for role, agency, _ in requests}}

    async def answers() -> list[Any]:
        found = []
        for role, agency, query in requests:
            response = await clients[(role, agency)].get("/v1/reports/compliance", params=query)
            assert response.status_code == 200, response.text
            found.append(without_medians(response.text if query.get("format") == "csv"
                                         else response.json()))
        return found

    try:
        reference = await answers()
        counters = counters_of(db)
        await counters.ensure_indexes()
        await counters.catch_up(db["tickets"], db["escalations"], since=0)
        app.state.report_source = replace(app.state.report_source, counters=counters)
        assert await answers() == reference
    finally:
        for client in clients.values():
            await client.aclose()


def test_the_histogram_buckets_are_ordered_and_end_at_thirty_days() -> None:
    assert list(HOUR_EDGES) == sorted(set(HOUR_EDGES))
    assert HOUR_EDGES[-1] == 720.0
    assert hour_bucket(0) == "h0" and hour_bucket(721 * 3600) == f"h{len(HOUR_EDGES)}"


async def test_the_flow_counts_a_ticket_it_resolves_once_however_often_the_event_comes(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    db = mongo[settings.mongodb_database]
    async with sla_instance(settings, mongo) as sla:
        sla.report_counters = counters = ReportCounters(db, lambda tenant: TIMEZONE)
        await counters.ensure_indexes()
        submitted = utc_now() - 2 * HOUR
        await sla.open_tickets([routed_envelope("T-RM", submitted)])
        done = TicketUpdate(action=UpdateAction.RESOLVED, actor="petugas DLH", note="Sudah diangkut")
        for _ in range(3):  # the first delivery and two redeliveries
            await sla.apply("T-RM", done, "resolve-T-RM", tenant="kota-bengkulu")
        ticket = await db["tickets"].find_one({"_id": "T-RM"})
        assert ticket is not None and ticket["status"] == "resolved"
        period = report_period(None, None, timezone=TIMEZONE,
                               today=utc_now().astimezone(ZoneInfo(TIMEZONE)).date())
        report = await counters.report(db["tickets"], tenant="kota-bengkulu", period=period,
                                       now=utc_now(), by="agency", timezone=TIMEZONE,
                                       zones=ComplianceZones())
        reference = compliance_report([ticket], [], period=period, now=report.generated_at,
                                      by="agency", zones=ComplianceZones())
        assert report.totals.tickets_received == 1
        assert report.totals.resolution_decided == reference.totals.resolution_decided == 1
        same_figures(report, reference, "flow")
        assert await db["report_ledger"].count_documents({"_id": "t:T-RM"}) == 1


class StopsAfterPages(ReportCounters):
    """Counts like the read model, but from page ``pages + 1`` of tickets on waits forever
    (None: never): the back-fill is caught between two pages, their position saved, when the
    process dies. Records the first ticket id of each page it is given."""

    pages: int | None
    first_ids: list[str]

    def __init__(self, db: AsyncDatabase[Document], pages: int | None) -> None:
        super().__init__(db, lambda tenant: TIMEZONE)
        object.__setattr__(self, "pages", pages)  # a frozen dataclass's fields
        object.__setattr__(self, "first_ids", [])

    async def count_tickets(self, tickets: Sequence[Document]) -> int:
        self.first_ids.append(tickets[0]["_id"])
        if self.pages is not None and len(self.first_ids) > self.pages:
            await asyncio.Event().wait()  # until cancelled
        return await super().count_tickets(tickets)


async def test_the_back_fill_runs_beside_the_service_and_a_restart_resumes_it(
        db: AsyncDatabase[Document], mongodb_url: str) -> None:
    """A first start: the catch-up runs as a background task, readiness says backfilling
    until it is done. The process dies mid-way (the task is cancelled after some pages, with
    their position saved); a new process (its own client) goes on from the recorded mark, not
    from the start, and in the end every resolved ticket and first notice is counted once and
    the report equals the full computation."""
    tickets, escalations = await stored(db)
    counters = StopsAfterPages(db, pages=3)
    await counters.ensure_indexes()
    catch_up = CatchUp(counters, db["tickets"], db["escalations"], window_seconds=60)
    assert await catch_up.readiness() == "backfilling"
    marks = db["report_meta"]
    # Pages of 500 by default; pages of 7 here, and the counting stops at the fourth page, so
    # the cancel lands mid-way whatever the speed of the machine.
    task = asyncio.create_task(counters.catch_up(db["tickets"], db["escalations"], since=0,
                                                 batch=7))
    async def at_the_fourth_page() -> bool:
        return len(counters.first_ids) == 4

    assert await eventually(at_the_fourth_page, timeout=120)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await catch_up.readiness() == "backfilling"
    mark = await marks.find_one({"_id": BACK_FILL})
    assert mark is not None and "escalations_after" not in mark
    by_id = sorted(t["_id"] for t in tickets)
    assert mark["tickets_after"] == by_id[3 * 7 - 1]  # after the third page: saved, not lost
    assert await marks.find_one({"_id": "built"}) is None
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        resumed = StopsAfterPages(client[db.name], pages=None)
        again = CatchUp(resumed, client[db.name]["tickets"], client[db.name]["escalations"],
                        window_seconds=60)
        await again.run()
        assert await again.readiness() is None
        # It went on from the mark: its first page starts right after it.
        assert resumed.first_ids[0] == by_id[3 * 7]
        assert await marks.find_one({"_id": "built"}) is not None
        resolved = sum(t["status"] == "resolved" for t in tickets)
        first_notices = sum(not e.get("repeat", 0) for e in escalations)
        assert await db["report_ledger"].count_documents({}) == resolved + first_notices
        await assert_reports_equal(client[db.name], again.counters, tickets, escalations)
    finally:
        await client.close()
