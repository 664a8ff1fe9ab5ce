"""A ticket's clocks as stored: starting, re-targeting and stopping them, and deriving from
them (and the pauses) the due instants, the ladder's schedule and the flat report fields.
Pure functions over plain ticket documents."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.sla.clocks import (
    Pause,
    closed_at,
    instant_at,
    pause_intervals,
    span_seconds,
    working_elapsed,
)
from services.sla.ladder import Step, build_steps, clock_pauses, schedule
from services.sla.policy import Policy, Target, WorkDuration

Ticket = dict[str, Any]
AGENCY_CLOCKS = ("response", "update", "resolution")


def start_clock(policy: Policy, calendar: str, start: datetime, duration: WorkDuration) -> dict[str, Any]:
    target = span_seconds(policy.calendar(calendar), start, duration)
    return {"started_at": start, "calendar": calendar, "target_seconds": target, "due_at": None,
            "stopped_at": None, "working_seconds": None, "met": None}


def retarget(clock: dict[str, Any], policy: Policy, calendar: str,
              duration: WorkDuration) -> dict[str, Any]:
    """The new target and calendar from the same start, so every pause still counts; a
    stopped clock keeps its verdict."""
    if clock["stopped_at"] is not None:
        return clock
    return start_clock(policy, calendar, clock["started_at"], duration)


def stop_clock(clock: dict[str, Any] | None, policy: Policy, now: datetime, pauses: list[Pause],
               *, judge: bool = True) -> None:
    """Stop a running clock at ``now`` with its working time; ``judge`` sets met (a clock that
    ended with its assignment is not judged)."""
    if clock is None or clock["stopped_at"] is not None:
        return
    calendar = policy.calendar(clock["calendar"])
    clock["stopped_at"] = now
    clock["due_at"] = instant_at(calendar, clock["started_at"], clock["target_seconds"],
                                 closed_at(pauses, now))  # frozen from here on
    clock["working_seconds"] = working_elapsed(calendar, clock["started_at"], now, pauses)
    if judge:
        clock["met"] = clock["working_seconds"] <= clock["target_seconds"]


def target_of(ticket: Mapping[str, Any], policy: Policy) -> Target:
    """The policy's first target matching the ticket's agency, priority, channel, category."""
    return policy.target_for({k: ticket.get(k) for k in ("agency", "priority", "channel", "category")})


def agency_clocks(policy: Policy, target: Target, assigned_at: datetime) -> dict[str, Any]:
    return {"response": start_clock(policy, target.calendar, assigned_at, target.response),
            "update": None,  # starts with the first reply, restarts with each
            "resolution": start_clock(policy, target.calendar, assigned_at, target.resolution)}


def steps_for(policy: Policy, clocks: Mapping[str, Any], names: tuple[str, ...],
              carry: Mapping[tuple[str, int], Step]) -> list[Step]:
    """Ladder steps of the named clocks that exist."""
    steps: list[Step] = []
    for name in names:
        if clocks.get(name) is not None:
            steps += build_steps(policy.levels(name), clocks[name], policy, carry)
    return steps


def carry_steps(ticket: Ticket, *,
                reset_slots: frozenset[str] = frozenset()) -> dict[tuple[str, int], Step]:
    """The ladder's steps by (clock, level), to carry their notice counts into new steps. A
    clock whose slots reset starts a new lateness (an update clock after a reply): an earlier
    acknowledgement does not cover it."""
    return {(s["clock"], s["level"]): {**s, **({"slot": 0, "acknowledged": None}
                                              if s["clock"] in reset_slots else {})}
            for s in ticket["ladder"]}


def refresh(ticket: Ticket, policy: Policy, now: datetime) -> Ticket:
    """Derive due instants, the ladder's next notices, next_check_at and the flat report fields
    from the clocks and pauses. Called after every change."""
    pauses = pause_intervals(ticket["pauses"])
    as_of_now = closed_at(pauses, now)  # a running pause is assumed to end now
    clocks = [*ticket["clocks"].items(), *ticket["citizen_clocks"].items()]
    for name, clock in clocks:
        if clock is not None and clock["stopped_at"] is None:
            clock["due_at"] = instant_at(policy.calendar(clock["calendar"]), clock["started_at"],
                                         clock["target_seconds"], clock_pauses(name, as_of_now))
    ticket["next_check_at"] = schedule(ticket["ladder"], ticket["clocks"], pauses, policy,
                                       status=ticket["status"])
    ticket.update(next_due(ticket["clocks"]))
    citizen = ticket["citizen_clocks"]
    ticket.update({
        "response_due_at": citizen["response"]["due_at"],
        "resolution_due_at": citizen["resolution"]["due_at"],
        "response_working_seconds": citizen["response"]["working_seconds"],
        "resolution_working_seconds": citizen["resolution"]["working_seconds"],
        "response_met": citizen["response"]["met"], "resolution_met": citizen["resolution"]["met"],
        "deadlines": {"response_due": citizen["response"]["due_at"],
                      "resolution_due": citizen["resolution"]["due_at"],
                      "legal_ceiling": ticket["clocks"]["ceiling"]["due_at"]},
    })
    ticket.update(report_epochs(ticket))
    return ticket


def epoch(instant: datetime | None) -> float | None:
    return None if instant is None else instant.timestamp()


def report_epochs(ticket: Mapping[str, Any]) -> dict[str, float | None]:
    """Numeric copies (epoch seconds) of the instants compliance reports range over, written
    with the ticket: NX-27017 answers a range on numbers from an index but reads the whole
    collection for a range on dates (see ``report_store``)."""
    return {"submitted_epoch": epoch(ticket.get("submitted_at")),
            "assigned_epoch": epoch(ticket.get("assigned_at")),
            "resolved_epoch": epoch(ticket.get("resolved_at"))}


# Share of a clock's span after which an inbox shows it as "due soon" (the demo and default
# ladders warn at the same point, at: 0.75).
DUE_SOON_SHARE = 0.75


def next_due(clocks: Mapping[str, Any]) -> dict[str, datetime | None]:
    """The agency's next deadline over its running clocks (``due_next_at``) and when that
    clock counts as due soon (``due_soon_at``): flat, indexed fields an inbox sorts and
    filters on. A paused clock's due instant is as if the pause ended now."""
    running = [c for c in clocks.values()
               if c is not None and c["stopped_at"] is None and c["due_at"] is not None]
    if not running:
        return {"due_next_at": None, "due_soon_at": None}
    first = min(running, key=lambda c: c["due_at"])
    soon = first["started_at"] + (first["due_at"] - first["started_at"]) * DUE_SOON_SHARE
    return {"due_next_at": first["due_at"], "due_soon_at": soon}


def retarget_citizen(ticket: Ticket, policy: Policy, target: Target) -> None:
    citizen = ticket["citizen_clocks"]
    citizen["response"] = retarget(citizen["response"], policy, target.calendar, target.response)
    citizen["resolution"] = retarget(citizen["resolution"], policy, target.calendar,
                                     target.resolution)


def open_pause(ticket: Ticket) -> dict[str, Any] | None:
    return next((p for p in ticket["pauses"] if p["ended_at"] is None), None)


def history_entry(now: datetime, action: str, agency: str, *, actor: str | None = None,
                  note: str | None = None, reason: str | None = None,
                  **extra: Any) -> dict[str, Any]:
    entry = {"at": now, "action": action, "actor": actor, "agency": agency, "note": note,
             "reason": reason}
    return {**entry, **{k: v for k, v in extra.items() if v is not None}}
