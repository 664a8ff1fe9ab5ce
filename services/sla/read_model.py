"""The compliance read model: counters per (dimension, group, day of receipt) that a resolved
ticket and a fired escalation add to once, so a report reads a few hundred small documents
instead of every ticket of the period. Pure decisions; the store side is ``read_model_store``.

A resolved ticket is final (no action is allowed on it), so what it adds to a report never
changes: ``ticket_increments`` computes it once, with the exact rules of
``reports.compliance_report``, broken down by local day in the tenant's timezone (report periods
are whole local days). Open tickets change and their verdicts depend on the moment of the report
(a running clock past due counts as late), so they are not counted here: the report computes
them live from the open tickets (an indexed query by status, bounded by the backlog).

"Received in the period" is not a sum over days: a ticket re-assigned to the same group on two
days of the period is received once. So each receipt is keyed by its day **and the day of the
same group's previous receipt** (``prev``, -1 for none); a report over [start, end) adds the
receipts with ``start <= day < end`` and ``prev < start`` — exactly the first receipt inside the
period. The ticket's verdicts and response time ride on the receipts of the group they are
attributed to, so they count under the same condition.

Medians and 90th percentiles come from a histogram of working hours to first response
(``HOUR_EDGES``), interpolated inside the bucket: approximate, within one bucket's width.
"""

import bisect
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.sla.reports import (
    BACKLOG_BUCKETS,
    REROUTE_OUTCOMES,
    TOTAL,
    ComplianceRow,
    ComplianceZones,
    GroupBy,
    Percentage,
    Ticket,
    _assignments,
    _holder,
    _value,
    _verdict,
)

