"""Working calendars: office hours, holidays and cuti bersama judged in local time, and 24x7."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla.calendar import (
    AlwaysOpen,
    Calendar,
    OfficeHours,
    WorkingHours,
    national_holidays,
)
from services.sla.working_time import BENGKULU_WEEK

JAKARTA = ZoneInfo("Asia/Jakarta")
HOUR = 3600.0
MICROSECOND = timedelta(microseconds=1)
CAL = WorkingHours()  # Kota Bengkulu: WIB, Mon-Thu 07:30-16:00, Fri 07:30-16:30


def wib(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- the holiday data the examples rely on -------------------------------------------------

def test_holiday_data_is_what_the_examples_assume() -> None:
    found = holidays.country_holidays("ID", years=2026, categories=("public", "government"))
    idul_fitri_and_cuti_bersama = [date(2026, 3, day) for day in (20, 21, 22, 23, 24)]
    for day in (*idul_fitri_and_cuti_bersama, date(2026, 3, 18), date(2026, 3, 19),
                date(2026, 12, 24), date(2026, 12, 25), date(2026, 8, 17)):
        assert day in found, day
    for day in (date(2026, 3, 17), date(2026, 3, 25), date(2026, 12, 23)):
        assert day not in found, day
    assert set(national_holidays(2026)) == set(found)


def test_hours_on() -> None:
    assert CAL.hours_on(date(2026, 7, 9)) == OfficeHours.parse("07:30-16:00")   # Thursday
    assert CAL.hours_on(date(2026, 7, 10)) == OfficeHours.parse("07:30-16:30")  # Friday
    for closed in (date(2026, 7, 11), date(2026, 7, 12),    # weekend
                   date(2026, 3, 23), date(2026, 3, 24),    # cuti bersama Idul Fitri
                   date(2026, 12, 24), date(2026, 8, 17)):  # cuti bersama Natal, Independence Day
        assert CAL.hours_on(closed) is None, closed


# --- adding working hours ------------------------------------------------------------------

def test_add_within_one_day() -> None:
    assert CAL.add(wib(2026, 7, 8, 9), 3 * HOUR) == wib(2026, 7, 8, 12)


def test_add_counts_office_time_only() -> None:
    # Wednesday 15:00 + 2 h: one hour until 16:00, one from Thursday 07:30.
    assert CAL.add(wib(2026, 7, 8, 15), 2 * HOUR) == wib(2026, 7, 9, 8, 30)


def test_add_ending_at_closing_time_stays_there() -> None:
    assert CAL.add(wib(2026, 7, 9, 7, 30), 8.5 * HOUR) == wib(2026, 7, 9, 16)


def test_friday_closes_later() -> None:
    assert CAL.add(wib(2026, 7, 10, 7, 30), 9 * HOUR) == wib(2026, 7, 10, 16, 30)
    assert CAL.add(wib(2026, 7, 9, 7, 30), 9 * HOUR) == wib(2026, 7, 10, 8)
    assert CAL.elapsed(wib(2026, 7, 10), wib(2026, 7, 11)) == 9 * HOUR
    assert CAL.elapsed(wib(2026, 7, 9), wib(2026, 7, 10)) == 8.5 * HOUR


def test_add_from_a_weekend_starts_at_monday_opening() -> None:
    assert CAL.add(wib(2026, 7, 11, 10), HOUR) == wib(2026, 7, 13, 8, 30)
    assert CAL.add(wib(2026, 7, 10, 16), HOUR) == wib(2026, 7, 13, 8)


def test_add_zero_is_the_start_itself() -> None:
    assert CAL.add(wib(2026, 7, 11, 10), 0) == wib(2026, 7, 11, 10)


def test_idul_fitri_and_cuti_bersama_2026_are_skipped() -> None:
    # Tuesday 17 March 15:00: 18 March (Nyepi cuti bersama) to 24 March are all closed.
    assert CAL.add(wib(2026, 3, 17, 15), 2 * HOUR) == wib(2026, 3, 25, 8, 30)
    assert CAL.elapsed(wib(2026, 3, 17, 12), wib(2026, 3, 25, 12)) == 8.5 * HOUR


def test_christmas_and_its_cuti_bersama_are_skipped() -> None:
    # Wednesday 23 December 2026 15:00 + 2 h: 24 (cuti bersama), 25 and the weekend are closed.
    assert CAL.add(wib(2026, 12, 23, 15), 2 * HOUR) == wib(2026, 12, 28, 8, 30)


def test_results_are_utc_whatever_the_input_zone() -> None:
    local = wib(2026, 7, 8, 15)
    for start in (local, local.astimezone(UTC), local.astimezone(ZoneInfo("America/New_York"))):
        result = CAL.add(start, 2 * HOUR)
        assert result.tzinfo is UTC
        assert result == utc(2026, 7, 9, 1, 30)


def test_naive_instants_are_refused() -> None:
    naive = datetime(2026, 7, 8, 9)
    for call in (lambda: CAL.add(naive, HOUR), lambda: CAL.add_days(naive, 1),
                 lambda: CAL.elapsed(naive, utc(2026, 7, 9)), lambda: CAL.is_open_at(naive),
                 lambda: AlwaysOpen().add(naive, HOUR)):
        with pytest.raises(ValueError, match="has no timezone"):
            call()


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_bad_amounts_are_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="working time"):
        CAL.add(wib(2026, 7, 8, 9), seconds)


@pytest.mark.parametrize("days", [-1, True])
def test_bad_day_counts_are_refused(days: int) -> None:
    with pytest.raises(ValueError, match="working days"):
        CAL.add_days(wib(2026, 7, 8, 9), days)


# --- adding working days -------------------------------------------------------------------

def test_add_days_keeps_the_time_of_day() -> None:
    assert CAL.add_days(wib(2026, 7, 6, 10), 3) == wib(2026, 7, 9, 10)  # Monday -> Thursday


def test_add_days_skips_weekend_and_holidays() -> None:
    assert CAL.add_days(wib(2026, 7, 10, 10), 1) == wib(2026, 7, 13, 10)   # Friday -> Monday
    assert CAL.add_days(wib(2026, 8, 14, 10), 1) == wib(2026, 8, 18, 10)   # over 17 August
    assert CAL.add_days(wib(2026, 3, 17, 10), 1) == wib(2026, 3, 25, 10)   # over Idul Fitri


def test_add_days_from_closed_time_counts_from_the_next_opening() -> None:
    assert CAL.add_days(wib(2026, 7, 11, 15), 1) == wib(2026, 7, 14, 7, 30)  # Saturday
    assert CAL.add_days(wib(2026, 7, 8, 18), 1) == wib(2026, 7, 10, 7, 30)   # after closing
    assert CAL.add_days(wib(2026, 7, 8, 6), 1) == wib(2026, 7, 9, 7, 30)     # before opening
    assert CAL.add_days(wib(2026, 7, 11, 15), 0) == wib(2026, 7, 13, 7, 30)
    assert CAL.add_days(wib(2026, 7, 8, 10), 0) == wib(2026, 7, 8, 10)


def test_add_days_from_a_closing_time_belongs_to_that_day() -> None:
    assert CAL.add_days(wib(2026, 7, 9, 16), 1) == wib(2026, 7, 10, 16)


def test_add_days_clamps_to_a_shorter_day() -> None:
    assert CAL.add_days(wib(2026, 7, 10, 16, 15), 1) == wib(2026, 7, 13, 16)  # Friday -> Monday
    assert CAL.add_days(wib(2026, 7, 10, 16, 15), 5) == wib(2026, 7, 17, 16, 15)


def test_add_days_across_a_year_uses_the_next_years_holidays() -> None:
    # Thursday 31 December 2026 + 1: 1 January 2027 is New Year, then a weekend.
    assert CAL.add_days(wib(2026, 12, 31, 9), 1) == wib(2027, 1, 4, 9)


def test_years_the_package_barely_knows_still_skip_fixed_holidays() -> None:
    assert CAL.add_days(wib(2028, 8, 16, 9), 1) == wib(2028, 8, 18, 9)  # 17 August 2028


# --- elapsed -------------------------------------------------------------------------------

def test_elapsed_across_a_weekend() -> None:
    assert CAL.elapsed(wib(2026, 7, 10, 12), wib(2026, 7, 13, 12)) == 4.5 * HOUR + 4.5 * HOUR


def test_elapsed_is_zero_backwards_and_over_closed_time() -> None:
    assert CAL.elapsed(wib(2026, 7, 13, 12), wib(2026, 7, 10, 12)) == 0.0
    assert CAL.elapsed(wib(2026, 7, 13, 12), wib(2026, 7, 13, 12)) == 0.0
    assert CAL.elapsed(wib(2026, 12, 23, 16), wib(2026, 12, 28, 7, 30)) == 0.0


def test_is_open_at() -> None:
    assert CAL.is_open_at(wib(2026, 7, 8, 7, 30))
    assert CAL.is_open_at(wib(2026, 7, 10, 16, 15))   # Friday
    assert not CAL.is_open_at(wib(2026, 7, 9, 16, 15))  # Thursday
    assert not CAL.is_open_at(wib(2026, 7, 8, 16))      # a closing time is closed
    assert not CAL.is_open_at(wib(2026, 7, 8, 7, 29))
    assert not CAL.is_open_at(wib(2026, 3, 23, 10))     # cuti bersama


# --- days are judged in local time ---------------------------------------------------------

def test_a_utc_date_is_not_the_local_date() -> None:
    # 23 December 2026 23:30 UTC is 24 December 06:30 WIB and 08:30 WIT: cuti bersama Natal.
    jayapura = WorkingHours("Asia/Jayapura")
    instant = utc(2026, 12, 23, 23, 30)
    assert not jayapura.is_open_at(instant)
    assert jayapura.is_open_at(utc(2026, 12, 22, 23, 30))  # Wednesday 08:30 WIT
    # Wednesday 17:00 WIT + 1 h: the next opening is Monday 28 December 07:30 WIT.
    assert jayapura.add(utc(2026, 12, 23, 8), HOUR) == utc(2026, 12, 27, 23, 30)


def test_the_same_hour_is_open_in_one_zone_and_closed_in_another() -> None:
    instant = utc(2026, 7, 8, 8, 30)  # 15:30 WIB, 16:30 WITA
    assert CAL.is_open_at(instant)
    assert not WorkingHours("Asia/Makassar").is_open_at(instant)


# --- tenant dates --------------------------------------------------------------------------

def test_tenant_closed_dates_are_skipped() -> None:
    closed = WorkingHours(closed=frozenset({date(2026, 7, 13)}))
    assert closed.add_days(wib(2026, 7, 10, 10), 1) == wib(2026, 7, 14, 10)


def test_unobserved_national_holidays_keep_their_weekday_hours() -> None:
    working = WorkingHours(unobserved=frozenset({date(2026, 12, 24)}))
    assert working.hours_on(date(2026, 12, 24)) == OfficeHours.parse("07:30-16:00")
    assert working.add(wib(2026, 12, 23, 15), 2 * HOUR) == wib(2026, 12, 24, 8, 30)


def test_unobserving_a_weekend_day_does_not_open_it() -> None:
    assert WorkingHours(unobserved=frozenset({date(2026, 3, 21)})).hours_on(date(2026, 3, 21)) is None


def test_a_reopened_saturday_gets_mondays_hours() -> None:
    saturday = WorkingHours(reopened=frozenset({date(2026, 7, 11)}))
    assert saturday.hours_on(date(2026, 7, 11)) == BENGKULU_WEEK[0]
    assert saturday.add_days(wib(2026, 7, 10, 10), 1) == wib(2026, 7, 11, 10)


def test_a_week_without_hours_is_refused() -> None:
    with pytest.raises(ValueError, match="every weekday is closed"):
        WorkingHours(week=(None,) * 7)


# --- 24x7 ----------------------------------------------------------------------------------

def test_always_open() -> None:
    calendar = AlwaysOpen()
    start = utc(2026, 12, 25, 10)
    assert calendar.add(start, 5) == start + timedelta(seconds=5)
    assert calendar.add_days(start, 2) == utc(2026, 12, 27, 10)
    assert calendar.add_days(start, 2).tzinfo is UTC
    assert calendar.elapsed(start, utc(2026, 12, 26, 10)) == 86400.0
    assert calendar.elapsed(utc(2026, 12, 26, 10), start) == 0.0
    assert calendar.is_open_at(start)


# --- properties ----------------------------------------------------------------------------

WITA = WorkingHours("Asia/Makassar", week=(OfficeHours.parse("08:00-12:00"),) * 6 + (None,))
WIT = WorkingHours("Asia/Jayapura", week=(OfficeHours.parse("00:00-24:00"), None, None,
                                          OfficeHours.parse("22:00-24:00"), None, None, None))
CALENDARS: dict[str, Calendar] = {"wib": CAL, "wita": WITA, "wit": WIT, "24x7": AlwaysOpen()}
WORKING: dict[str, WorkingHours] = {"wib": CAL, "wita": WITA, "wit": WIT}

calendars = st.sampled_from(sorted(CALENDARS))
working = st.sampled_from(sorted(WORKING))
instants = st.datetimes(min_value=datetime(2025, 12, 20), max_value=datetime(2028, 1, 10),
                        timezones=st.just(UTC))
# Whole microseconds, so that seconds -> microseconds is exact.
durations = st.integers(min_value=0, max_value=40 * 9 * 3600 * 10**6).map(lambda us: us / 10**6)
positive = st.integers(min_value=1, max_value=40 * 9 * 3600 * 10**6).map(lambda us: us / 10**6)
day_counts = st.integers(min_value=0, max_value=300)
PROPERTY = settings(max_examples=150, deadline=None, database=None)


def office_time_just_before(calendar: Calendar, instant: datetime) -> bool:
    """Inside an office interval or exactly at its closing: the microsecond before is open."""
    return calendar.is_open_at(instant - MICROSECOND)


@PROPERTY
@given(name=calendars, start=instants, seconds=positive)
def test_add_ends_in_office_time_or_at_a_closing(name: str, start: datetime, seconds: float) -> None:
    calendar = CALENDARS[name]
    result = calendar.add(start, seconds)
    assert result.tzinfo is UTC
    assert result > start
    assert office_time_just_before(calendar, result)


@PROPERTY
@given(name=calendars, start=instants, days=day_counts.filter(bool))
def test_add_days_ends_in_office_time_or_at_a_closing(name: str, start: datetime, days: int) -> None:
    calendar = CALENDARS[name]
    result = calendar.add_days(start, days)
    assert result.tzinfo is UTC
    assert result > start
    assert calendar.is_open_at(result) or office_time_just_before(calendar, result)


@PROPERTY
@given(name=calendars, start=instants, other=instants, first=durations, second=durations)
def test_add_is_monotonic(name: str, start: datetime, other: datetime, first: float,
                          second: float) -> None:
    calendar = CALENDARS[name]
    early, late = sorted((start, other))
    low, high = sorted((first, second))
    assert start <= calendar.add(start, low) <= calendar.add(start, high)
    assert calendar.add(early, low) <= calendar.add(late, low)


@PROPERTY
@given(name=calendars, start=instants, other=instants, first=day_counts, second=day_counts)
def test_add_days_is_monotonic(name: str, start: datetime, other: datetime, first: int,
                               second: int) -> None:
    calendar = CALENDARS[name]
    early, late = sorted((start, other))
    low, high = sorted((first, second))
    assert calendar.add_days(start, low) <= calendar.add_days(start, high)
    assert calendar.add_days(early, low) <= calendar.add_days(late, low)


@PROPERTY
@given(name=calendars, start=instants, first=durations, second=durations)
def test_add_is_additive(name: str, start: datetime, first: float, second: float) -> None:
    calendar = CALENDARS[name]
    stepwise = calendar.add(calendar.add(start, first), second)
    assert abs(stepwise - calendar.add(start, first + second)) <= MICROSECOND


@PROPERTY
@given(name=calendars, start=instants, seconds=durations)
def test_elapsed_inverts_add(name: str, start: datetime, seconds: float) -> None:
    calendar = CALENDARS[name]
    assert abs(calendar.elapsed(start, calendar.add(start, seconds)) - seconds) <= 1e-6


@PROPERTY
@given(name=calendars, points=st.lists(instants, min_size=3, max_size=3))
def test_elapsed_is_additive_over_a_split(name: str, points: list[datetime]) -> None:
    calendar = CALENDARS[name]
    first, middle, last = sorted(points)
    whole = calendar.elapsed(first, last)
    assert abs(whole - calendar.elapsed(first, middle) - calendar.elapsed(middle, last)) <= 1e-6
    assert calendar.elapsed(last, first) == 0.0


def office_seconds_by_walking_days(calendar: WorkingHours, start: datetime, end: datetime) -> float:
    """An independent, slow count: each local date's office interval overlapped with [start, end]."""
    zone = ZoneInfo(calendar.timezone)
    total = timedelta()
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date():
        hours = calendar.hours_on(day)
        if hours is not None:
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            opens = midnight + timedelta(minutes=hours.opens)
            closes = midnight + timedelta(minutes=hours.closes)
            total += max(timedelta(), min(closes, end) - max(opens, start))
        day += timedelta(days=1)
    return total.total_seconds()


