"""Report benchmark: the compliance report over many tickets, and what it does to submissions.

    python -m benchmarks.reports --tickets 1000000

Generates ``--tickets`` tickets (spread over a year; the older ones resolved, a tenth of the
last 30 days' still open, re-routes, pauses, an escalation for every 20th) into a fresh store
as the SLA service keeps them with its compliance read model: the open tickets stored, the
resolved ones and the escalations as counters (see ``fill``). Then times the report of the last
30 days by agency, category and channel as the route computes it (``ReportCounters.report``),
and the latency of single complaint inserts (an HTTP submission's one round trip) while idle
and while ``--parallel`` reports run back to back.
"""

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import AsyncMongoClient

from services.sla.inbox import inbox_entry
from services.sla.metrics import count_open
from services.sla.read_model import Increments, escalation_increments, merge, ticket_increments
from services.sla.read_model_store import OpenSnapshot, ReportCounters
from services.sla.report_store import ensure_report_indexes
from services.sla.reports import OPEN_STATUSES, ComplianceZones, GroupBy, ReportPeriod
from services.sla.reports_api import report_period
from services.sla.timing import report_epochs
from shared.contracts import utc_now
from shared.embedded import free_port, start_store
from shared.mongo import Document
from shared.settings import Settings

AGENCIES = ["DLH", "PUPR", "DISHUB", "DINKES", "DISDIK", "PDAM", "SATPOL", "DUKCAPIL"]
CHANNELS = ["web", "whatsapp", "lapor", "sms"]
CATEGORIES = ["Sampah", "Jalan", "Air", "Lampu", "Kesehatan", "Sekolah"]
TIMEZONE = "Asia/Jakarta"
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def ticket(n: int, count: int, now: Any) -> Document:
    at = now - timedelta(seconds=365 * 86400 * n / count)
    agency = AGENCIES[n % len(AGENCIES)]
    recent = now - at < 30 * DAY
    doc: Document = {
        "_id": f"BKL-{n:08d}", "tenant": "kota-bengkulu", "status": "assigned", "agency": agency,
        "assignment": 1, "category": CATEGORIES[n % len(CATEGORIES)],
        "channel": CHANNELS[n % len(CHANNELS)], "priority": "normal", "submitted_at": at,
        "assigned_at": at, "first_response_at": None, "resolved_at": None,
        "response_working_seconds": None, "resolution_working_seconds": None,
        "response_met": None, "resolution_met": None, "response_due_at": at + 2 * DAY,
        "resolution_due_at": at + 14 * DAY, "next_check_at": at + DAY, "pauses": [],
        "assignments": [{"agency": agency, "assignment": 1, "assigned_at": at, "ended_at": None,
                         "outcome": None, "reason": None}], "rejected_by": [],
        "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat",
        "history": [{"at": at, "action": "assigned", "actor": "router", "agency": agency}],
    }
    if not recent or n % 10:  # a tenth of the last 30 days' tickets are still open
        doc.update(status="resolved", first_response_at=at + 3 * HOUR, resolved_at=at + 2 * DAY,
                   response_met=n % 9 != 0, resolution_met=n % 5 != 0,
                   response_working_seconds=float(1800 + 37 * (n % 400)), next_check_at=None)
    if n % 13 == 0:
        moved = at + 4 * HOUR
        other = AGENCIES[(n + 3) % len(AGENCIES)]
        doc.update(agency=other, assignment=2, assigned_at=moved, assignments=[
            {**doc["assignments"][0], "ended_at": moved, "outcome": "rejected"},
            {"agency": other, "assignment": 2, "assigned_at": moved, "ended_at": None,
             "outcome": None, "reason": None}])
    if n % 17 == 0:
        doc["pauses"] = [{"started_at": at + 5 * HOUR, "ended_at": at + 6 * HOUR,
                          "working_seconds": 3600.0, "quick_repause": n % 2 == 0}]
    return doc | report_epochs(doc)


def escalation(doc: Document) -> Document:
    fired = doc["submitted_at"] + DAY
    return {"_id": f"{doc['_id']}:a1:response:1:0", "ticket_id": doc["_id"], "tenant": doc["tenant"],
            "agency": doc["agency"], "assignment": 1, "clock": "response",
            "level": 1 + int(doc["_id"][-1]) % 2, "repeat": 0, "late": False, "fired_at": fired,
            "fired_epoch": fired.timestamp()}


