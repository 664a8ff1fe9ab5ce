"""Compliance reports on hand-built ticket documents (the fields of the ticket contract)."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from services.sla.reports import (
    BACKLOG_BUCKETS,
    ComplianceReport,
    ComplianceRow,
    ComplianceZones,
    EscalationTally,
    GroupBy,
    Percentage,
    ReportPeriod,
    ZoneFloor,
    compliance_report,
    report_csv,
    tally_escalations,
)
from services.sla.reports_api import report_period

START = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD = ReportPeriod(start=START, end=datetime(2026, 12, 1, tzinfo=UTC))
NOW = datetime(2026, 12, 10, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def assignment(agency: str, number: int, at: datetime, ended_at: datetime | None = None,
               outcome: str | None = None) -> dict[str, Any]:
    return {"agency": agency, "assignment": number, "assigned_at": at, "ended_at": ended_at,
            "outcome": outcome, "reason": "bukan tupoksi" if outcome == "rejected" else None}


def ticket(ticket_id: str, *, at: datetime = START + DAY, agency: str = "DLH",
           **fields: Any) -> dict[str, Any]:
    """A ticket submitted and assigned at ``at``, still open with clocks running and not due."""
    doc: dict[str, Any] = {
        "_id": ticket_id, "status": "assigned", "agency": agency, "assignment": 1,
        "category": "Sampah", "channel": "web", "priority": "normal", "submitted_at": at,
        "assigned_at": at, "first_response_at": None, "resolved_at": None,
        "response_working_seconds": None, "resolution_working_seconds": None,
        "response_met": None, "resolution_met": None,
        "response_due_at": NOW + DAY, "resolution_due_at": NOW + 10 * DAY,
        "assignments": [assignment(agency, 1, at)], "rejected_by": [], "pauses": [],
        "history": [{"at": at, "action": "assigned", "actor": "router", "agency": agency}],
        "next_check_at": NOW + DAY,
    }
    doc.update(fields)
    return doc


def responded(ticket_id: str, hours: float, *, met: bool, agency: str = "DLH",
              **fields: Any) -> dict[str, Any]:
    at = START + DAY
    return ticket(ticket_id, agency=agency, status="responded", first_response_at=at + hours * HOUR,
                  response_working_seconds=hours * 3600, response_met=met, **fields)


def report(tickets: list[dict[str, Any]], by: GroupBy = "agency",
           escalations: list[EscalationTally] | None = None,
           zones: ComplianceZones | None = None) -> ComplianceReport:
    return compliance_report(tickets, escalations or [], period=PERIOD, now=NOW, by=by,
                             zones=zones or ComplianceZones())


def row(result: ComplianceReport, group: str) -> ComplianceRow:
    [found] = [r for r in result.rows if r.group == group]
    return found


def rerouted(ticket_id: str, first: datetime, moved: datetime, **fields: Any) -> dict[str, Any]:
    """Assigned to DLH at ``first``, re-routed to PUPR at ``moved``."""
    return ticket(ticket_id, at=first, agency="PUPR", assignment=2, assigned_at=moved, assignments=[
        assignment("DLH", 1, first, ended_at=moved, outcome="rerouted"),
        assignment("PUPR", 2, moved)], **fields)


def test_a_ticket_rerouted_within_the_period_is_received_by_both_agencies_once_in_totals() -> None:
    result = report([rerouted("T-1", START + DAY, START + 2 * DAY), ticket("T-2")])
    assert row(result, "DLH").tickets_received == 2
    assert row(result, "PUPR").tickets_received == 1
    assert result.totals.tickets_received == 2
    assert (row(result, "DLH").reroutes, row(result, "PUPR").reroutes, result.totals.reroutes) == (1, 0, 1)


def test_only_assignments_that_began_in_the_period_count_as_received() -> None:
    before = START - 3 * DAY
    result = report([
        rerouted("T-moved-in", before, START + DAY),  # DLH before, PUPR within
        ticket("T-old", at=before),                   # nothing began in the period
        ticket("T-late", at=PERIOD.end),              # the end is exclusive
    ])
    assert row(result, "PUPR").tickets_received == 1
    assert row(result, "DLH").tickets_received == 0
    assert result.totals.tickets_received == 1


def test_on_time_counts_stopped_clocks_and_overdue_running_ones_only() -> None:
    result = report([
        responded("T-on-time", 2, met=True),
        responded("T-late", 50, met=False),
        ticket("T-overdue", response_due_at=NOW - HOUR),  # still running, already late
        ticket("T-not-due"),                               # no verdict yet: left out
    ])
    dlh = row(result, "DLH")
    assert dlh.response_decided == 3
    assert dlh.responded_on_time_pct == pytest.approx(100 / 3, abs=0.05)
    assert dlh.tickets_received == 4


def test_resolution_verdicts_count_like_response_ones() -> None:
    resolved = ticket("T-ok", status="resolved", resolved_at=START + 2 * DAY, resolution_met=True,
                      response_met=True, first_response_at=START + DAY + HOUR)
    result = report([resolved, ticket("T-overdue", resolution_due_at=NOW - DAY), ticket("T-open")])
    dlh = row(result, "DLH")
    assert (dlh.resolution_decided, dlh.resolved_on_time_pct) == (2, 50.0)


def test_a_verdict_belongs_to_the_agency_that_held_the_ticket_when_the_clock_stopped() -> None:
    moved = START + 2 * DAY
    answered_by_pupr = rerouted("T-1", START + DAY, moved, status="responded",
                                first_response_at=moved + HOUR, response_met=False,
                                response_working_seconds=49 * 3600)
    result = report([answered_by_pupr])
    assert row(result, "PUPR").response_decided == 1
    assert row(result, "PUPR").responded_on_time_pct == 0.0
    assert row(result, "DLH").response_decided == 0
    assert row(result, "DLH").median_response_hours is None
    assert result.totals.response_decided == 1


def test_median_and_p90_of_working_time_to_first_response() -> None:
    hours = [4, 1, 10, 3, 2]
    result = report([responded(f"T-{i}", h, met=True) for i, h in enumerate(hours)])
    dlh = row(result, "DLH")
    assert dlh.responded == 5
    assert dlh.median_response_hours == 3.0
    # Sorted 1, 2, 3, 4, 10: rank 0.9 * 4 = 3.6 lies 60% of the way from 4 to 10.
    assert dlh.p90_response_hours == pytest.approx(7.6)


def test_one_responded_ticket_is_its_own_median_and_p90() -> None:
    dlh = row(report([responded("T-1", 5.5, met=True)]), "DLH")
    assert (dlh.median_response_hours, dlh.p90_response_hours) == (5.5, 5.5)


@pytest.mark.parametrize(("age_days", "bucket"), [
    (0, "0-3"), (3, "0-3"), (4, "4-5"), (5, "4-5"), (6, "6-14"), (14, "6-14"), (15, "15-60"),
    (60, "15-60"), (61, ">60"), (400, ">60")])
def test_backlog_buckets_by_calendar_days_since_submission(age_days: int, bucket: str) -> None:
    submitted = NOW - age_days * DAY - HOUR
    result = report([ticket("T-open", at=submitted),
                     ticket("T-closed", at=submitted, status="resolved", resolved_at=NOW - HOUR)])
    dlh = row(result, "DLH")
    assert dlh.backlog[bucket] == 1
    assert dlh.backlog_total == 1 == sum(dlh.backlog.values())
    assert list(dlh.backlog) == [label for label, _, _ in BACKLOG_BUCKETS]


def test_backlog_counts_open_tickets_of_any_age_under_their_current_agency() -> None:
    long_ago = START - 90 * DAY
    result = report([rerouted("T-1", long_ago, long_ago + DAY),
                     ticket("T-rejected", status="rejected", agency="DINSOS")])
    assert row(result, "PUPR").backlog[">60"] == 1
    assert row(result, "DINSOS").backlog_total == 1
    assert "DLH" not in [r.group for r in result.rows]  # nothing of DLH's in the period or now
    assert result.totals.backlog_total == 2


def test_rejections_count_for_the_rejecting_agency_in_the_period() -> None:
    rejected_at = START + 2 * DAY
    bounced = ticket("T-1", agency="PUPR", assignment=2, assigned_at=rejected_at + HOUR,
                     assignments=[assignment("DLH", 1, START + DAY, rejected_at, "rejected"),
                                  assignment("PUPR", 2, rejected_at + HOUR)],
                     rejected_by=["DLH"])
    earlier = START - 5 * DAY
    before = ticket("T-2", at=earlier, agency="PUPR", assignments=[
        assignment("DLH", 1, earlier, earlier + DAY, "rejected"), assignment("PUPR", 2, earlier + DAY)])
    result = report([bounced, before])
    assert (row(result, "DLH").rejections, row(result, "PUPR").rejections) == (1, 0)
    assert result.totals.rejections == 1


def test_quick_repauses_in_the_period_are_flagged_for_the_agency_holding_the_ticket() -> None:
    pauses = [
        {"started_at": START + 2 * DAY, "ended_at": START + 3 * DAY, "working_seconds": 86400.0,
         "quick_repause": False},
        {"started_at": START + 4 * DAY, "ended_at": None, "working_seconds": None, "quick_repause": True},
        {"started_at": START - DAY, "ended_at": START, "working_seconds": 3600.0, "quick_repause": True},
    ]
    result = report([rerouted("T-1", START - 2 * DAY, START + 3 * DAY, pauses=pauses, status="needs_info")])
    assert row(result, "PUPR").quick_repauses == 1
    assert row(result, "DLH").quick_repauses == 0
    assert result.totals.quick_repauses == 1


def test_escalations_are_first_notices_by_level_grouped_by_agency_or_ticket_category() -> None:
    tickets = {"T-1": ticket("T-1", category="Sampah"), "T-2": ticket("T-2", category=None)}
    fired = [
        {"ticket_id": "T-1", "agency": "DLH", "clock": "response", "level": 1, "repeat": 0},
        {"ticket_id": "T-1", "agency": "DLH", "clock": "response", "level": 1, "repeat": 1},
        {"ticket_id": "T-1", "agency": "DLH", "clock": "resolution", "level": 1, "repeat": 0},
        {"ticket_id": "T-2", "agency": "PUPR", "clock": "response", "level": 2},
    ]
    tallies = tally_escalations(fired, tickets)
    by_agency = report(list(tickets.values()), escalations=tallies)
    assert row(by_agency, "DLH").escalations_by_level == {1: 2}
    assert row(by_agency, "PUPR").escalations_by_level == {2: 1}
    assert by_agency.totals.escalations_by_level == {1: 2, 2: 1}
    by_category = report(list(tickets.values()), "category", escalations=tallies)
    assert row(by_category, "Sampah").escalations_by_level == {1: 2}
    assert row(by_category, "(none)").escalations_by_level == {2: 1}


def test_by_channel_counts_each_ticket_once_under_its_channel() -> None:
    result = report([rerouted("T-1", START + DAY, START + 2 * DAY, channel="whatsapp"),
                     responded("T-2", 3, met=True, channel="web")], "channel")
    assert [r.group for r in result.rows] == ["web", "whatsapp"]
    assert row(result, "whatsapp").tickets_received == 1
    assert row(result, "web").responded_on_time_pct == 100.0


@pytest.mark.parametrize(("on_time", "resolved", "zone"), [
    (9, 8, "green"), (9, 7, "yellow"), (8, 8, "yellow"), (6, 9, "red"), (10, 5, "red")])
def test_zone_from_both_percentages(on_time: int, resolved: int, zone: str) -> None:
    zones = ComplianceZones()
    assert zones.zone(Percentage(on_time, 10), Percentage(resolved, 10)) == zone


def test_zone_judges_only_percentages_with_enough_verdicts() -> None:
    zones = ComplianceZones(min_decided=5)
    assert zones.zone(Percentage(1, 4), Percentage(0, 4)) is None
    assert zones.zone(Percentage(5, 5), Percentage(0, 4)) == "green"
    assert ComplianceZones().zone(Percentage(0, 0), Percentage(0, 0)) is None


def test_zones_come_from_the_thresholds_given() -> None:
    lenient = ComplianceZones(green=ZoneFloor(responded_on_time=50, resolved_on_time=50),
                              red_below=ZoneFloor(responded_on_time=10, resolved_on_time=10))
    tickets = [responded("T-1", 2, met=True), responded("T-2", 90, met=False)]
    assert row(report(tickets), "DLH").zone == "red"
    assert row(report(tickets, zones=lenient), "DLH").zone == "green"


def test_red_thresholds_above_green_ones_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match=r"red_below.resolved_on_time must not exceed"):
        ComplianceZones(red_below=ZoneFloor(responded_on_time=70, resolved_on_time=85))


def test_a_period_must_start_before_it_ends() -> None:
    with pytest.raises(ValidationError, match="start must be before end"):
        ReportPeriod(start=PERIOD.end, end=PERIOD.start)


def test_csv_has_a_header_then_a_line_per_group_and_the_totals() -> None:
    escalations = [EscalationTally("DLH", "Sampah", "web", 3, 2)]
    result = report([rerouted("T-1", START + DAY, START + 2 * DAY), responded("T-2", 3, met=True),
                     ticket("T-3", agency="DISHUB", category=None)], escalations=escalations)
    lines = list(csv.DictReader(io.StringIO(report_csv(result))))
    assert [line["agency"] for line in lines] == ["DISHUB", "DLH", "PUPR", "TOTAL"]
    header = next(csv.reader(io.StringIO(report_csv(result))))
    assert header[:2] == ["agency", "tickets_received"]
    assert {"escalations_level_1", "escalations_level_3", "backlog_>60_days", "zone"} <= set(header)
    for line, model in zip(lines, [*result.rows, result.totals], strict=True):
        assert int(line["tickets_received"]) == model.tickets_received
        assert int(line["escalations_level_3"]) == model.escalations_by_level.get(3, 0)
        assert int(line["backlog_total"]) == model.backlog_total
        assert line["zone"] == (model.zone or "")
        assert line["responded_on_time_pct"] == ("" if model.responded_on_time_pct is None
                                                 else str(model.responded_on_time_pct))


def test_request_dates_are_local_midnights_and_to_is_exclusive() -> None:
    period = report_period(date(2026, 11, 1), date(2026, 12, 1), timezone="Asia/Jakarta",
                           today=date(2026, 12, 5))
    assert period.start == datetime(2026, 10, 31, 17, tzinfo=UTC)  # 00:00 WIB
    assert period.end - period.start == timedelta(days=30)
    default = report_period(None, None, timezone="Asia/Jakarta", today=date(2026, 12, 5))
    assert default.end == datetime(2026, 12, 5, 17, tzinfo=UTC)  # end of today, WIB
    assert default.end - default.start == timedelta(days=30)


@pytest.mark.parametrize(("first", "after_last", "field"), [
    (date(2026, 12, 1), date(2026, 11, 1), "from"), (date(2026, 11, 1), date(2026, 11, 1), "from"),
    (date(2024, 1, 1), date(2026, 1, 1), "to")])
def test_bad_request_periods_name_the_field(first: date, after_last: date, field: str) -> None:
    with pytest.raises(RequestValidationError) as raised:
        report_period(first, after_last, timezone="Asia/Jakarta", today=date(2026, 12, 5))
    assert raised.value.errors()[0]["loc"] == ("query", field)