DIMENSIONS: tuple[str, ...] = ("agency", "category", "channel", "total")
NO_PREVIOUS = -1
# Upper edges (working hours) of the response-time histogram's buckets; one more bucket holds
# everything above the last edge. Finer where most answers fall (the first working days).
HOUR_EDGES: tuple[float, ...] = (
    *(q / 4 for q in range(1, 9)),            # quarter hours up to 2 h
    *(h / 2 for h in range(5, 17)),           # half hours up to 8 h
    *(float(h) for h in range(9, 25)),        # hours up to a day
    *(float(h) for h in range(28, 73, 4)),    # 4 h up to 3 days
    *(float(h) for h in range(96, 721, 24)),  # days up to 30 days
)
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
_NEVER = datetime.min.replace(tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DAY_MICROS = 86_400_000_000
COUNTER_FIELDS = ("received", "response_on_time", "response_decided", "resolution_on_time",
                  "resolution_decided", "responded", "rejections", "reroutes", "quick_repauses")


@dataclass(frozen=True)
class CounterKey:
    dimension: str
    group: str
    day: int  # local date's ordinal
    prev: int = NO_PREVIOUS

    @property
    def doc_id(self) -> str:
        return f"{self.dimension}|{self.group}|{self.day}|{self.prev}"


Increments = dict[CounterKey, Counter[str]]


def local_day(instant: datetime, zone: ZoneInfo) -> int:
    return instant.astimezone(zone).date().toordinal()


def day_of(ordinal: int) -> date:
    return date.fromordinal(ordinal)


def hour_bucket(seconds: float) -> str:
    return f"h{bisect.bisect_left(HOUR_EDGES, seconds / 3600)}"


def micros(instant: datetime) -> int:
    """Microseconds since the epoch: exact, so comparisons agree with the datetimes'."""
    return (instant - _EPOCH) // _MICROSECOND


Late = list[tuple[CounterKey, str, int]]  # (receipt, "<clock>_decided", due in micros)
BacklogEntry = tuple[str, str, int]  # (dimension, group, submitted in micros)


@dataclass(frozen=True)
class OpenPart:
    """What an open ticket adds to reports, apart from the moment of the report: its counts
    (receipts, stopped clocks' verdicts, hand-overs, pauses), its running clocks that turn late
    at their due time, and its submission time for the backlog's age buckets."""

    counts: Increments
    late: Late
    backlog: tuple[BacklogEntry, ...]


def open_part(ticket: Ticket, timezone: str) -> OpenPart:
    zone = ZoneInfo(timezone)
    counts: Increments = {}
    late: Late = []
    for dimension in DIMENSIONS:
        _add_ticket(ticket, dimension, zone, counts, late)
    submitted = micros(ticket["submitted_at"])
    return OpenPart(counts, late, tuple(
        (dimension, _group_of(ticket, dimension, str(ticket["agency"])), submitted)
        for dimension in DIMENSIONS))


BacklogKey = tuple[str, str]  # (dimension, group)


@dataclass
class OpenFigures:
    """The open tickets' parts summed, with the due and submission times kept sorted per
    receipt and group, so their figures at any moment come from a few binary searches: a
    report's cost grows with groups and days, not with open tickets."""

    counts: Increments = field(default_factory=dict)
    late: dict[tuple[CounterKey, str], list[int]] = field(default_factory=dict)
    backlog: dict[BacklogKey, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, parts: Iterable[OpenPart]) -> "OpenFigures":
        figures = cls()
        for part in parts:
            merge(figures.counts, part.counts)
            for key, name, due in part.late:
                figures.late.setdefault((key, name), []).append(due)
            for dimension, group, submitted in part.backlog:
                figures.backlog.setdefault((dimension, group), []).append(submitted)
        for times in itertools.chain(figures.late.values(), figures.backlog.values()):
            times.sort()
        return figures

    def add(self, part: OpenPart, sign: int = 1) -> None:
        """Add a ticket's part (``sign`` -1: take it away again), keeping the times sorted: a
        ticket that changed costs a few binary searches, not a new sum over every open one."""
        for key, counts in part.counts.items():
            into = self.counts.setdefault(key, Counter())
            into.update({name: sign * n for name, n in counts.items()})
        for key, name, due in part.late:
            _move(self.late, (key, name), due, sign)
        for dimension, group, submitted in part.backlog:
            _move(self.backlog, (dimension, group), submitted, sign)

    def at(self, now: datetime, dimensions: Iterable[str], start_day: int,
           end_day: int) -> tuple[Increments, dict[BacklogKey, Counter[str]]]:
        """The counts of receipts in [start_day, end_day) of these dimensions, with the
        running clocks due by ``now`` judged late, and the backlog by age at ``now``."""
        wanted = set(dimensions)
        now_micros = micros(now)

        def inside(key: CounterKey) -> bool:
            return key.dimension in wanted and start_day <= key.day < end_day

        counts: Increments = {key: Counter(c) for key, c in self.counts.items() if inside(key)}
        for (key, name), dues in self.late.items():
            if inside(key):
                counts.setdefault(key, Counter())[name] += bisect.bisect_right(dues, now_micros)
        backlog = {key: backlog_by_age(times, now_micros) for key, times in self.backlog.items()
                   if key[0] in wanted}
        return counts, backlog


def _move(sorted_times: dict[Any, list[int]], key: Any, time: int, sign: int) -> None:
    times = sorted_times.setdefault(key, [])
    if sign > 0:
        bisect.insort(times, time)
        return
    index = bisect.bisect_left(times, time)
    if index == len(times) or times[index] != time:
        raise ValueError(f"taking away a time the figures do not hold: {key}")
    del times[index]
    if not times:
        del sorted_times[key]


def backlog_by_age(submitted: list[int], now_micros: int) -> Counter[str]:
    """``_backlog_bucket`` of each sorted submission time, counted: whole days elapsed (a
    future one counts as 0 days)."""
    def at_least(days: int) -> int:
        return len(submitted) if days == 0 else bisect.bisect_right(
            submitted, now_micros - days * _DAY_MICROS)

    return Counter({label: at_least(first) - (0 if last is None else at_least(last + 1))
                    for label, first, last in BACKLOG_BUCKETS})


def ticket_increments(ticket: Ticket, timezone: str) -> Increments:
    """What a resolved ticket adds to the counters, for every dimension."""
    zone = ZoneInfo(timezone)
    out: Increments = {}
    for dimension in DIMENSIONS:
        _add_ticket(ticket, dimension, zone, out)
    return out


def _group_of(ticket: Ticket, dimension: str, agency: str) -> str:
    if dimension == "agency":
        return agency
    return TOTAL if dimension == "total" else _value(ticket.get(dimension))


def _add_ticket(ticket: Ticket, dimension: str, zone: ZoneInfo, out: Increments,
                late: "Late | None" = None) -> None:
    """``late`` given (an open ticket): a running clock with a due time is not judged here but
    listed there, since whether it is late depends on the moment of the report."""
    assignments = _assignments(ticket)
    receipts: dict[str, set[int]] = {}
    for assignment in assignments:
        if assignment.get("assigned_at") is not None:
            group = _group_of(ticket, dimension, str(assignment["agency"]))
            receipts.setdefault(group, set()).add(local_day(assignment["assigned_at"], zone))
    running: dict[str, list[tuple[str, int]]] = {}
    figures = _clock_figures(ticket, assignments, dimension,
                             running=running if late is not None else None)
    for group, days in receipts.items():
        previous = NO_PREVIOUS
        for day in sorted(days):
            key = CounterKey(dimension, group, day, previous)
            counts = out.setdefault(key, Counter())
            counts["received"] += 1
            counts.update(figures.get(group, Counter()))
            if late is not None:
                late.extend((key, name, due) for name, due in running.get(group, ()))
            previous = day
    for assignment in assignments:
        ended = assignment.get("ended_at")
        outcome = assignment.get("outcome")
        if ended is None or (outcome != "rejected" and outcome not in REROUTE_OUTCOMES):
            continue
        key = CounterKey(dimension, _group_of(ticket, dimension, str(assignment["agency"])),
                         local_day(ended, zone))
        out.setdefault(key, Counter())["rejections" if outcome == "rejected" else "reroutes"] += 1
    for pause in ticket.get("pauses") or []:
        if pause.get("quick_repause") and pause.get("started_at") is not None:
            holder = _holder(assignments, pause["started_at"])
            key = CounterKey(dimension, _group_of(ticket, dimension, holder),
                             local_day(pause["started_at"], zone))
            out.setdefault(key, Counter())["quick_repauses"] += 1


def _clock_figures(ticket: Ticket, assignments: list[Ticket], dimension: str, *,
                   running: dict[str, list[tuple[str, int]]] | None = None,
                   ) -> dict[str, Counter[str]]:
    """Verdicts and response time by the group they are attributed to (``_count_clocks``); the
    total gets them all. A resolved ticket's clocks have stopped, so ``now`` plays no part; an
    open ticket's running clocks (``running`` given) are put there with their due time."""
    response_stop = ticket.get("first_response_at") or ticket.get("resolved_at")
    resolution_stop = ticket.get("resolved_at")

    def owner(stop: datetime | None) -> str:
        agency = _holder(assignments, stop) if stop else str(ticket["agency"])
        return _group_of(ticket, dimension, agency)

    figures: dict[str, Counter[str]] = {}
    judged_at = _FAR_FUTURE if running is None else _NEVER  # open: no running clock judged here
    responded = _verdict(ticket.get("response_met"), ticket.get("response_due_at"), judged_at)
    resolved = _verdict(ticket.get("resolution_met"), ticket.get("resolution_due_at"), judged_at)
    if running is not None:
        for clock, stop in (("response", response_stop), ("resolution", resolution_stop)):
            due = ticket.get(f"{clock}_due_at")
            if ticket.get(f"{clock}_met") is None and due is not None:
                running.setdefault(owner(stop), []).append((f"{clock}_decided", micros(due)))
    seconds = ticket.get("response_working_seconds")
    response = figures.setdefault(owner(response_stop), Counter())
    if responded is not None:
        response["response_decided"] += 1
        response["response_on_time"] += int(responded)
    if seconds is not None:
        response["responded"] += 1
        response[hour_bucket(float(seconds))] += 1
    if resolved is not None:
        resolution = figures.setdefault(owner(resolution_stop), Counter())
        resolution["resolution_decided"] += 1
        resolution["resolution_on_time"] += int(resolved)
    return figures


def escalation_increments(escalation: Mapping[str, Any], ticket: Mapping[str, Any],
                          timezone: str) -> Increments:
    """A first notice (repeat 0) counts for its agency, the ticket's category and channel, and
    the total, on the local day it fired; a re-notification of the same level counts nothing."""
    if escalation.get("repeat", 0):
        return {}
    day = local_day(escalation["fired_at"], ZoneInfo(timezone))
    field_name = f"level_{int(escalation['level'])}"
    groups = {"agency": str(escalation["agency"]), "category": _value(ticket.get("category")),
              "channel": _value(ticket.get("channel")), "total": TOTAL}
    return {CounterKey(dimension, group, day): Counter({field_name: 1})
            for dimension, group in groups.items()}


def merge(into: Increments, more: Increments) -> Increments:
    for key, counts in more.items():
        into.setdefault(key, Counter()).update(counts)
    return into


# --- reading: counters (plus the live open tickets) into report rows ----------------------


@dataclass
class Figures:
    counts: Counter[str] = field(default_factory=Counter)
    backlog: Counter[str] = field(default_factory=Counter)

    def add_counters(self, doc: Mapping[str, Any]) -> None:
        self.counts.update({k: int(v) for k, v in doc.items()
                            if k in COUNTER_FIELDS or k.startswith(("h", "level_"))})

    def add_counts(self, counts: Mapping[str, int]) -> None:
        self.counts.update(counts)


def counts_in_period(doc: Mapping[str, Any], start_day: int) -> bool:
    """A receipt counts when it is the group's first in the period (see the module's text)."""
    return int(doc["prev"]) < start_day


def figures_row(group: str, figures: Figures, zones: ComplianceZones) -> ComplianceRow:
    counts = figures.counts
    responded = Percentage(counts["response_on_time"], counts["response_decided"])
    resolved = Percentage(counts["resolution_on_time"], counts["resolution_decided"])
    histogram = {int(k[1:]): n for k, n in counts.items() if k.startswith("h") and n}
    levels = {int(k.removeprefix("level_")): n for k, n in counts.items()
              if k.startswith("level_") and n}
    return ComplianceRow(
        group=group, tickets_received=counts["received"],
        response_decided=responded.decided, responded_on_time_pct=responded.value,
        resolution_decided=resolved.decided, resolved_on_time_pct=resolved.value,
        responded=counts["responded"], median_response_hours=histogram_quantile(histogram, 0.5),
        p90_response_hours=histogram_quantile(histogram, 0.9),
        escalations_by_level=dict(sorted(levels.items())), rejections=counts["rejections"],
        reroutes=counts["reroutes"], quick_repauses=counts["quick_repauses"],
        backlog={label: figures.backlog[label] for label, _, _ in BACKLOG_BUCKETS},
        backlog_total=sum(figures.backlog.values()), zone=zones.zone(responded, resolved))


def histogram_quantile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-quantile in working hours as ``statistics.quantiles`` (inclusive) takes it: between
    the values at the two closest ranks, each placed inside its bucket as if the bucket's values
    were spread evenly over it. Off by at most the width of the buckets involved."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = q * (total - 1)
    below = int(rank)
    low, high = _value_at(histogram, below), _value_at(histogram, min(below + 1, total - 1))
    return round(low + (high - low) * (rank - below), 2)


def bucket_bounds(index: int) -> tuple[float, float]:
    low = HOUR_EDGES[index - 1] if index > 0 else 0.0
    return low, HOUR_EDGES[index] if index < len(HOUR_EDGES) else low * 2


def _value_at(histogram: Mapping[int, int], rank: int) -> float:
    seen = 0
    for index in sorted(histogram):
        count = histogram[index]
        if rank < seen + count:
            low, high = bucket_bounds(index)
            return low + (high - low) * (rank - seen + 0.5) / count
        seen += count
    raise AssertionError("rank beyond the histogram")  # rank < total by construction


def report_rows(counters: Iterable[Mapping[str, Any]], open_counts: Increments,
                backlog: Mapping[BacklogKey, Counter[str]], *, by: GroupBy, start_day: int,
                zones: ComplianceZones) -> tuple[list[ComplianceRow], ComplianceRow]:
    """Rows and totals from the period's counter documents (of ``by`` and of the total) and
    the open tickets' counts of the period and backlog (``OpenFigures.at``)."""
    groups: dict[str, Figures] = {}
    totals = Figures()

    def figures_of(dimension: str, group: str) -> Figures | None:
        if dimension == "total":
            return totals
        return groups.setdefault(group, Figures()) if dimension == by else None

    for doc in counters:
        if counts_in_period(doc, start_day):
            target = figures_of(str(doc["dimension"]), str(doc["group"]))
            if target is not None:
                target.add_counters(doc)
    for key, counts in open_counts.items():
        target = figures_of(key.dimension, key.group)
        if target is not None and key.prev < start_day and any(counts.values()):
            target.add_counts(counts)
    for (dimension, group), ages in backlog.items():
        target = figures_of(dimension, group)
        if target is not None and ages.total():
            target.backlog.update(ages)
    rows = [figures_row(group, groups[group], zones) for group in sorted(groups)]
    return rows, figures_row(TOTAL, totals, zones)
