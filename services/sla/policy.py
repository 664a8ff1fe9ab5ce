"""The SLA policy file: calendars, targets per ticket (first match wins), escalation ladder."""

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from services.sla.calendar import AlwaysOpen, Calendar, working_days
from shared.contracts import describe_errors

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file, the path and the problem."""


def parse_duration(value: object) -> float:
    """'5s', '30m', '4h', '5d' -> seconds of working time (a working day counts 24 h)."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"duration {value!r}: expected a number and s, m, h or d, e.g. '5d'")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarSpec(_Strict):
    type: Literal["working_days", "24x7"]
    extra_holidays: list[date] = Field(default_factory=list, description="Tenant closed dates.")
    extra_working_days: list[date] = Field(default_factory=list, description="Dates reopened.")


class Match(_Strict):
    agency: list[str] | None = None
    priority: list[str] | None = None
    channel: list[str] | None = None
    category: list[str] | None = None

    def accepts(self, ticket: Mapping[str, object]) -> bool:
        checks = {"agency": self.agency, "priority": self.priority, "channel": self.channel,
                  "category": self.category}
        return all(allowed is None or ticket.get(name) in allowed for name, allowed in checks.items())


class Target(_Strict):
    name: str
    when: Match = Field(default_factory=Match)
    calendar: str
    response: Duration
    resolution: Duration


class Level(_Strict):
    clock: Literal["response", "resolution"]
    level: int = Field(ge=1)
    at: float = Field(gt=0, description="Fraction of the clock's target, e.g. 0.75 or 1.0.")
    notify: list[str] = Field(min_length=1, description="Roles, resolved from the rulebook.")


class Policy(_Strict):
    timezone: str = "Asia/Jakarta"
    legal_ceiling_days: int = Field(60, description="Perpres 76/2013: settle within 60 days.")
    calendars: dict[str, CalendarSpec]
    targets: list[Target] = Field(min_length=1)
    escalation: list[Level] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> "Policy":
        for target in self.targets:
            if target.calendar not in self.calendars:
                raise ValueError(f"target {target.name!r} uses unknown calendar {target.calendar!r}")
        keys = [(lvl.clock, lvl.level) for lvl in self.escalation]
        if len(keys) != len(set(keys)):
            raise ValueError("escalation: each (clock, level) may appear once")
        return self

    def target_for(self, ticket: Mapping[str, object]) -> Target:
        for target in self.targets:
            if target.when.accepts(ticket):
                return target
        raise LookupError("no SLA target matches; end the targets list with a catch-all")

    def calendar(self, name: str) -> Calendar:
        spec = self.calendars[name]
        if spec.type == "24x7":
            return AlwaysOpen()
        return working_days(self.timezone, spec.extra_holidays, spec.extra_working_days)


def load_policy(path: Path) -> Policy:
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as error:
        raise PolicyError(f"{path}: cannot read: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise PolicyError(f"{path}: not valid YAML: {error}") from error
    try:
        return Policy.model_validate(content)
    except ValidationError as error:
        raise PolicyError(f"{path}: {describe_errors(error.errors())}") from error