async def fill(db: Any, count: int) -> tuple[float, int, int]:
    """The store as the SLA service would have it after ``count`` tickets: the open ones stored
    (the report computes them live), the resolved ones and the escalations as the read model's
    counters, built here from the generated documents with the same increments the flow
    applies (``ticket_increments``, ``escalation_increments``) and written in bulk, because
    inserting a million tickets and counting them one transaction at a time takes hours on
    NX-27017 here. Returns seconds, open tickets stored and counter documents written."""
    now = utc_now()
    started = time.perf_counter()
    tickets = db["tickets"]
    await ensure_report_indexes(tickets, db["escalations"])
    counters = ReportCounters(db, lambda tenant: TIMEZONE)
    await counters.ensure_indexes()
    increments: Increments = {}
    stored = 0
    for start in range(0, count, 5000):
        docs = [ticket(n, count, now) for n in range(start, min(count, start + 5000))]
        open_ones = [d for d in docs if d["status"] in OPEN_STATUSES]
        if open_ones:
            await tickets.insert_many(open_ones, ordered=False)
            # Their inbox entries, which the SLA service writes with each open ticket.
            await db["inbox"].insert_many([dict(inbox_entry(d) or {}) for d in open_ones])
            stored += len(open_ones)
        for doc in docs:
            if doc["status"] == "resolved":
                merge(increments, ticket_increments(doc, TIMEZONE))
        for i, doc in enumerate(docs):
            if i % 20 == 0:
                merge(increments, escalation_increments(escalation(doc), doc, TIMEZONE))
    tenant = "kota-bengkulu"
    rows = [{"_id": f"{tenant}|{key.doc_id}", "tenant": tenant, "dimension": key.dimension,
             "group": key.group, "day": key.day, "prev": key.prev, **counts}
            for key, counts in increments.items()]
    for start in range(0, len(rows), 5000):
        await counters.counters.insert_many(rows[start:start + 5000], ordered=False)
    return time.perf_counter() - started, stored, len(rows)


def period_of_last_30_days() -> ReportPeriod:
    today = utc_now().astimezone(ZoneInfo(TIMEZONE)).date()
    return report_period(None, None, timezone=TIMEZONE, today=today)


def read_model(db: Any) -> ReportCounters:
    """The read model as the SLA app wires it: counters and the open tickets' snapshot."""
    return ReportCounters(db, lambda tenant: TIMEZONE,
                          open_tickets=OpenSnapshot(db["tickets"], db["inbox"]))


async def one_report(model: ReportCounters, by: GroupBy = "agency") -> tuple[float, int]:
    """Seconds for the default report (the last 30 days) as the route computes it from the
    read model, and its tickets received."""
    period = period_of_last_30_days()
    started = time.perf_counter()
    report = await model.report(model.db["tickets"], tenant="kota-bengkulu", period=period,
                                now=utc_now(), by=by, timezone=TIMEZONE, zones=ComplianceZones())
    return time.perf_counter() - started, report.totals.tickets_received


async def periodically(seconds: float, stop: Any, step: Callable[[], Awaitable[Any]], *,
                       wait_first: bool = False) -> None:
    waited = not wait_first
    while not stop.is_set():
        if waited:
            await step()
        for _ in range(int(seconds * 10)):
            if stop.is_set():
                return
            await asyncio.sleep(0.1)
        waited = True


async def service_loops(model: ReportCounters, args: argparse.Namespace, stop: Any) -> None:
    """The SLA service's background work on the open tickets while reports run: the
    snapshot's reads of changes every ``--refresh`` seconds, its full read every ``--rebuild``
    seconds, and the open-ticket gauges, counted from the snapshot, every
    ``metrics_refresh_seconds``."""
    async def gauges() -> None:
        docs = await model.open_documents()
        count_open(docs or [], ["kota-bengkulu"], utc_now())

    await asyncio.gather(
        periodically(args.refresh, stop, model.refresh_open),
        periodically(args.rebuild, stop, lambda: model.refresh_open(rebuild_after=0),
                     wait_first=True),
        periodically(Settings().metrics_refresh_seconds, stop, gauges))


