"""Calendar specs in policy files, tenant holiday files, durations and due instants."""

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from services.sla.calendar import (
    AlwaysOpen,
    CalendarSpec,
    OfficeHours,
    WorkDuration,
    WorkingHours,
    build_calendar,
    due,
    load_holiday_changes,
    national_holidays,
    parse_duration,
)

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "services" / "sla" / "policies"
JAKARTA = ZoneInfo("Asia/Jakarta")


def wib(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


def spec(**fields: Any) -> CalendarSpec:
    return CalendarSpec.model_validate({"type": "working_hours", **fields})


def build(calendar: CalendarSpec, base_dir: Path = POLICIES) -> WorkingHours:
    built = build_calendar(calendar, default_timezone="Asia/Jakarta", base_dir=base_dir)
    assert isinstance(built, WorkingHours)
    return built


def spec_error(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        CalendarSpec.model_validate(fields)
    return str(caught.value)


# --- specs ---------------------------------------------------------------------------------

def test_default_hours_are_kota_bengkulus() -> None:
    week = build(spec()).week
    assert [str(hours) if hours else None for hours in week] == [
        "07:30-16:00", "07:30-16:00", "07:30-16:00", "07:30-16:00", "07:30-16:30", None, None]


def test_hours_left_out_keep_the_default() -> None:
    week = build(spec(hours={"sat": "08:00-12:00", "fri": None})).week
    assert week[5] == OfficeHours(8 * 60, 12 * 60)
    assert week[4] is None
    assert week[0] == OfficeHours.parse("07:30-16:00")


def test_timezone_defaults_to_the_policys_and_can_be_set() -> None:
    assert build_calendar(spec(), default_timezone="Asia/Makassar", base_dir=POLICIES) == \
        WorkingHours("Asia/Makassar")
    assert build(spec(timezone="Asia/Jayapura")).timezone == "Asia/Jayapura"


def test_24x7_spec_builds_always_open() -> None:
    calendar = build_calendar(CalendarSpec(type="24x7"), default_timezone="Asia/Jakarta", base_dir=POLICIES)
    assert isinstance(calendar, AlwaysOpen)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"type": "working_days"}, "type"),
    ({"type": "working_hours", "timezone": "Asia/Bengkulu"}, "unknown timezone 'Asia/Bengkulu'"),
    ({"type": "working_hours", "hours": {"mon": "7:30-16"}}, "hours.mon"),
    ({"type": "working_hours", "hours": {"mon": "16:00-07:30"}}, "must open before it closes"),
    ({"type": "working_hours", "hours": {"monday": "07:30-16:00"}}, "hours.monday"),
    ({"type": "working_hours", "hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri"))},
     "every weekday is closed"),
    ({"type": "working_hours", "extra_holidays": ["2026-07-13"], "extra_working_days": ["2026-07-13"]},
     "both closed and reopened: 2026-07-13"),
    ({"type": "24x7", "hours": {"sat": "08:00-12:00"}}, "24x7 calendar is always open; hours"),
    ({"type": "working_hours", "holiday_file": "x.yaml"}, "holiday_file"),
])
def test_bad_specs_are_refused_naming_the_field(fields: dict[str, Any], expected: str) -> None:
    assert expected in spec_error(**fields)


def test_extra_dates_close_and_reopen() -> None:
    calendar = build(spec(extra_holidays=["2026-07-13"], extra_working_days=["2026-07-11"]))
    assert calendar.hours_on(date(2026, 7, 13)) is None
    assert calendar.hours_on(date(2026, 7, 11)) is not None


# --- tenant holiday files ------------------------------------------------------------------

