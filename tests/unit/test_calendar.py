"""Working-time calendars: weekends, national holidays and tenant dates, judged in local time."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla.calendar import AlwaysOpen, WorkingDays, national_holidays, working_days

JAKARTA = ZoneInfo("Asia/Jakarta")
HOUR = 3600.0
DAY = 86400.0
MICROSECOND = timedelta(microseconds=1)
CAL = working_days("Asia/Jakarta")


def wib(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- 24x7 ----------------------------------------------------------------------------------

def test_always_open_add() -> None:
    start = utc(2026, 12, 25, 10)
    assert AlwaysOpen().add(start, 5) == utc(2026, 12, 25, 10, 0, 5)
    assert AlwaysOpen().add(start, 2 * DAY) == utc(2026, 12, 27, 10)


def test_always_open_elapsed() -> None:
    start = utc(2026, 12, 25, 10)
    assert AlwaysOpen().elapsed(start, utc(2026, 12, 26, 10)) == DAY
    assert AlwaysOpen().elapsed(utc(2026, 12, 26, 10), start) == 0.0


# --- holidays ------------------------------------------------------------------------------

def test_holiday_data_is_what_the_tests_assume() -> None:
    found = holidays.country_holidays("ID", years=2026, categories=("public", "government"))
    for day in (date(2026, 12, 24), date(2026, 12, 25), date(2026, 8, 17), date(2026, 3, 23)):
        assert day in found
    assert date(2026, 12, 23) not in found
    assert national_holidays(2026) == frozenset(found.keys())


def test_is_open() -> None:
    assert CAL.is_open(date(2026, 12, 23))        # Wednesday
    assert not CAL.is_open(date(2026, 12, 24))    # cuti bersama Natal
    assert not CAL.is_open(date(2026, 12, 25))    # Christmas
    assert not CAL.is_open(date(2026, 12, 26))    # Saturday
    assert not CAL.is_open(date(2026, 12, 27))    # Sunday
    assert CAL.is_open(date(2026, 12, 28))        # Monday
    assert not CAL.is_open(date(2026, 8, 17))     # Independence Day, a Monday
    assert not CAL.is_open(date(2026, 3, 23))     # cuti bersama Idul Fitri, a Monday


# --- add -----------------------------------------------------------------------------------

def test_add_within_one_day() -> None:
    assert CAL.add(wib(2026, 7, 8, 9), 3 * HOUR) == utc(2026, 7, 8, 5)


def test_add_skips_the_weekend() -> None:
    # Friday 22:00 WIB + 4 working hours: 2 on Friday, 2 on Monday.
    assert CAL.add(wib(2026, 7, 10, 22), 4 * HOUR) == wib(2026, 7, 13, 2)


def test_add_skips_christmas_and_cuti_bersama() -> None:
    # Wednesday 23 December 20:00 WIB + 6 h: 24-27 December are closed.
    assert CAL.add(wib(2026, 12, 23, 20), 6 * HOUR) == wib(2026, 12, 28, 2)


def test_add_skips_independence_day() -> None:
    # Friday 14 August 2026 + 1 working day: the weekend and Monday 17 August are closed.
    assert CAL.add(wib(2026, 8, 14, 10), DAY) == wib(2026, 8, 18, 10)


def test_add_from_a_closed_day_starts_at_the_next_opening() -> None:
    assert CAL.add(wib(2026, 7, 11, 15), HOUR) == wib(2026, 7, 13, 1)
    assert CAL.add(wib(2026, 7, 11, 15), 0) == wib(2026, 7, 13, 0)


def test_add_can_end_exactly_at_midnight() -> None:
    assert CAL.add(wib(2026, 7, 10, 22), 2 * HOUR) == wib(2026, 7, 11, 0)


def test_tenant_closed_dates_are_skipped() -> None:
    closed = working_days("Asia/Jakarta", closed=[date(2026, 7, 13)])
    assert not closed.is_open(date(2026, 7, 13))
    assert closed.add(wib(2026, 7, 10, 22), 4 * HOUR) == wib(2026, 7, 14, 2)


def test_reopened_dates_count() -> None:
    saturday = working_days("Asia/Jakarta", reopened=[date(2026, 7, 11)])
    assert saturday.is_open(date(2026, 7, 11))
    assert saturday.add(wib(2026, 7, 10, 22), 4 * HOUR) == wib(2026, 7, 11, 2)
    holiday = working_days("Asia/Jakarta", reopened=[date(2026, 12, 24)])
    assert holiday.add(wib(2026, 12, 23, 20), 6 * HOUR) == wib(2026, 12, 24, 2)


def test_results_are_utc() -> None:
    for start in (wib(2026, 7, 10, 22), utc(2026, 7, 10, 15), wib(2026, 7, 11, 15)):
        result = CAL.add(start, 4 * HOUR)
        assert result.tzinfo is UTC
    assert CAL.add(wib(2026, 7, 10, 22), 4 * HOUR) == utc(2026, 7, 12, 19)


def test_results_do_not_depend_on_the_input_zone() -> None:
    local = wib(2026, 12, 23, 20)
    assert CAL.add(local, 6 * HOUR) == CAL.add(local.astimezone(UTC), 6 * HOUR)
    assert CAL.add(local, 6 * HOUR) == CAL.add(local.astimezone(ZoneInfo("America/New_York")), 6 * HOUR)


# --- days are judged in Asia/Jakarta ---------------------------------------------------------

def test_utc_evening_of_24_december_is_christmas_day_in_jakarta() -> None:
    start = utc(2026, 12, 24, 18)  # 25 December 01:00 WIB
    assert start.astimezone(JAKARTA).date() == date(2026, 12, 25)
    assert CAL.elapsed(start, utc(2026, 12, 24, 19)) == 0.0
    assert CAL.add(start, HOUR) == wib(2026, 12, 28, 1)


def test_utc_evening_of_a_working_day_can_be_a_holiday_in_jakarta() -> None:
    # Wednesday 23 December 17:30 UTC is 00:30 WIB on the (closed) 24th.
    assert CAL.elapsed(utc(2026, 12, 23, 16, 30), utc(2026, 12, 23, 17, 30)) == 1800.0
    assert CAL.add(utc(2026, 12, 23, 16, 30), HOUR) == utc(2026, 12, 27, 17, 30)


def test_utc_sunday_evening_is_monday_in_jakarta() -> None:
    start, end = utc(2026, 12, 27, 18), utc(2026, 12, 27, 19)  # Monday 01:00-02:00 WIB
    assert CAL.elapsed(start, end) == HOUR
    assert CAL.add(start, HOUR) == end
    assert working_days("UTC").elapsed(start, end) == 0.0  # the same hour is Sunday in UTC


# --- elapsed -------------------------------------------------------------------------------

def test_elapsed_across_a_weekend() -> None:
    assert CAL.elapsed(wib(2026, 7, 10, 12), wib(2026, 7, 13, 12)) == DAY


def test_elapsed_across_a_holiday_week() -> None:
    assert CAL.elapsed(wib(2026, 12, 23, 0), wib(2026, 12, 29, 0)) == 2 * DAY


def test_elapsed_is_zero_when_end_precedes_start() -> None:
    assert CAL.elapsed(wib(2026, 7, 13, 12), wib(2026, 7, 10, 12)) == 0.0
    assert CAL.elapsed(wib(2026, 7, 13, 12), wib(2026, 7, 13, 12)) == 0.0


def test_elapsed_over_closed_days_only_is_zero() -> None:
    assert CAL.elapsed(wib(2026, 12, 24, 0), wib(2026, 12, 28, 0)) == 0.0


# --- properties ----------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31, 23, 59, 59),
                        timezones=st.just(UTC))
durations = st.integers(min_value=0, max_value=30 * 86400 * 1000).map(lambda ms: ms / 1000)
positive_durations = st.integers(min_value=1, max_value=30 * 86400 * 1000).map(lambda ms: ms / 1000)
PROPERTY = settings(max_examples=200, deadline=None, database=None)


def lies_in_open_time(calendar: WorkingDays, instant: datetime) -> bool:
    local = instant.astimezone(calendar.zone)
    if calendar.is_open(local.date()):
        return True
    at_midnight = local.time() == datetime.min.time()
    return at_midnight and calendar.is_open(local.date() - timedelta(days=1))


@PROPERTY
@given(start=instants, seconds=positive_durations)
def test_add_never_ends_in_closed_time(start: datetime, seconds: float) -> None:
    result = CAL.add(start, seconds)
    assert result.tzinfo is UTC
    assert result > start
    assert lies_in_open_time(CAL, result), result.astimezone(JAKARTA)


@PROPERTY
@given(start=instants, first=durations, second=durations)
def test_add_is_monotonic(start: datetime, first: float, second: float) -> None:
    low, high = sorted((first, second))
    assert CAL.add(start, low) <= CAL.add(start, high)
    assert CAL.add(start, low) >= start


@PROPERTY
@given(start=instants, first=durations, second=durations)
def test_add_is_additive(start: datetime, first: float, second: float) -> None:
    stepwise = CAL.add(CAL.add(start, first), second)
    at_once = CAL.add(start, first + second)
    # Adding 0 from a midnight that opens a closed day moves to the next opening: same working time.
    assert abs(CAL.elapsed(start, stepwise) - CAL.elapsed(start, at_once)) <= 1e-6
    if second > 0:
        assert abs(stepwise - at_once) <= MICROSECOND


@PROPERTY
@given(start=instants, seconds=durations)
def test_elapsed_inverts_add(start: datetime, seconds: float) -> None:
    assert abs(CAL.elapsed(start, CAL.add(start, seconds)) - seconds) <= 1e-6


@PROPERTY
@given(start=instants, seconds=durations)
def test_always_open_elapsed_inverts_add(start: datetime, seconds: float) -> None:
    calendar = AlwaysOpen()
    assert abs(calendar.elapsed(start, calendar.add(start, seconds)) - seconds) <= 1e-6