@PROPERTY
@given(name=working, start=instants, length=st.integers(min_value=0, max_value=40 * 86400))
def test_elapsed_agrees_with_walking_the_days(name: str, start: datetime, length: int) -> None:
    calendar = WORKING[name]
    end = start + timedelta(seconds=length)
    assert abs(calendar.elapsed(start, end) - office_seconds_by_walking_days(calendar, start, end)) <= 1e-6


@PROPERTY
@given(name=working, raw=instants, seconds=positive, days=day_counts.filter(bool))
def test_add_days_lands_on_the_nth_open_date(name: str, raw: datetime, seconds: float, days: int) -> None:
    calendar = WORKING[name]
    start = calendar.add(raw, seconds)  # in office time, or at a closing (it then belongs to that day)
    zone = ZoneInfo(calendar.timezone)

    def day_of(instant: datetime) -> date:  # the day whose office hours end at or after it
        return (instant - MICROSECOND).astimezone(zone).date()

    first, last = day_of(start), day_of(calendar.add_days(start, days))
    open_dates = [first + timedelta(days=n) for n in range(1, (last - first).days + 1)
                  if calendar.hours_on(first + timedelta(days=n)) is not None]
    assert len(open_dates) == days
    assert open_dates[-1] == last


@PROPERTY
@given(name=working, instant=instants)
def test_is_open_at_agrees_with_the_days_hours(name: str, instant: datetime) -> None:
    calendar = WORKING[name]
    local = instant.astimezone(ZoneInfo(calendar.timezone))
    hours = calendar.hours_on(local.date())
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 10**6) / 60
    expected = hours is not None and hours.opens <= minute < hours.closes
    assert calendar.is_open_at(instant) == expected


def test_an_unknown_zone_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown timezone 'Asia/Bengkulu'"):
        WorkingHours("Asia/Bengkulu")
