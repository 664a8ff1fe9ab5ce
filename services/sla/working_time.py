"""Working-time arithmetic on instants: office hours in a timezone, holidays skipped, or 24x7.

Instants go in as timezone-aware datetimes (naive ones are refused: their meaning depends on
the machine) and come out as UTC datetimes. Days are judged in the calendar's own timezone, so
a holiday is never shifted by a timezone (the Zammad #3706 class of bug).

Internally an instant is an integer count of microseconds since the epoch, so adding and
measuring are exact to the microsecond. A calendar keeps a table of its opening intervals
(one per open day) with the working time accumulated before each, built a few years at a time
and shared by equal calendars; ``add`` and ``elapsed`` are then two binary searches.
"""

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from types import MappingProxyType
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PER_SECOND = 1_000_000
_PER_DAY = 86_400 * _PER_SECOND
_FIRST_YEAR, _LAST_YEAR = 2, 9998  # one year of margin on each side of datetime's range


class OfficeHours(NamedTuple):
    """One day's office hours as minutes after local midnight; ``closes`` may be 1440 (24:00)."""

    opens: int
    closes: int

    @classmethod
    def parse(cls, text: str) -> "OfficeHours":
        """'07:30-16:00' -> OfficeHours(450, 960); '00:00-24:00' is a whole day."""
        try:
            first, last = (part.strip() for part in text.split("-"))
            opens, closes = _minutes(first), _minutes(last)
        except ValueError:
            raise ValueError(f"office hours {text!r}: expected HH:MM-HH:MM, e.g. '07:30-16:00'") from None
        if not 0 <= opens < closes <= 1440:
            raise ValueError(f"office hours {text!r}: must open before it closes, within 00:00-24:00")
        return cls(opens, closes)

    def __str__(self) -> str:
        return f"{_clock(self.opens)}-{_clock(self.closes)}"


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit() or int(minutes) > 59:
        raise ValueError(text)
    return int(hours) * 60 + int(minutes)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


Week = tuple[OfficeHours | None, ...]
"""Office hours from Monday (index 0) to Sunday (index 6); None is a closed weekday."""

BENGKULU_WEEK: Week = (
    *(OfficeHours.parse("07:30-16:00"),) * 4, OfficeHours.parse("07:30-16:30"), None, None,
)


def check_timezone(name: str) -> str:
    """An IANA timezone name, or a ValueError naming it."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}: use an IANA name such as Asia/Jakarta (WIB), "
                         "Asia/Makassar (WITA) or Asia/Jayapura (WIT)") from None
    return name


def to_microseconds(instant: datetime) -> int:
    """Microseconds since the epoch; refuses naive datetimes, whose meaning depends on the machine."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant {instant.isoformat()} has no timezone: pass an aware datetime "
                         "(UTC as stored, or with its offset)")
    return (instant - _EPOCH) // _MICROSECOND


def from_microseconds(count: int) -> datetime:
    return _EPOCH + timedelta(microseconds=count)


def _working_microseconds(seconds: float) -> int:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"working time {seconds!r} s: must be a finite number of seconds, zero or more")
    return round(seconds * _PER_SECOND)


def _working_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"working days {days!r}: must be a whole number, zero or more")
    return days


@cache
def national_holidays(year: int) -> Mapping[date, str]:
    """Indonesian national holidays and cuti bersama (the 'government' category) of one year.

    The holidays package estimates Islamic dates for years the government has not yet decreed
    and has no cuti bersama for them; tenants correct those in their holidays file.
    """
    found = holidays.country_holidays("ID", years=year, categories=("public", "government"),
                                      language="id")
    return MappingProxyType(dict(found))


class AlwaysOpen:
    """24x7: every second counts (emergency agencies such as DAMKAR and BPBD).

    A working day is 24 hours; every instant is open.
    """

    def add(self, start: datetime, seconds: float) -> datetime:
        return from_microseconds(to_microseconds(start) + _working_microseconds(seconds))

    def add_days(self, start: datetime, days: int) -> datetime:
        return from_microseconds(to_microseconds(start) + _working_days(days) * _PER_DAY)

    def elapsed(self, start: datetime, end: datetime) -> float:
        return max(0, to_microseconds(end) - to_microseconds(start)) / _PER_SECOND

    def is_open_at(self, instant: datetime) -> bool:
        to_microseconds(instant)
        return True

    def __repr__(self) -> str:
        return "AlwaysOpen()"


