"""``disposisi calendar``: due instants and working time of the tenant's calendar, for operators."""

import argparse
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from services.sla.calendar import Calendar, CalendarSpec, WorkDuration, build_calendar, check_timezone, due
from shared.contracts import describe_errors
from shared.settings import Settings
from shared.yamlfile import read_yaml

_NAIVE = ("An instant without an offset (e.g. 2026-07-06T10:00) is read in the calendar's "
          "timezone; give an offset or Z for anything else (2026-07-06T03:00Z).")


@dataclass(frozen=True)
class TenantCalendar:
    name: str
    calendar: Calendar
    zone: ZoneInfo


def add_calendar_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``calendar due`` and ``calendar elapsed`` under the ``disposisi`` command."""
    parser = commands.add_parser("calendar", help="due instants and working time of the SLA calendar")
    actions = parser.add_subparsers(dest="calendar_command", required=True)
    due_parser = actions.add_parser(
        "due", help="when working days or hours added to a start fall due", description=_NAIVE)
    due_parser.add_argument("--start", required=True, help="ISO 8601 start instant")
    amount = due_parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--working-days", type=int, metavar="N", help="whole working days")
    amount.add_argument("--working-hours", type=float, metavar="H", help="working (office) hours")
    elapsed_parser = actions.add_parser(
        "elapsed", help="working time between two instants", description=_NAIVE)
    elapsed_parser.add_argument("--from", dest="start", required=True, help="ISO 8601 instant")
    elapsed_parser.add_argument("--to", dest="end", required=True, help="ISO 8601 instant")
    for action in (due_parser, elapsed_parser):
        action.add_argument("--calendar", default="working_hours",
                            help="calendar name in the policy's calendars: (default working_hours)")
        action.add_argument("--policy", type=Path, default=None,
                            help="SLA policy file (default: DISPOSISI_SLA_POLICY, the packaged one)")


def run_calendar(args: argparse.Namespace) -> int:
    """Print the answer; a bad instant, calendar or file is one line on stderr and exit code 2."""
    try:
        tenant = load_tenant_calendar(args.policy or Settings().sla_policy, args.calendar)
        if args.calendar_command == "due":
            _print_due(tenant, args)
        else:
            _print_elapsed(tenant, _instant(args.start, tenant.zone, "--from"),
                           _instant(args.end, tenant.zone, "--to"))
    except ValueError as error:
        message = " ".join(str(error).split())  # YAML errors span lines; operators grep one
        print(f"disposisi calendar: {message}", file=sys.stderr)
        return 2
    return 0


def load_tenant_calendar(path: Path, name: str) -> TenantCalendar:
    """Calendar ``name`` of a policy file, with the policy's ``timezone`` as the tenant default."""
    content: Any = read_yaml(path)
    calendars = content.get("calendars") if isinstance(content, dict) else None
    if not isinstance(calendars, dict):
        raise ValueError(f"{path}: calendars: expected a mapping of calendar names to calendars")
    if name not in calendars:
        raise ValueError(f"{path}: no calendar {name!r}; known: {', '.join(map(str, calendars))}")
    try:
        spec = CalendarSpec.model_validate(calendars[name])
        default_zone = check_timezone(str(content.get("timezone", "Asia/Jakarta")))
    except ValidationError as error:
        raise ValueError(f"{path}: {_problems(error, ('calendars', name))}") from None
    except ValueError as error:
        raise ValueError(f"{path}: timezone: {error}") from None
    calendar = build_calendar(spec, default_timezone=default_zone, base_dir=path.parent)
    return TenantCalendar(name, calendar, ZoneInfo(spec.timezone or default_zone))


def _problems(error: ValidationError, where: tuple[str, ...]) -> str:
    return describe_errors([{**problem, "loc": (*where, *problem["loc"])} for problem in error.errors()])


def _instant(text: str, zone: ZoneInfo, option: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: not an ISO 8601 date-time, "
                         "e.g. 2026-07-06T10:00 or 2026-07-06T03:00Z") from None
    return instant.replace(tzinfo=zone) if instant.tzinfo is None else instant


def _print_due(tenant: TenantCalendar, args: argparse.Namespace) -> None:
    start = _instant(args.start, tenant.zone, "--start")
    if args.working_days is not None:
        duration, label = WorkDuration(args.working_days, "d"), f"{args.working_days} working days"
    else:
        duration, label = WorkDuration(args.working_hours, "h"), f"{args.working_hours:g} working hours"
    if not (math.isfinite(duration.amount) and duration.amount >= 0):
        option = "--working-days" if duration.unit == "d" else "--working-hours"
        raise ValueError(f"{option} {duration.amount:g}: must be a number, zero or more")
    result = due(tenant.calendar, start, duration)
    print(f"calendar:  {tenant.name} ({tenant.zone.key})")
    print(f"start:     {_local(start, tenant.zone)}")
    print(f"due:       {_local(result, tenant.zone)}  after {label}")
    print(f"due (UTC): {result.astimezone(UTC).isoformat().replace('+00:00', 'Z')}")


def _print_elapsed(tenant: TenantCalendar, start: datetime, end: datetime) -> None:
    seconds = tenant.calendar.elapsed(start, end)
    print(f"calendar:     {tenant.name} ({tenant.zone.key})")
    print(f"from:         {_local(start, tenant.zone)}")
    print(f"to:           {_local(end, tenant.zone)}")
    exact = f"{seconds:.6f}".rstrip("0").rstrip(".")
    print(f"working time: {_hours_and_minutes(seconds)} ({exact} s)")


def _local(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z (UTC%z)")


def _hours_and_minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours} h {minutes:02d} min"
    return f"{text} {rest:02d} s" if rest else text
