"""Compliance reports: per agency, category or channel, how well tickets were answered in time.

Pure computation over ticket documents as the SLA core stores them (the fields of the ticket
contract: status, agency, category, channel, submitted_at, first_response_at, resolved_at,
response/resolution_met, response/resolution_due_at, response_working_seconds, assignments,
pauses) and over escalation tallies. No I/O; the store query is in ``report_store``.

What counts, for a period [start, end) and a moment ``now``:

- **Received**: a ticket is received by an agency when one of its assignments to that agency
  began in the period, so a ticket re-routed from A to B inside the period counts once for A
  and once for B. By category or channel (and in the totals) a ticket counts once, when any
  of its assignments began in the period.
- **On time**: among received tickets, a clock has a verdict when it stopped (``*_met`` is
  set) or when it is still running past its due time (counted as late). Tickets without a
  verdict are left out of the percentage, not counted as on time. By agency, the verdict
  belongs to the agency that held the ticket when the clock stopped (or that holds it now,
  if it is still running), and only if that agency received the ticket in the period: an
  agency that passed a ticket on is judged by its rejections and re-routes, not by the next
  agency's answer.
- **Working time to first response**: median and 90th percentile of
  ``response_working_seconds`` (pauses excluded; a working day counts 24 h) over received
  tickets that were responded to, attributed like the response verdict; in working hours.
- **Escalations by level**: first notices (``repeat`` 0) fired in the period, all clocks.
- **Rejections / re-routes**: assignments that ended in the period with outcome
  ``rejected`` / ``rerouted`` or ``manual``, counted for the agency that held them.
- **Quick re-pauses**: pauses started in the period with ``quick_repause`` set (paused right
  after the citizen replied), counted for the agency holding the ticket then.
- **Backlog**: a snapshot at ``now`` whatever the period: open tickets (not resolved) by their
  current agency, bucketed by calendar days since submission (whole days elapsed), because
  the citizen's wait and the 60-day legal ceiling of Perpres 76/2013 run in calendar days.
- **Zone**: green, yellow or red from the on-time percentages and ``ComplianceZones``.
"""

import csv
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GroupBy = Literal["agency", "category", "channel"]
Zone = Literal["green", "yellow", "red"]
OPEN_STATUSES = ("assigned", "acknowledged", "responded", "needs_info", "rejected")
REROUTE_OUTCOMES = ("rerouted", "manual")
NO_VALUE = "(none)"
TOTAL = "TOTAL"
# (label, first day, last day): calendar days since submission; None = no upper bound.
BACKLOG_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-3", 0, 3), ("4-5", 4, 5), ("6-14", 6, 14), ("15-60", 15, 60), (">60", 61, None))

