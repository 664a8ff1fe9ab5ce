"""Working calendars of a tenant: what a policy file says, and the arithmetic built from it.

Instants go in as timezone-aware datetimes (naive ones are refused with a ValueError) and come
out as UTC datetimes; days are judged in the calendar's local timezone, so a holiday is never
shifted by a timezone. Two kinds:

- ``working_hours``: office hours per weekday in the tenant's timezone (Kota Bengkulu:
  Monday-Thursday 07:30-16:00, Friday 07:30-16:30, weekend closed); national holidays and cuti
  bersama from the ``holidays`` package are closed, corrected by the tenant's holidays file
  (dates to add, national ones to remove) and the spec's own extra dates.
- ``24x7``: always open, for emergency agencies (DAMKAR, BPBD); a working day is 24 hours.

See :mod:`services.sla.working_time` for the exact meaning of adding days and hours.
"""

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from services.sla.durations import WorkDuration, parse_duration
from services.sla.working_time import (
    BENGKULU_WEEK,
    AlwaysOpen,
    OfficeHours,
    WorkingHours,
    check_timezone,
    national_holidays,
)
from shared.contracts import describe_errors
from shared.yamlfile import read_yaml

__all__ = ["AlwaysOpen", "Calendar", "CalendarSpec", "HolidayChanges", "OfficeHours", "WeekHours",
           "WorkDuration", "WorkingHours", "build_calendar", "check_timezone", "due",
           "load_holiday_changes", "national_holidays", "parse_duration"]


class Calendar(Protocol):
    """Working-time arithmetic on UTC instants."""

    def add(self, start: datetime, seconds: float) -> datetime:
        """The first instant at which ``seconds`` of working time have passed since ``start``."""
        ...

    def add_days(self, start: datetime, days: int) -> datetime:
        """The same time of day ``days`` working days later (see WorkingHours.add_days)."""
        ...

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Working seconds between two instants; 0 when ``end`` is not after ``start``."""
        ...

    def is_open_at(self, instant: datetime) -> bool:
        """Whether the instant lies in working time (a closing time itself is closed)."""
        ...


def due(calendar: Calendar, start: datetime, duration: WorkDuration) -> datetime:
    """When a target of ``duration`` started at ``start`` falls due: days by ``add_days``,
    hours, minutes and seconds by ``add``."""
    if duration.unit == "d":
        return calendar.add_days(start, int(duration.amount))
    return calendar.add(start, duration.seconds)


def _office_hours(value: object) -> object:
    return OfficeHours.parse(value) if isinstance(value, str) else value


Hours = Annotated[OfficeHours | None, BeforeValidator(_office_hours),
                  PlainSerializer(lambda hours: None if hours is None else str(hours))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DEFAULT = dict(zip(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), BENGKULU_WEEK, strict=True))


class WeekHours(_Strict):
    """Office hours per weekday as 'HH:MM-HH:MM' (24:00 allowed as a closing) or null for closed;
    a weekday left out keeps the Kota Bengkulu default."""

    mon: Hours = _DEFAULT["mon"]
    tue: Hours = _DEFAULT["tue"]
    wed: Hours = _DEFAULT["wed"]
    thu: Hours = _DEFAULT["thu"]
    fri: Hours = _DEFAULT["fri"]
    sat: Hours = _DEFAULT["sat"]
    sun: Hours = _DEFAULT["sun"]

    def week(self) -> tuple[OfficeHours | None, ...]:
        return (self.mon, self.tue, self.wed, self.thu, self.fri, self.sat, self.sun)


_ONLY_FOR_WORKING_HOURS = ("hours", "holidays_file", "extra_holidays", "extra_working_days")


class CalendarSpec(_Strict):
    """One entry of a policy's ``calendars:`` mapping."""

    type: Literal["working_hours", "24x7"]
    timezone: str | None = Field(None, description="IANA zone; defaults to the policy's timezone.")
    hours: WeekHours = Field(default_factory=WeekHours)
    holidays_file: Path | None = Field(
        None, description="Tenant additions and removals (YAML), relative to the policy file.")
    extra_holidays: list[date] = Field(default_factory=list, description="More closed dates.")
    extra_working_days: list[date] = Field(default_factory=list,
                                           description="Dates open whatever they are.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str | None) -> str | None:
        return None if name is None else check_timezone(name)

    @model_validator(mode="after")
    def _consistent(self) -> "CalendarSpec":
        if self.type == "24x7":
            given = [name for name in _ONLY_FOR_WORKING_HOURS if name in self.model_fields_set]
            if given:
                raise ValueError(f"a 24x7 calendar is always open; {', '.join(given)} do not apply")
            return self
        if not any(self.hours.week()):
            raise ValueError("hours: every weekday is closed; open one day or use type 24x7")
        both = sorted(set(self.extra_holidays) & set(self.extra_working_days))
        if both:
            raise ValueError(f"dates both closed and reopened: {', '.join(map(str, both))}")
        return self


class HolidayEntry(_Strict):
    date: date
    name: str = Field(min_length=1)


class HolidayChanges(_Strict):
    """A tenant's holidays file: closed dates to add, national holidays the tenant works on."""

    add: list[HolidayEntry] = Field(default_factory=list)
    remove: list[HolidayEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_contradiction(self) -> "HolidayChanges":
        for name, entries in (("add", self.add), ("remove", self.remove)):
            days = [entry.date for entry in entries]
            repeated = sorted({day for day in days if days.count(day) > 1})
            if repeated:
                raise ValueError(f"{name}: dates listed twice: {', '.join(map(str, repeated))}")
        both = sorted({e.date for e in self.add} & {e.date for e in self.remove})
        if both:
            raise ValueError(f"dates both added and removed: {', '.join(map(str, both))}")
        for index, entry in enumerate(self.remove):
            if entry.date not in national_holidays(entry.date.year):
                raise ValueError(f"remove.{index}: {entry.date} ({entry.name}) is not a national "
                                 "holiday or cuti bersama in the holidays package")
        return self


def load_holiday_changes(path: Path) -> HolidayChanges:
    """Read a tenant holidays file; a ValueError names the file, the entry and the problem."""
    try:
        stat = path.stat()
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror}") from error
    return _load_holiday_changes(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _load_holiday_changes(path: Path, mtime_ns: int, size: int) -> HolidayChanges:
    # Keyed on the file's stamp: policies are reloaded often, the file rarely changes.
    content: Any = read_yaml(path)
    try:
        return HolidayChanges.model_validate(content or {})
    except ValidationError as error:
        raise ValueError(f"{path}: {describe_errors(error.errors())}") from None


def build_calendar(spec: CalendarSpec, *, default_timezone: str, base_dir: Path) -> Calendar:
    """The calendar a spec describes; ``holidays_file`` is read relative to ``base_dir`` (the
    policy file's folder). Bad files or zones raise a ValueError naming them."""
    if spec.type == "24x7":
        return AlwaysOpen()
    timezone = spec.timezone or check_timezone(default_timezone)
    changes = HolidayChanges()
    if spec.holidays_file is not None:
        changes = load_holiday_changes(base_dir / spec.holidays_file)
    closed = {entry.date for entry in changes.add} | set(spec.extra_holidays)
    return WorkingHours(timezone, spec.hours.week(), frozenset(closed),
                        frozenset(entry.date for entry in changes.remove),
                        frozenset(spec.extra_working_days))
