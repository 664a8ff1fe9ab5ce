"""The triage desk's and the dashboard's pure decisions: who opens which page (from the APIs'
permission table), how late in words, the report period, the compliance chart's geometry,
the drill-down CSV, and the rejections a triage row carries."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.console.chart import LABEL_WIDTH, PLOT_WIDTH, compliance_chart, zone_of
from services.console.dashboard import overdue_csv_text
from services.console.domain import (
    duration_label,
    home_page,
    may_open,
    nav_pages,
    period_days,
    scope_for,
    seconds_late,
)
from services.sla.inbox import rejections
from shared.permissions import Scope

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 10.00 WIB
ZONES = {"green": {"responded_on_time": 90, "resolved_on_time": 80},
         "red_below": {"responded_on_time": 70, "resolved_on_time": 60}, "min_decided": 1}


def test_pages_open_for_the_roles_whose_api_permissions_allow_them() -> None:
    assert [r for r in ("officer", "agency_head", "triage", "supervisor", "admin")
            if may_open(r, "triage")] == ["triage"]
    assert [r for r in ("officer", "agency_head", "triage", "supervisor", "admin")
            if may_open(r, "dashboard")] == ["agency_head", "supervisor"]
    assert may_open("supervisor", "acknowledge") and not may_open("agency_head", "acknowledge")
    assert scope_for("agency_head", "tickets") is Scope.AGENCY
    assert scope_for("supervisor", "tickets") is Scope.TENANT and not may_open(None, "dashboard")
    assert (home_page("triage"), home_page("supervisor"), home_page("officer")) == (
        "/triage", "/dashboard", "/inbox")
    assert [p for p, _ in nav_pages("officer")] == ["/inbox"]
    assert [p for p, _ in nav_pages("supervisor")] == ["/inbox", "/dashboard"]


def test_lateness_reads_in_its_two_largest_units() -> None:
    assert duration_label(2 * 86400 + 3 * 3600 + 59) == "2 hari 3 jam"
    assert duration_label(5 * 3600 + 10 * 60 + 7) == "5 jam 10 menit"
    assert (duration_label(45.9), duration_label(0), duration_label(None)) == ("45 detik", "0 detik", "—")
    late = {"due_next_at": (NOW - timedelta(hours=2)).isoformat()}
    assert seconds_late(late, NOW) == 7200
    assert seconds_late({"due_next_at": (NOW + timedelta(hours=1)).isoformat()}, NOW) is None


def test_the_report_period_defaults_to_thirty_days_and_tolerates_bad_input() -> None:
    today = date(2026, 11, 30)
    assert period_days("", "", today) == (date(2026, 11, 1), today)
    assert period_days("2026-11-20", "2026-11-10", today) == (date(2026, 11, 10), date(2026, 11, 20))
    assert period_days("kemarin", "2026-11-10", today) == (date(2026, 10, 12), date(2026, 11, 10))


def test_the_chart_draws_each_agency_over_its_metrics_zones() -> None:
    rows: list[dict[str, Any]] = [{"group": "DLH", "responded_on_time_pct": 95.0},
            {"group": "PDAM", "responded_on_time_pct": 50.0},
            {"group": "PUPR", "responded_on_time_pct": None}]
    chart = compliance_chart(rows, ZONES, "responded_on_time")
    red, yellow, green = chart.bands
    assert (red.zone, yellow.zone, green.zone) == ("red", "yellow", "green")
    assert red.x == LABEL_WIDTH and red.width == PLOT_WIDTH * 0.7
    assert yellow.x == LABEL_WIDTH + PLOT_WIDTH * 0.7 and green.x + green.width == LABEL_WIDTH + PLOT_WIDTH
    dlh, pdam, pupr = chart.bars
    assert (dlh.width, dlh.zone) == (PLOT_WIDTH * 0.95, "green")
    assert (pdam.width, pdam.zone) == (PLOT_WIDTH * 0.5, "red")
    assert (pupr.width, pupr.zone) == (None, None) and dlh.y < pdam.y < pupr.y < chart.height
    resolved = compliance_chart(rows, ZONES, "resolved_on_time")  # its own thresholds
    assert resolved.bands[0].width == PLOT_WIDTH * 0.6
    assert zone_of(75.0, 90, 70) == "yellow" and zone_of(70.0, 90, 70) == "yellow"


def test_the_drill_down_csv_has_local_times_and_no_complaint_text() -> None:
    tickets = [{"ticket_id": "BKL-1", "agency": "DLH", "status": "assigned", "priority": "high",
                "category": "Sampah", "location": {"kelurahan": "Padang Jati"},
                "text": "Rumah Bu Siti di Jl. Mawar 3", "submitted_at": "2026-11-29T01:00:00Z",
                "due_next_at": (NOW - timedelta(hours=3)).isoformat()}]
    [header, row] = list(csv.reader(io.StringIO(overdue_csv_text(tickets, NOW, "Asia/Jakarta"))))
    assert header == ["ticket_id", "agency", "status", "priority", "category", "kelurahan",
                      "submitted_at", "due_next_at", "hours_late"]
    assert row == ["BKL-1", "DLH", "assigned", "high", "Sampah", "Padang Jati",
                   "2026-11-29T08:00+07:00", "2026-11-30T07:00+07:00", "3.0"]
    tickets[0]["location"] = {"kelurahan": "=HYPERLINK(\"http://x\")"}
    [_, row] = list(csv.reader(io.StringIO(overdue_csv_text(tickets, NOW, "Asia/Jakarta"))))
    assert row[5] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it, never runs it


def test_a_triage_row_lists_each_rejection_oldest_first() -> None:
    history = [{"action": "assigned", "agency": "DLH", "at": NOW},
               {"action": "rejected", "agency": "DLH", "actor": "dlh.andi (officer, DLH)",
                "reason": "Bukan tupoksi", "suggested_agency": "PUPR", "at": NOW, "note": None},
               {"action": "rejected", "agency": "PUPR", "actor": "pupr.budi", "reason": "Juga bukan",
                "at": NOW}]
    found = rejections(history)
    assert [r["agency"] for r in found] == ["DLH", "PUPR"]
    assert found[0] == {"at": NOW, "agency": "DLH", "actor": "dlh.andi (officer, DLH)",
                        "reason": "Bukan tupoksi", "suggested_agency": "PUPR"}
    assert found[1]["suggested_agency"] is None
