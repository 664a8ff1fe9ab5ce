"""TEMPORARY stand-in for the calendar API that services/sla/calendar.py is being rewritten to
offer (same names and signatures). The integrator deletes this file and points the two
imports (services/sla/policy.py, services/sla/clocks.py) at services.sla.calendar.

It wraps the current whole-day calendar: ``working_hours`` counts whole working days.
"""

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from services.sla.calendar import AlwaysOpen, WorkingDays, working_days

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Calendar(Protocol):
    def add(self, start: datetime, seconds: float) -> datetime: ...
    def add_days(self, start: datetime, days: int) -> datetime: ...
    def elapsed(self, start: datetime, end: datetime) -> float: ...
    def is_open_at(self, instant: datetime) -> bool: ...


class CalendarSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["working_hours", "24x7"]
    timezone: str | None = None
    hours: object | None = None
    holidays_file: str | None = None
    extra_holidays: list[date] = Field(default_factory=list)
    extra_working_days: list[date] = Field(default_factory=list)


class WorkDuration(NamedTuple):
    amount: float
    unit: Literal["d", "h", "m", "s"]


def parse_duration(value: object) -> WorkDuration:
    if isinstance(value, WorkDuration):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return WorkDuration(float(value), "s")
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"duration {value!r}: expected a number and s, m, h or d, e.g. '5d'")
    unit = match.group(2)
    assert unit in ("d", "h", "m", "s")
    return WorkDuration(float(match.group(1)), unit)  # type: ignore[arg-type]


class _Whole:
    """Adds the two methods the new API has to the current calendars."""

    def __init__(self, inner: AlwaysOpen | WorkingDays) -> None:
        self.inner = inner

    def add(self, start: datetime, seconds: float) -> datetime:
        return self.inner.add(start, seconds)

    def add_days(self, start: datetime, days: int) -> datetime:
        return self.add(start, days * 86400.0)

    def elapsed(self, start: datetime, end: datetime) -> float:
        return self.inner.elapsed(start, end)

    def is_open_at(self, instant: datetime) -> bool:
        return self.elapsed(instant, instant + timedelta(seconds=1)) > 0


def build_calendar(spec: CalendarSpec, *, default_timezone: str, base_dir: Path) -> Calendar:
    if spec.type == "24x7":
        return _Whole(AlwaysOpen())
    zone = spec.timezone or default_timezone
    return _Whole(working_days(zone, spec.extra_holidays, spec.extra_working_days))


def due(calendar: Calendar, start: datetime, duration: WorkDuration) -> datetime:
    if duration.unit == "d":
        whole = int(duration.amount)
        end = calendar.add_days(start, whole)
        return calendar.add(end, (duration.amount - whole) * 86400.0)
    return calendar.add(start, duration.amount * _UNIT_SECONDS[duration.unit])
