"""Report benchmark: the compliance report over many tickets, and what it does to submissions.

    python -m benchmarks.reports --tickets 1000000

Inserts ``--tickets`` tickets in bulk straight into a fresh store (spread over a year; the
older ones resolved, a share of the last 30 days still open, re-routes, pauses, escalations),
then times the report of the last 30 days by agency as the route computes it (the store
queries of ``report_store`` and ``reports.compliance_report``), next to the same queries with
date ranges as they were before the epoch fields (``--before``, slow: it reads every ticket).
Then the latency of single complaint inserts (an HTTP submission's one round trip) while idle
and while ``--parallel`` reports run back to back.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from services.sla.report_store import (
    ESCALATION_FIELDS,
    TICKET_FIELDS,
    ReportInputs,
    ensure_report_indexes,
    load_report_inputs,
)
from services.sla.reports import (
    OPEN_STATUSES,
    ComplianceZones,
    ReportPeriod,
    compliance_report,
    tally_escalations,
)
from services.sla.reports_api import report_period
from services.sla.timing import report_epochs
from shared.contracts import utc_now
from shared.embedded import free_port, start_store
from shared.mongo import Document

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


async def fill(db: Any, count: int) -> float:
    now = utc_now()
    started = time.perf_counter()
    tickets, escalations = db["tickets"], db["escalations"]
    await ensure_report_indexes(tickets, escalations)
    for start in range(0, count, 5000):
        docs = [ticket(n, count, now) for n in range(start, min(count, start + 5000))]
        await tickets.insert_many(docs, ordered=False)
        await escalations.insert_many([
            {"_id": f"{d['_id']}:a1:response:1:0", "ticket_id": d["_id"], "tenant": d["tenant"],
             "agency": d["agency"], "assignment": 1, "clock": "response", "level": 1 + i % 2,
             "repeat": 0, "late": False, "fired_at": d["submitted_at"] + DAY,
             "fired_epoch": (d["submitted_at"] + DAY).timestamp()}
            for i, d in enumerate(docs) if i % 20 == 0], ordered=False)
    return time.perf_counter() - started


def period_of_last_30_days() -> ReportPeriod:
    today = utc_now().astimezone(ZoneInfo(TIMEZONE)).date()
    return report_period(None, None, timezone=TIMEZONE, today=today)


async def date_range_inputs(tickets: AsyncCollection[Document],
                            escalations: AsyncCollection[Document],
                            period: ReportPeriod) -> ReportInputs:
    """The queries as they were: ranges on dates (NX-27017 reads every document for them)."""
    found: dict[str, Document] = {}
    for query in ({"assigned_at": {"$gte": period.start}, "submitted_at": {"$lt": period.end}},
                  {"resolved_at": {"$gte": period.start}, "submitted_at": {"$lt": period.end}},
                  {"status": {"$in": list(OPEN_STATUSES)}}):
        async for doc in tickets.find(query, TICKET_FIELDS):
            found[doc["_id"]] = doc
    fired = await escalations.find({"fired_at": {"$gte": period.start, "$lt": period.end}},
                                   ESCALATION_FIELDS).to_list(None)
    return ReportInputs(list(found.values()), tally_escalations(fired, found))


async def one_report(db: Any, *, before: bool = False) -> tuple[float, int]:
    """Seconds for the default report by agency, and its tickets received."""
    period = period_of_last_30_days()
    started = time.perf_counter()
    load = date_range_inputs if before else load_report_inputs
    inputs = await load(db["tickets"], db["escalations"], period)
    report = compliance_report(inputs.tickets, inputs.escalations, period=period, now=utc_now(),
                               by="agency", zones=ComplianceZones())
    return time.perf_counter() - started, report.totals.tickets_received


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


async def while_running(db: Any, parallel: int, seconds: float,
                        report: Callable[[], Awaitable[tuple[float, int]]]) -> tuple[list[float], int]:
    stop = asyncio.Event()
    done = 0

    async def loop() -> None:
        nonlocal done
        while not stop.is_set():
            await report()
            done += 1

    runners = [asyncio.create_task(loop()) for _ in range(parallel)]
    waits = await insert_latencies(db, seconds)
    stop.set()
    await asyncio.gather(*runners)
    return waits, done


def figures(waits: list[float]) -> str:
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    return (f"p50 {statistics.median(waits) * 1000:6.1f} ms  p99 {p99 * 1000:7.1f} ms  "
            f"max {waits[-1] * 1000:7.1f} ms  ({len(waits)} inserts)")


async def run(url: str, args: argparse.Namespace) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    db = client["bench_reports"]
    try:
        filled = await fill(db, args.tickets)
        print(f"{args.tickets} tickets inserted in {filled:.0f} s")
        times = [await one_report(db) for _ in range(args.repeat)]
        print(f"report, last 30 days by agency: median {statistics.median(t for t, _ in times):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t, _ in times)}; {times[0][1]} tickets received)")
        if args.before:
            seconds, received = await one_report(db, before=True)
            print(f"same report with date-range queries (before): {seconds:.2f} s "
                  f"({received} tickets received)")
        idle = await insert_latencies(db, args.seconds)
        print(f"complaint insert, idle            : {figures(idle)}")
        busy, done = await while_running(db, args.parallel, args.seconds, lambda: one_report(db))
        print(f"complaint insert, {args.parallel} reports running: {figures(busy)}; {done} reports done")
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="each latency phase")
    parser.add_argument("--before", action="store_true", help="also time the date-range queries")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="disposisi-bench-reports-") as work:
        server = start_store(free_port(), Path(work))
        try:
            asyncio.run(run(f"mongodb://{server.address}/?directConnection=true", args))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