Ticket = Mapping[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneFloor(_Strict):
    responded_on_time: float = Field(ge=0, le=100, description="Percent of responses on time.")
    resolved_on_time: float = Field(ge=0, le=100, description="Percent of resolutions on time.")


class ComplianceZones(_Strict):
    """Traffic-light thresholds (the policy file's ``reports`` section). Green needs both
    percentages at or above ``green``; red is either one below ``red_below``; yellow is the
    rest. A percentage resting on fewer than ``min_decided`` verdicts is not judged; with
    neither judged the zone is null."""

    green: ZoneFloor = ZoneFloor(responded_on_time=90, resolved_on_time=80)
    red_below: ZoneFloor = ZoneFloor(responded_on_time=70, resolved_on_time=60)
    min_decided: int = Field(1, ge=1, description="Fewest verdicts a percentage needs to count.")

    @model_validator(mode="after")
    def _red_under_green(self) -> "ComplianceZones":
        for name in ("responded_on_time", "resolved_on_time"):
            if getattr(self.red_below, name) > getattr(self.green, name):
                raise ValueError(f"red_below.{name} must not exceed green.{name}")
        return self

    def zone(self, responded: "Percentage", resolved: "Percentage") -> Zone | None:
        judged = [(pct.value, getattr(self.green, name), getattr(self.red_below, name))
                  for name, pct in (("responded_on_time", responded), ("resolved_on_time", resolved))
                  if pct.value is not None and pct.decided >= self.min_decided]
        if not judged:
            return None
        if any(value < red for value, _, red in judged):
            return "red"
        if all(value >= green for value, green, _ in judged):
            return "green"
        return "yellow"


class ReportPeriod(_Strict):
    start: datetime = Field(description="First instant of the period (UTC).")
    end: datetime = Field(description="First instant after the period (UTC), exclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> "ReportPeriod":
        if self.start >= self.end:
            raise ValueError("period: start must be before end")
        return self

    def __contains__(self, instant: object) -> bool:
        return isinstance(instant, datetime) and self.start <= instant < self.end


@dataclass(frozen=True)
class Percentage:
    on_time: int
    decided: int

    @property
    def value(self) -> float | None:
        return round(100 * self.on_time / self.decided, 1) if self.decided else None


@dataclass(frozen=True)
class EscalationTally:
    """First notices fired in the period for one (agency, category, channel, level)."""

    agency: str
    category: str | None
    channel: str | None
    level: int
    count: int


class ComplianceRow(BaseModel):
    group: str = Field(description="Agency code, category or channel; '(none)' when unset.")
    tickets_received: int
    response_decided: int = Field(description="Received tickets whose response clock has a verdict.")
    responded_on_time_pct: float | None
    resolution_decided: int
    resolved_on_time_pct: float | None
    responded: int = Field(description="Tickets behind the response-time figures.")
    median_response_hours: float | None = Field(
        description="Working hours, pauses excluded. From the read model's histogram: "
                    "approximate, within one bucket (a quarter hour below 2 h, at most a day).")
    p90_response_hours: float | None = Field(description="Approximate as the median is.")
    escalations_by_level: dict[int, int] = Field(description="Level -> first notices fired.")
    rejections: int
    reroutes: int
    quick_repauses: int = Field(description="Pauses started right after the citizen replied.")
    backlog: dict[str, int] = Field(description="Open tickets now, by calendar days since submission.")
    backlog_total: int
    zone: Zone | None


class ComplianceReport(BaseModel):
    by: GroupBy
    period: ReportPeriod
    generated_at: datetime
    zones: ComplianceZones
    rows: list[ComplianceRow]
    totals: ComplianceRow = Field(description="Each ticket once (a re-routed one is not doubled).")
    open_tickets_as_of: datetime | None = Field(
        None, description="When the open tickets' figures were read (the read model's "
                          "snapshot, refreshed in the background; opened, re-assigned and "
                          "resolved tickets are taken as they are now). Null: computed now.")


@dataclass
class _Tally:
    received: set[str] = field(default_factory=set)
    response: list[bool] = field(default_factory=list)
    resolution: list[bool] = field(default_factory=list)
    response_seconds: list[float] = field(default_factory=list)
    escalations: Counter[int] = field(default_factory=Counter)
    rejections: int = 0
    reroutes: int = 0
    quick_repauses: int = 0
    backlog: Counter[str] = field(default_factory=Counter)


def compliance_report(tickets: Iterable[Ticket], escalations: Iterable[EscalationTally], *,
                      period: ReportPeriod, now: datetime, by: GroupBy,
                      zones: ComplianceZones) -> ComplianceReport:
    """The report over ``period`` as seen at ``now``, one row per group plus the totals."""
    groups: defaultdict[str, _Tally] = defaultdict(_Tally)
    totals = _Tally()
    for ticket in tickets:
        _count_ticket(ticket, by, period, now, groups, totals)
    for tally in escalations:
        key = tally.agency if by == "agency" else _value(getattr(tally, by))
        groups[key].escalations[tally.level] += tally.count
        totals.escalations[tally.level] += tally.count
    rows = [_row(key, groups[key], zones) for key in sorted(groups)]
    return ComplianceReport(by=by, period=period, generated_at=now, zones=zones, rows=rows,
                            totals=_row(TOTAL, totals, zones))


def tally_escalations(escalations: Iterable[Mapping[str, Any]],
                      tickets_by_id: Mapping[str, Ticket]) -> list[EscalationTally]:
    """Count first notices (``repeat`` 0 or absent) by agency, the ticket's category and
    channel, and level. Re-notifications of the same level are not new breaches."""
    counts: Counter[tuple[str, str | None, str | None, int]] = Counter()
    for escalation in escalations:
        if escalation.get("repeat", 0):
            continue
        ticket = tickets_by_id.get(escalation["ticket_id"], {})
        counts[(escalation["agency"], ticket.get("category"), ticket.get("channel"),
                int(escalation["level"]))] += 1
    return [EscalationTally(agency, category, channel, level, count)
            for (agency, category, channel, level), count in counts.items()]


def _count_ticket(ticket: Ticket, by: GroupBy, period: ReportPeriod, now: datetime,
                  groups: defaultdict[str, _Tally], totals: _Tally) -> None:
    assignments = _assignments(ticket)
    dimension = None if by == "agency" else _value(ticket.get(by))

    def group_of(agency: str) -> str:
        return agency if dimension is None else dimension

    received = {str(a["agency"]) for a in assignments if a.get("assigned_at") in period}
    receivers = {group_of(agency) for agency in received}
    for key in receivers:
        groups[key].received.add(str(ticket["_id"]))
    if received:
        totals.received.add(str(ticket["_id"]))
        _count_clocks(ticket, assignments, now, group_of, receivers, groups, totals)
    _count_handovers(assignments, period, group_of, groups, totals)
    for pause in ticket.get("pauses") or []:
        if pause.get("quick_repause") and pause.get("started_at") in period:
            groups[group_of(_holder(assignments, pause["started_at"]))].quick_repauses += 1
            totals.quick_repauses += 1
    if ticket.get("status") in OPEN_STATUSES:
        bucket = _backlog_bucket(ticket["submitted_at"], now)
        groups[group_of(str(ticket["agency"]))].backlog[bucket] += 1
        totals.backlog[bucket] += 1


def _count_clocks(ticket: Ticket, assignments: list[Ticket], now: datetime,
                  group_of: Callable[[str], str], receivers: set[str], groups: defaultdict[str, _Tally],
                  totals: _Tally) -> None:
    """On-time verdicts and response time, for the group that held the ticket when each
    clock stopped (or holds it now), if that group received it in the period."""
    response_stop = ticket.get("first_response_at") or ticket.get("resolved_at")
    response_owner = group_of(_holder(assignments, response_stop) if response_stop
                              else str(ticket["agency"]))
    resolution_stop = ticket.get("resolved_at")
    resolution_owner = group_of(_holder(assignments, resolution_stop) if resolution_stop
                                else str(ticket["agency"]))
    responded = _verdict(ticket.get("response_met"), ticket.get("response_due_at"), now)
    resolved = _verdict(ticket.get("resolution_met"), ticket.get("resolution_due_at"), now)
    seconds = ticket.get("response_working_seconds")
    targets = [totals]
    if response_owner in receivers:
        targets.append(groups[response_owner])
    for tally in targets:
        if responded is not None:
            tally.response.append(responded)
        if seconds is not None:
            tally.response_seconds.append(float(seconds))
    if resolved is not None:
        totals.resolution.append(resolved)
        if resolution_owner in receivers:
            groups[resolution_owner].resolution.append(resolved)


def _count_handovers(assignments: list[Ticket], period: ReportPeriod,
                     group_of: Callable[[str], str],
                     groups: defaultdict[str, _Tally], totals: _Tally) -> None:
    for assignment in assignments:
        if assignment.get("ended_at") not in period:
            continue
        tally = groups[group_of(str(assignment["agency"]))]
        if assignment.get("outcome") == "rejected":
            tally.rejections += 1
            totals.rejections += 1
        elif assignment.get("outcome") in REROUTE_OUTCOMES:
            tally.reroutes += 1
            totals.reroutes += 1


def _assignments(ticket: Ticket) -> list[Ticket]:
    """The ticket's assignments by start; a document without them has had one."""
    found = ticket.get("assignments") or [
        {"agency": ticket["agency"], "assignment": ticket.get("assignment", 1),
         "assigned_at": ticket.get("assigned_at"), "ended_at": None, "outcome": None}]
    return sorted(found, key=lambda a: a.get("assignment") or 0)


def _holder(assignments: list[Ticket], instant: datetime) -> str:
    """The agency whose assignment had begun last at ``instant`` (the first one if none had)."""
    holder = assignments[0]
    for assignment in assignments:
        started = assignment.get("assigned_at")
        if started is not None and started <= instant:
            holder = assignment
    return str(holder["agency"])


def _verdict(met: object, due_at: datetime | None, now: datetime) -> bool | None:
    if met is not None:
        return bool(met)
    if due_at is not None and due_at <= now:
        return False  # still running past due: late already, whatever happens next
    return None


def _backlog_bucket(submitted_at: datetime, now: datetime) -> str:
    days = max(0, (now - submitted_at).days)
    for label, first, last in BACKLOG_BUCKETS:
        if first <= days and (last is None or days <= last):
            return label
    raise AssertionError(f"no backlog bucket for {days} days")  # the buckets cover every day


def _value(value: object) -> str:
    return NO_VALUE if value is None or value == "" else str(value)


def _row(group: str, tally: _Tally, zones: ComplianceZones) -> ComplianceRow:
    responded = Percentage(sum(tally.response), len(tally.response))
    resolved = Percentage(sum(tally.resolution), len(tally.resolution))
    median, p90 = _median_and_p90(tally.response_seconds)
    return ComplianceRow(
        group=group, tickets_received=len(tally.received),
        response_decided=responded.decided, responded_on_time_pct=responded.value,
        resolution_decided=resolved.decided, resolved_on_time_pct=resolved.value,
        responded=len(tally.response_seconds), median_response_hours=median,
        p90_response_hours=p90, escalations_by_level=dict(sorted(tally.escalations.items())),
        rejections=tally.rejections, reroutes=tally.reroutes, quick_repauses=tally.quick_repauses,
        backlog={label: tally.backlog[label] for label, _, _ in BACKLOG_BUCKETS},
        backlog_total=sum(tally.backlog.values()), zone=zones.zone(responded, resolved))


def _median_and_p90(seconds: list[float]) -> tuple[float | None, float | None]:
    """In working hours. p90 interpolates linearly between the closest ranks (the 'inclusive'
    method of ``statistics.quantiles``), so it never lies outside the observed times."""
    if not seconds:
        return None, None
    p90 = seconds[0] if len(seconds) == 1 else statistics.quantiles(seconds, n=10,
                                                                     method="inclusive")[-1]
    return round(statistics.median(seconds) / 3600, 2), round(p90 / 3600, 2)


def report_csv(report: ComplianceReport) -> str:
    """One line per group then the totals; a column per escalation level seen (at least
    level 1) and per backlog bucket; empty cells where a figure has no data."""
    levels = sorted({level for row in [*report.rows, report.totals]
                     for level in row.escalations_by_level} | {1})
    header = [report.by, "tickets_received", "response_decided", "responded_on_time_pct",
              "resolution_decided", "resolved_on_time_pct", "responded", "median_response_hours",
              "p90_response_hours", *[f"escalations_level_{level}" for level in levels],
              "rejections", "reroutes", "quick_repauses",
              *[f"backlog_{label}_days" for label, _, _ in BACKLOG_BUCKETS], "backlog_total", "zone"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in [*report.rows, report.totals]:
        writer.writerow(["" if cell is None else cell for cell in [
            row.group, row.tickets_received, row.response_decided, row.responded_on_time_pct,
            row.resolution_decided, row.resolved_on_time_pct, row.responded,
            row.median_response_hours, row.p90_response_hours,
            *[row.escalations_by_level.get(level, 0) for level in levels],
            row.rejections, row.reroutes, row.quick_repauses,
            *[row.backlog[label] for label, _, _ in BACKLOG_BUCKETS], row.backlog_total, row.zone]])
    return out.getvalue()
