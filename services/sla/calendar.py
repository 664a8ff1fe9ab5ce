"""Working-time calendars: pure arithmetic on instants, computed in the tenant's timezone.

Instants go in and come out as UTC-aware datetimes; days are judged in local time, so a
holiday is never shifted by a timezone (the Zammad #3706 class of bug).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays


class Calendar(Protocol):
    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant when ``seconds`` of working time after ``start`` have passed."""
        ...

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Working seconds between two instants (0 when end is before start)."""
        ...


class AlwaysOpen:
    """24x7: every second counts (emergency agencies such as DAMKAR and BPBD)."""

    def add(self, start: datetime, seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    def elapsed(self, start: datetime, end: datetime) -> float:
        return max(0.0, (end - start).total_seconds())


@cache
def national_holidays(year: int) -> frozenset[date]:
    """Indonesian public holidays and cuti bersama (government category) for one year."""
    found = holidays.country_holidays("ID", years=year, categories=("public", "government"))
    return frozenset(found.keys())


@dataclass(frozen=True)
class WorkingDays:
    """Whole working days in the tenant's timezone: weekends, national holidays, cuti bersama
    and the tenant's own closed dates are skipped; ``extra_working_days`` reopen a date."""

    timezone: str = "Asia/Jakarta"
    closed_dates: frozenset[date] = field(default_factory=frozenset)
    extra_working_days: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        return day.weekday() < 5 and day not in self.closed_dates and \
            day not in national_holidays(day.year)

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.zone)

    def add(self, start: datetime, seconds: float) -> datetime:
        remaining = timedelta(seconds=seconds)
        cursor = start.astimezone(self.zone)
        while True:
            day = cursor.date()
            day_end = self._midnight(day + timedelta(days=1))
            if self.is_open(day):
                if cursor + remaining <= day_end:
                    return (cursor + remaining).astimezone(UTC)
                remaining -= day_end - cursor
            cursor = day_end

    def elapsed(self, start: datetime, end: datetime) -> float:
        total = 0.0
        cursor = start.astimezone(self.zone)
        end_local = end.astimezone(self.zone)
        while cursor < end_local:
            day_end = min(self._midnight(cursor.date() + timedelta(days=1)), end_local)
            if self.is_open(cursor.date()):
                total += (day_end - cursor).total_seconds()
            cursor = day_end
        return total


def working_days(timezone: str, closed: Iterable[date] = (),
                 reopened: Iterable[date] = ()) -> WorkingDays:
    return WorkingDays(timezone, frozenset(closed), frozenset(reopened))