async def insert_latencies(db: Any, seconds: float) -> list[float]:
    """One complaint-sized insert at a time for ``seconds``: each one's latency."""
    waits: list[float] = []
    complaints = db["bench_complaints"]
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        await complaints.insert_one({"text": "Jalan berlubang besar di depan SD 5" * 20,
                                     "submitted_at": utc_now()})
        waits.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return sorted(waits)


def reports_process(url: str, args: argparse.Namespace, ready: Any, stop: Any,
                    results: Any) -> None:
    """``parallel`` reports back to back in a process of their own, as the SLA service runs
    them apart from intake's submissions (in the measuring process their CPU time would hold
    up its event loop and be counted as insert latency); puts each report's seconds."""
    async def loops() -> list[float]:
        client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
        seconds: list[float] = []
        model = read_model(client["bench_reports"])
        await model.refresh_open()

        async def loop() -> None:
            while not stop.is_set():
                seconds.append((await one_report(model))[0])

        try:
            ready.set()
            await asyncio.gather(service_loops(model, args, stop),
                                 *(loop() for _ in range(args.parallel)))
        finally:
            await client.close()
        return seconds

    results.put(asyncio.run(loops()))


async def while_running(db: Any, url: str, args: argparse.Namespace,
                        ) -> tuple[list[float], list[float]]:
    """Insert latencies while reports run, and those reports' own seconds."""
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    worker = context.Process(target=reports_process, args=(url, args, ready, stop, results))
    worker.start()
    await asyncio.to_thread(ready.wait)
    waits = await insert_latencies(db, args.seconds)
    stop.set()
    reports: list[float] = await asyncio.to_thread(results.get)
    worker.join()
    return waits, reports


def figures(waits: list[float]) -> str:
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    return (f"p50 {statistics.median(waits) * 1000:6.1f} ms  p99 {p99 * 1000:7.1f} ms  "
            f"max {waits[-1] * 1000:7.1f} ms  ({len(waits)} inserts)")


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"


async def run(url: str, args: argparse.Namespace) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    db = client["bench_reports"]
    try:
        filled, stored, rows = await fill(db, args.tickets)
        print(f"{args.tickets} tickets: {stored} open ones stored, the rest and the escalations "
              f"as {rows} counter documents, in {filled:.0f} s")
        model = read_model(db)
        started = time.perf_counter()
        await model.refresh_open()
        print(f"open tickets' snapshot, first (full) read in {time.perf_counter() - started:.2f} s "
              f"(off the request path; again every {args.rebuild:g} s, between only the "
              f"changes, every {args.refresh:g} s and per report)")
        for by in ("agency", "category", "channel"):
            times = [await one_report(model, by) for _ in range(args.repeat)]
            print(f"report, last 30 days by {by:8}: {percentiles([t for t, _ in times])} over "
                  f"{args.repeat} runs ({times[0][1]} tickets received)")
        idle = await insert_latencies(db, args.seconds)
        print(f"complaint insert, idle            : {figures(idle)}")
        busy, reports = await while_running(db, url, args)
        print(f"complaint insert, {args.parallel} reports running: {figures(busy)}")
        print(f"those {len(reports)} reports (by agency, {args.parallel} at a time): "
              f"{percentiles(reports)}")
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="each latency phase")
    parser.add_argument("--refresh", type=float, default=Settings().report_open_refresh_seconds,
                        help="seconds between the open tickets' snapshot's reads of changes")
    parser.add_argument("--rebuild", type=float, default=None,
                        help="seconds between its full reads (default: half of --seconds, so "
                             "one lands while reports run; the service's is "
                             "report_open_rebuild_seconds)")
    args = parser.parse_args()
    if args.rebuild is None:
        args.rebuild = args.seconds / 2
    with tempfile.TemporaryDirectory(prefix="disposisi-bench-reports-") as work:
        server = start_store(free_port(), Path(work))
        try:
            asyncio.run(run(f"mongodb://{server.address}/?directConnection=true", args))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