def write(tmp_path: Path, content: Any, name: str = "holidays.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def test_holiday_file_adds_and_removes(tmp_path: Path) -> None:
    write(tmp_path, {"add": [{"date": "2028-02-29", "name": "Cuti bersama Idul Fitri"}],
                     "remove": [{"date": "2026-12-24", "name": "Cuti bersama Natal"}]})
    calendar = build(spec(holidays_file="holidays.yaml"), base_dir=tmp_path)
    assert calendar.hours_on(date(2028, 2, 29)) is None
    assert calendar.hours_on(date(2026, 12, 24)) == OfficeHours.parse("07:30-16:00")
    assert calendar.add_days(wib(2028, 2, 25, 10), 1) == wib(2028, 3, 1, 10)


def test_the_shipped_bengkulu_file_loads_and_removes_only_national_dates() -> None:
    changes = load_holiday_changes(POLICIES / "holidays-kota-bengkulu.yaml")
    for entry in changes.remove:
        assert entry.date in national_holidays(entry.date.year)


def test_the_default_policy_calendars_build() -> None:
    content = yaml.safe_load((POLICIES / "default.yaml").read_text())
    built = {name: build_calendar(CalendarSpec.model_validate(entry),
                                  default_timezone=content["timezone"], base_dir=POLICIES)
             for name, entry in content["calendars"].items()}
    assert isinstance(built["always"], AlwaysOpen)
    assert isinstance(built["working_hours"], WorkingHours)
    assert built["working_hours"].add_days(wib(2026, 7, 6, 10), 3) == wib(2026, 7, 9, 10)


@pytest.mark.parametrize(("content", "expected"), [
    ({"add": [{"date": "2028-02-30", "name": "x"}]}, "add.0.date"),
    ({"add": [{"date": "2028-02-28"}]}, "add.0.name"),
    ({"add": [{"date": "2028-02-28", "name": "x", "why": "y"}]}, "add.0.why"),
    ({"added": []}, "added"),
    ({"remove": [{"date": "2026-12-23", "name": "not a holiday"}]},
     "remove.0: 2026-12-23 (not a holiday) is not a national holiday"),
    ({"add": [{"date": "2028-02-28", "name": "a"}, {"date": "2028-02-28", "name": "b"}]},
     "add: dates listed twice: 2028-02-28"),
    ({"add": [{"date": "2026-12-24", "name": "a"}], "remove": [{"date": "2026-12-24", "name": "b"}]},
     "both added and removed: 2026-12-24"),
    ("add: [", "not valid YAML"),
])
def test_bad_holiday_files_are_refused_naming_file_and_entry(tmp_path: Path, content: Any,
                                                             expected: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ValueError) as caught:
        build(spec(holidays_file="holidays.yaml"), base_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_missing_holiday_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{tmp_path / 'gone.yaml'}: cannot read"):
        build(spec(holidays_file="gone.yaml"), base_dir=tmp_path)


def test_an_edited_holiday_file_is_read_again(tmp_path: Path) -> None:
    write(tmp_path, {"add": []})
    assert build(spec(holidays_file="holidays.yaml"), base_dir=tmp_path).closed == frozenset()
    write(tmp_path, {"add": [{"date": "2028-02-29", "name": "Cuti bersama"}, ]})
    assert build(spec(holidays_file="holidays.yaml"), base_dir=tmp_path).closed == {date(2028, 2, 29)}


# --- durations and due ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("5d", WorkDuration(5, "d")), ("4h", WorkDuration(4, "h")), ("1.5h", WorkDuration(1.5, "h")),
    ("30m", WorkDuration(30, "m")), (" 10 s ", WorkDuration(10, "s")),
])
def test_parse_duration(text: str, expected: WorkDuration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("value", "problem"), [
    ("1.5d", "working days must be whole"), ("0h", "more than zero"), ("5", "expected a number"),
    ("5w", "expected a number"), ("-4h", "expected a number"), (5, "expected a number"),
    (None, "expected a number"),
])
def test_parse_duration_refuses_naming_the_value(value: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        parse_duration(value)
    assert repr(value) in str(caught.value)


def test_duration_seconds() -> None:
    assert parse_duration("1.5h").seconds == 5400
    assert parse_duration("30m").seconds == 1800
    with pytest.raises(ValueError, match="no fixed length"):
        _ = parse_duration("5d").seconds
    assert str(parse_duration("1.5h")) == "1.5h"


def test_due_uses_days_for_d_and_office_time_otherwise() -> None:
    calendar = WorkingHours()
    start = wib(2026, 7, 10, 16, 15)  # Friday
    assert due(calendar, start, parse_duration("1d")) == wib(2026, 7, 13, 16)
    assert due(calendar, start, parse_duration("1h")) == wib(2026, 7, 13, 8, 15)  # 15 min on Friday
    assert due(calendar, start, parse_duration("30m")) == wib(2026, 7, 13, 7, 45)
    assert due(AlwaysOpen(), start, parse_duration("1d")) == start + timedelta(days=1)
