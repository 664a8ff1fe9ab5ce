"""The SLA policy file: calendars, targets per ticket (first match wins), pause rules, the legal
ceiling and the escalation ladder. Durations are working time on the target's calendar:
'5d' is five working days, '4h' four working hours (on a 24x7 calendar: plain hours)."""

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from services.sla.calendar import (
    Calendar,
    CalendarSpec,
    WorkDuration,
    build_calendar,
    parse_duration,
)
from services.sla.reports import ComplianceZones
from shared.contracts import describe_errors

__all__ = ["Calendar", "Level", "Policy", "PolicyError", "Target", "WorkDuration", "load_policy"]

Duration = Annotated[WorkDuration, BeforeValidator(parse_duration)]
ClockName = Literal["response", "update", "resolution", "ceiling", "routing"]


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file, the path and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    response: Duration = Field(description="First reply the citizen can see.")
    update: Duration | None = Field(None, description="Longest silence between replies while open.")
    resolution: Duration


class Level(_Strict):
    """One rung: fires at a fraction of the clock's target (``at``) or a delay after its breach
    (``after_breach``), notifies roles, and repeats every ``renotify`` until the clock stops."""

    clock: ClockName
    level: int = Field(ge=1)
    at: float | None = Field(None, gt=0, description="Fraction of the target, e.g. 0.75 or 1.0.")
    after_breach: Duration | None = Field(None, description="Working time after the target.")
    notify: list[str] = Field(min_length=1, description="Roles, resolved from the rulebook.")
    renotify: Duration | None = Field(None, description="Notify again this often until stopped.")

    @model_validator(mode="after")
    def _one_trigger(self) -> "Level":
        if (self.at is None) == (self.after_breach is None):
            raise ValueError("give exactly one trigger: at (fraction of target) or after_breach")
        return self

    @property
    def trigger_text(self) -> str:
        if self.at is not None:
            return f"{self.at:.0%} of {self.clock} target"
        assert self.after_breach is not None
        return f"{self.after_breach.amount:g}{self.after_breach.unit} after {self.clock} breach"


class Pauses(_Strict):
    max_per_ticket: int = Field(3, ge=0, description="Pauses (needs_info) allowed per ticket.")
    quick_repause_within: Duration = Field(
        WorkDuration(1, "h"), description="A pause this soon after the citizen replied is flagged.")


class Ceiling(_Strict):
    calendar: str = Field(description="Calendar of the legal ceiling (24x7: calendar days).")
    after: Duration = Field(description="Perpres 76/2013: settle within 60 days.")


class Routing(_Strict):
    """A rejected ticket must have a new agency within this; the triage desk is escalated to."""

    calendar: str
    within: Duration


class Policy(_Strict):
    timezone: str = "Asia/Jakarta"
    calendars: dict[str, CalendarSpec]
    ceiling: Ceiling
    pauses: Pauses = Field(default_factory=Pauses)
    routing: Routing | None = Field(None, description="Re-routing after a rejection.")
    targets: list[Target] = Field(min_length=1)
    escalation: list[Level] = Field(default_factory=list)
    reports: ComplianceZones = Field(default_factory=ComplianceZones,
                                     description="Traffic-light thresholds of compliance reports.")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _calendars: dict[str, Calendar] = PrivateAttr(default_factory=dict)
    _levels: dict[str, list[Level]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> "Policy":
        uses = [(f"target {t.name!r}", t.calendar) for t in self.targets]
        if self.routing is not None:
            uses.append(("routing", self.routing.calendar))
        for owner, name in [*uses, ("ceiling", self.ceiling.calendar)]:
            if name not in self.calendars:
                raise ValueError(f"{owner} uses unknown calendar {name!r}")
        keys = [(lvl.clock, lvl.level) for lvl in self.escalation]
        if len(keys) != len(set(keys)):
            raise ValueError("escalation: each (clock, level) may appear once")
        if not self.targets[-1].when.accepts({}):
            raise ValueError("the last target must match every ticket (a `when`-less catch-all)")
        return self

    def target_for(self, ticket: Mapping[str, object]) -> Target:
        return next(t for t in self.targets if t.when.accepts(ticket))

    def _private(self) -> dict[str, Any]:
        # Read straight from pydantic's slot: ``self._calendars`` goes through the model's
        # ``__getattr__``, which was a fifth of the SLA's CPU when building tickets (calendars
        # are asked for many times per ticket change).
        private = self.__pydantic_private__
        assert private is not None
        return private

    def calendar(self, name: str) -> Calendar:
        private = self._private()
        built: dict[str, Calendar] = private["_calendars"]
        found = built.get(name)
        if found is None:
            found = built[name] = build_calendar(
                self.calendars[name], default_timezone=self.timezone, base_dir=private["_base_dir"])
        return found

    def levels(self, clock: str) -> list[Level]:
        """The clock's rungs by level (the policy is frozen: sorted once)."""
        by_clock: dict[str, list[Level]] = self._private()["_levels"]
        found = by_clock.get(clock)
        if found is None:
            found = by_clock[clock] = sorted(
                (lvl for lvl in self.escalation if lvl.clock == clock), key=lambda x: x.level)
        return found

    def level(self, clock: str, level: int) -> Level | None:
        return next((lvl for lvl in self.levels(clock) if lvl.level == level), None)


def load_policy(path: Path) -> Policy:
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as error:
        raise PolicyError(f"{path}: cannot read: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise PolicyError(f"{path}: not valid YAML: {error}") from error
    try:
        policy = Policy.model_validate(content)
    except ValidationError as error:
        raise PolicyError(f"{path}: {describe_errors(error.errors())}") from error
    policy._base_dir = path.resolve().parent  # holiday files are named relative to the policy
    return policy