@dataclass(frozen=True)
class WorkingHours:
    """Office hours per weekday in one timezone; national holidays and cuti bersama are closed.

    ``closed`` adds tenant holidays; ``unobserved`` are national holidays the tenant works on
    (the date then follows its weekday's hours); ``reopened`` dates are open whatever they are,
    with their weekday's hours, or for a weekend day the first office hours of the week
    (Monday's by default).

    Open time on a day is the half-open interval [opening, closing).
    """

    timezone: str = "Asia/Jakarta"
    week: Week = BENGKULU_WEEK
    closed: frozenset[date] = frozenset()
    unobserved: frozenset[date] = frozenset()
    reopened: frozenset[date] = frozenset()
    _table: "_Table" = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError(f"week: expected office hours for 7 days, got {len(self.week)}")
        if not any(self.week):
            raise ValueError("hours: every weekday is closed; open one day or use a 24x7 calendar")
        check_timezone(self.timezone)
        object.__setattr__(self, "_table", _shared_table(self))

    def hours_on(self, day: date) -> OfficeHours | None:
        """The office hours of a local date, or None when it is closed."""
        own = self.week[day.weekday()]
        if day in self.reopened:
            return own or next(hours for hours in self.week if hours)
        if day in self.closed:
            return None
        if day in national_holidays(day.year) and day not in self.unobserved:
            return None
        return own

    def add(self, start: datetime, seconds: float) -> datetime:
        """The first instant at which ``seconds`` of office time have passed since ``start``.

        Only office time counts. For ``seconds`` > 0 the result lies inside an office interval
        or exactly at its closing time (Monday 08:00 + 8 h 30 min = Monday 16:00, not Tuesday
        07:30), never at an opening; 0 returns ``start`` itself. Hence add(add(a, x), y) ==
        add(a, x + y) and elapsed(a, add(a, x)) == x, to the microsecond.
        """
        origin, amount = to_microseconds(start), _working_microseconds(seconds)
        if amount == 0:
            return from_microseconds(origin)
        return from_microseconds(self._table.instant_after(origin, amount))

    def add_days(self, start: datetime, days: int) -> datetime:
        """The same time of day ``days`` open days later, clamped into that day's office hours.

        Monday 10:00 + 3 working days = Thursday 10:00. A start in closed time counts from the
        next opening (Saturday 15:00 + 1 = Tuesday 07:30); a start exactly at a closing time
        belongs to the day that closes. When the target day's office hours do not contain that
        time of day it is clamped to them: Friday 16:15 + 1 = Monday 16:00 (Monday closes at
        16:00). 0 days gives the start itself, or the next opening if the start is closed.
        The time of day is counted from local midnight (exact in zones without daylight saving,
        such as WIB, WITA and WIT).
        """
        return from_microseconds(self._table.days_after(to_microseconds(start), _working_days(days)))

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Office seconds between two instants; 0 when ``end`` is not after ``start``."""
        first, last = to_microseconds(start), to_microseconds(end)
        if last <= first:
            return 0.0
        return self._table.between(first, last) / _PER_SECOND

    def is_open_at(self, instant: datetime) -> bool:
        """Whether the instant lies in office time; a closing time itself is closed."""
        return self._table.is_open(to_microseconds(instant))


@lru_cache(maxsize=64)
def _shared_table(calendar: WorkingHours) -> "_Table":
    # Equal calendars (rebuilt per policy load or per request) share one table.
    return _Table(calendar)


class _Span(NamedTuple):
    """Opening intervals of consecutive local years, with the working time accumulated before
    and after each, counted from the span's first midnight. Immutable: a wider span replaces it
    whole, so a reader in another thread never sees half of a rebuild."""

    first_year: int
    last_year: int
    low: int   # the covered instants are [low, high)
    high: int
    opens: list[int]
    closes: list[int]
    before: list[int]
    after: list[int]
    midnights: list[int]

    def worked_until(self, instant: int) -> int:
        index = bisect_right(self.opens, instant) - 1
        if index < 0:
            return 0
        return self.before[index] + min(instant, self.closes[index]) - self.opens[index]


_EMPTY = _Span(0, -1, 0, 0, [], [], [], [], [])


class _Table:
    """The calendar's span of years, widened on demand (rebuilding costs a few ms a year)."""

    def __init__(self, calendar: WorkingHours) -> None:
        self._calendar = calendar
        self._zone = ZoneInfo(calendar.timezone)
        self._span = _EMPTY

    def _local(self, day: date, minutes: int) -> int:
        if minutes == 1440:
            day, minutes = day + timedelta(days=1), 0
        moment = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self._zone)
        return to_microseconds(moment)

    def _covering(self, instant: int) -> _Span:
        span = self._span
        # Strict at the low end: an instant at the first midnight may close the year before.
        if span.low < instant < span.high:
            return span
        year = from_microseconds(instant).astimezone(self._zone).year
        return self._widened(span, year - 1, year + 1)

    def _longer(self, span: _Span) -> _Span:
        # Doubling keeps a long run of extensions linear overall.
        return self._widened(span, span.first_year, 2 * span.last_year - span.first_year + 1)

    def _widened(self, span: _Span, first_year: int, last_year: int) -> _Span:
        for known in (span, self._span):  # never narrower than what another caller built
            if known.first_year <= known.last_year:
                first_year, last_year = min(first_year, known.first_year), max(last_year, known.last_year)
        if first_year < _FIRST_YEAR or last_year > _LAST_YEAR:
            raise ValueError(f"working time beyond the years {_FIRST_YEAR}-{_LAST_YEAR}")
        self._span = self._build(first_year, last_year)
        return self._span

    def _build(self, first_year: int, last_year: int) -> _Span:
        span = _Span(first_year, last_year, self._local(date(first_year, 1, 1), 0),
                     self._local(date(last_year + 1, 1, 1), 0), [], [], [], [], [])
        total = 0
        day, stop = date(first_year, 1, 1), date(last_year + 1, 1, 1)
        while day < stop:
            hours = self._calendar.hours_on(day)
            if hours is not None:
                opening, closing = self._local(day, hours.opens), self._local(day, hours.closes)
                span.opens.append(opening)
                span.closes.append(closing)
                span.before.append(total)
                total += closing - opening
                span.after.append(total)
                span.midnights.append(self._local(day, 0))
            day += timedelta(days=1)
        return span

    def between(self, first: int, last: int) -> int:
        self._covering(first)
        span = self._covering(last)
        return span.worked_until(last) - span.worked_until(first)

    def is_open(self, instant: int) -> bool:
        span = self._covering(instant)
        index = bisect_right(span.opens, instant) - 1
        return index >= 0 and instant < span.closes[index]

    def instant_after(self, origin: int, amount: int) -> int:
        span = self._covering(origin)
        target = span.worked_until(origin) + amount  # widening forward keeps this count
        while target > span.after[-1]:
            span = self._longer(span)
        index = bisect_left(span.after, target)
        return span.opens[index] + target - span.before[index]

    def days_after(self, origin: int, days: int) -> int:
        span = self._covering(origin)
        while True:
            index = bisect_right(span.opens, origin) - 1
            inside = index >= 0 and origin <= span.closes[index]
            if not inside:
                index += 1  # the next opening
            if index + days < len(span.opens):
                break
            span = self._longer(span)
        if inside:
            time_of_day = origin - span.midnights[index]
        elif days == 0:
            return span.opens[index]
        else:
            time_of_day = span.opens[index] - span.midnights[index]
        target = index + days
        wanted = span.midnights[target] + time_of_day
        return min(max(wanted, span.opens[target]), span.closes[target])
