"""The escalation ladder of a ticket: its steps, when each fires next, which notices are due.

A step is one rung of the policy (clock, level) on one ticket. Notice ``r`` of a step (r = 0
first, then re-notifies) is due when the clock's working time reaches
``offset_seconds + slot * renotify_seconds``; ``fired`` counts notices sent (the next repeat
number) and ``slot`` is the time slot of the next one (a step without re-notify has only slot
0). A restarted update clock resets the slot but not the count, so ids never repeat. A
re-notify missed several times over skips to the next slot after now, so downtime yields one
late notice, not a burst.

A stored step is compact: what the scheduler needs (clock, level, offset, re-notify span,
counts, ``next_at``, an acknowledgement) and nothing the policy already says. Its trigger text
and recipients come from the policy's rung (``step_rung``); ``renotify_seconds`` and
``acknowledged`` are absent when they would be null. Steps stored before that (with
``trigger`` and ``notify``) are read as they are.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.sla.clocks import Pause, instant_at, span_seconds, working_elapsed
from services.sla.policy import Level, Policy
from shared.contracts import Escalation, Recipient

Step = dict[str, Any]
ClockDoc = dict[str, Any]
StepKey = tuple[str, int]
ROUTING = "routing"  # runs only while a rejected ticket waits for a new agency


def clock_pauses(clock: str, pauses: list[Pause]) -> list[Pause]:
    """Pauses that hold this clock: waiting for the citizen does not hold re-routing."""
    return [] if clock == ROUTING else pauses


def runs_in(clock: str, status: str) -> bool:
    if status == "resolved":
        return False
    return (clock == ROUTING) == (status == "rejected")


def build_steps(levels: list[Level], clock: ClockDoc, policy: Policy,
                carry: Mapping[StepKey, Step]) -> list[Step]:
    """Steps for a (re)started or re-targeted clock; ``carry`` keeps notices already counted
    for the same (clock, level), so a re-target never reuses a repeat number."""
    calendar = policy.calendar(clock["calendar"])
    start, target = clock["started_at"], clock["target_seconds"]
    steps = []
    for level in levels:
        if level.at is not None:
            offset = level.at * target
        else:
            assert level.after_breach is not None
            breach = calendar.add(start, target)
            offset = target + span_seconds(calendar, breach, level.after_breach)
        renotify = None
        if level.renotify is not None:
            renotify = span_seconds(calendar, calendar.add(start, offset), level.renotify)
        previous = carry.get((level.clock, level.level), {})
        step: Step = {"clock": level.clock, "level": level.level, "offset_seconds": offset,
                      "fired": previous.get("fired", 0), "slot": previous.get("slot", 0),
                      "next_at": None}
        if renotify is not None:
            step["renotify_seconds"] = renotify
        if previous.get("acknowledged"):
            # A supervisor's acknowledgement holds while the step is carried (a re-target).
            step["acknowledged"] = previous["acknowledged"]
        steps.append(step)
    return steps


def step_rung(step: Step, policy: Policy) -> tuple[str, list[str]]:
    """The step's trigger text and roles to notify: as stored on a step written before steps
    were compact, else from the policy's rung (clock, level); a rung the policy no longer has
    notifies no role."""
    if "trigger" in step:
        return str(step["trigger"]), list(step.get("notify", []))
    level = policy.level(step["clock"], step["level"])
    if level is None:
        return f"{step['clock']} level {step['level']}", []
    return level.trigger_text, list(level.notify)


def is_done(step: Step) -> bool:
    """A step without re-notify has one slot; it is done once that slot has passed. An
    acknowledged step is done: a supervisor has it in hand, so it re-notifies no more."""
    if step.get("acknowledged"):
        return True
    return step.get("renotify_seconds") is None and step["slot"] > 0


def step_offset(step: Step) -> float:
    return float(step["offset_seconds"] + step["slot"] * (step.get("renotify_seconds") or 0.0))


def schedule(steps: list[Step], clocks: Mapping[str, ClockDoc | None], pauses: list[Pause],
             policy: Policy, *, status: str) -> datetime | None:
    """Set each step's ``next_at`` (None when its clock stopped or does not run in this
    status, it is done, or a pause is running) and return the earliest: the next check."""
    for step in steps:
        clock = clocks.get(step["clock"])
        step["next_at"] = None
        if (not runs_in(step["clock"], status) or clock is None or clock["stopped_at"] is not None
                or is_done(step)):
            continue
        step["next_at"] = instant_at(policy.calendar(clock["calendar"]), clock["started_at"],
                                     step_offset(step), clock_pauses(step["clock"], pauses))
    return min((s["next_at"] for s in steps if s["next_at"] is not None), default=None)


@dataclass(frozen=True)
class Notice:
    """One escalation to store and publish; ``id`` is the claim (unique in the store)."""

    id: str
    index: int
    escalation: Escalation


def notice_id(ticket_id: str, assignment: int, step: Step) -> str:
    return f"{ticket_id}:a{assignment}:{step['clock']}:{step['level']}:{step['fired']}"


def due_notices(ticket: Mapping[str, Any], policy: Policy, now: datetime, *,
                late_after_seconds: float, supervisors: Callable[[str], Mapping[str, str]],
                routing_desk: str, pauses: list[Pause]) -> list[Notice]:
    """Notices whose step is due at ``now``: one per step, however many slots were missed.
    Recipients are the supervisors of the agency concerned: the ticket's, or for the routing
    clock the triage desk's (the agency that rejected it hears no more)."""
    notices = []
    for index, step in enumerate(ticket["ladder"]):
        if step["next_at"] is None or step["next_at"] > now:
            continue
        clock = ticket["clocks"][step["clock"]]
        calendar = policy.calendar(clock["calendar"])
        repeat = step["fired"]
        agency = routing_desk if step["clock"] == ROUTING else ticket["agency"]
        holders = supervisors(agency)
        text, roles = step_rung(step, policy)
        trigger = text if repeat == 0 else f"{text}, re-notify {repeat}"
        notices.append(Notice(notice_id(ticket["_id"], ticket["assignment"], step), index, Escalation(
            agency=agency, assignment=ticket["assignment"], level=step["level"],
            clock=step["clock"], trigger=trigger, target_seconds=clock["target_seconds"],
            elapsed_seconds=working_elapsed(calendar, clock["started_at"], now,
                                            clock_pauses(step["clock"], pauses)),
            due_at=clock["due_at"], triggered_at=step["next_at"], fired_at=now,
            late=(now - step["next_at"]).total_seconds() > late_after_seconds, repeat=repeat,
            recipients=[Recipient(role=role, name=holders.get(role)) for role in roles],
        )))
    return notices


def advance(step: Step, clock: ClockDoc, policy: Policy, now: datetime,
            pauses: list[Pause]) -> None:
    """Count a fired notice and move the step to its next slot after ``now``."""
    step["fired"] += 1
    renotify = step.get("renotify_seconds")
    if renotify is None:
        step["slot"] += 1
        return
    elapsed = working_elapsed(policy.calendar(clock["calendar"]), clock["started_at"], now,
                              clock_pauses(step["clock"], pauses))
    passed = math.floor((elapsed - step["offset_seconds"]) / renotify) + 1
    step["slot"] = max(step["slot"] + 1, passed)
