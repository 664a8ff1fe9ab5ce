"""What an action does to a ticket: agencies' replies, resolution, rejection, pauses for the
citizen (needs_info / citizen_replied), notes and a change of priority. Pure functions."""

import copy
from datetime import datetime, timedelta
from typing import Any

from services.sla.clocks import Pause, pause_intervals
from services.sla.ladder import ROUTING, build_steps
from services.sla.policy import Policy, WorkDuration
from services.sla.timing import (
    AGENCY_CLOCKS,
    Ticket,
    carry_steps,
    history_entry,
    open_pause,
    refresh,
    retarget,
    retarget_citizen,
    start_clock,
    steps_for,
    stop_clock,
    target_of,
)
from shared.contracts import TicketUpdate, UpdateAction

A = UpdateAction
_OPEN_ACTIONS = {A.RESPONDED, A.RESOLVED, A.NOTE, A.REPRIORITISED, A.PICKED_UP}

# Which actions each status accepts. A rejected ticket waits for re-routing.
ALLOWED: dict[str, set[UpdateAction]] = {
    "assigned": _OPEN_ACTIONS | {A.ACKNOWLEDGED, A.REJECTED, A.NEEDS_INFO},
    "acknowledged": _OPEN_ACTIONS | {A.REJECTED, A.NEEDS_INFO},
    "responded": _OPEN_ACTIONS | {A.NEEDS_INFO},
    "needs_info": _OPEN_ACTIONS | {A.REJECTED, A.CITIZEN_REPLIED},
    "rejected": {A.NOTE, A.REPRIORITISED, A.CITIZEN_REPLIED},
    "resolved": set(),
}
STATUS_AFTER = {A.ACKNOWLEDGED: "acknowledged", A.RESPONDED: "responded",
                A.RESOLVED: "resolved", A.REJECTED: "rejected", A.NEEDS_INFO: "needs_info"}
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class UpdateRefused(ValueError):
    """The update does not fit the ticket's state; the message says why."""


def _wall_seconds(duration: WorkDuration) -> float:
    return duration.amount * _UNIT_SECONDS[duration.unit]


def apply_update(ticket: Ticket, update: TicketUpdate, policy: Policy, *, event_id: str,
                 now: datetime) -> Ticket:
    """The ticket after an agency's (or the citizen's) action; raises UpdateRefused when the
    action does not fit the ticket's state."""
    status = ticket["status"]
    action = update.action
    if action not in ALLOWED.get(status, set()):
        raise UpdateRefused(f"ticket {ticket['_id']} is {status}: {action.value} not allowed")
    changed = copy.deepcopy(ticket)
    pauses = pause_intervals(changed["pauses"])
    if action is A.RESPONDED:
        _respond(changed, policy, now, pauses)
    elif action is A.RESOLVED:
        _resolve(changed, policy, now, pauses)
    elif action is A.REJECTED:
        _reject(changed, update, policy, now, pauses)
    elif action is A.NEEDS_INFO:
        _pause(changed, policy, now)
    elif action is A.CITIZEN_REPLIED:
        _resume(changed, policy, now)
    elif action is A.PICKED_UP:  # who works on it now; a colleague may take it over
        changed["assignee"] = update.actor
    elif action is A.REPRIORITISED:
        assert update.priority is not None
        _reprioritise(changed, policy, update.priority.value)
    _set_status(changed, STATUS_AFTER.get(action))
    changed["history"].append(history_entry(
        now, action.value, changed["agency"], actor=update.actor, note=update.note,
        reason=update.reason, suggested_agency=update.suggested_agency,
        priority=update.priority.value if update.priority else None, event_id=event_id))
    changed["applied_events"].append(event_id)
    return refresh(changed, policy, now)


def _set_status(ticket: Ticket, status: str | None) -> None:
    """A ticket waiting for the citizen stays needs_info until the reply, whatever the agency
    does meanwhile; the status it returns to is kept with the pause."""
    if status is None:
        return
    pause = open_pause(ticket)
    if pause is None or status in ("resolved", "rejected", "needs_info"):
        ticket["status"] = status
    else:
        pause["status_before"] = status


def _respond(ticket: Ticket, policy: Policy, now: datetime, pauses: list[Pause]) -> None:
    if ticket["first_response_at"] is None:
        ticket["first_response_at"] = now
    stop_clock(ticket["citizen_clocks"]["response"], policy, now, pauses)
    stop_clock(ticket["clocks"]["response"], policy, now, pauses)
    target = target_of(ticket, policy)
    if target.update is None:
        return
    previous = ticket["clocks"]["update"]
    if previous is not None:  # a reply in time or late: the cycle it ends is judged
        stop_clock(previous, policy, now, pauses)
    ticket["clocks"]["update"] = start_clock(policy, target.calendar, now, target.update)
    carry = carry_steps(ticket, reset_slots=frozenset({"update"}))
    others = [s for s in ticket["ladder"] if s["clock"] != "update"]
    ticket["ladder"] = [*others, *steps_for(policy, ticket["clocks"], ("update",), carry)]


def _resolve(ticket: Ticket, policy: Policy, now: datetime, pauses: list[Pause]) -> None:
    pause = open_pause(ticket)
    if pause is not None:
        _end_pause(ticket, pause, policy, now)
        pauses = pause_intervals(ticket["pauses"])
    if ticket["first_response_at"] is None:  # the resolution is itself a reply the citizen sees
        ticket["first_response_at"] = now
    ticket["resolved_at"] = now
    for clock in [*ticket["citizen_clocks"].values(), *ticket["clocks"].values()]:
        stop_clock(clock, policy, now, pauses)
    ticket["assignments"][-1]["ended_at"] = now


def _reject(ticket: Ticket, update: TicketUpdate, policy: Policy, now: datetime,
            pauses: list[Pause]) -> None:
    ticket["assignments"][-1].update(ended_at=now, outcome="rejected", reason=update.reason)
    ticket["assignee"] = None  # the agency gave it back: nobody there works on it any more
    if ticket["agency"] not in ticket["rejected_by"]:
        ticket["rejected_by"].append(ticket["agency"])
    for name in AGENCY_CLOCKS:  # the assignment ended: its clocks are not judged
        stop_clock(ticket["clocks"][name], policy, now, pauses, judge=False)
    if policy.routing is not None:  # now the triage desk and the router owe a new agency
        routing = start_clock(policy, policy.routing.calendar, now, policy.routing.within)
        ticket["clocks"][ROUTING] = routing
        others = [s for s in ticket["ladder"] if s["clock"] != ROUTING]
        ticket["ladder"] = [*others, *build_steps(policy.levels(ROUTING), routing, policy, {})]


def _pause(ticket: Ticket, policy: Policy, now: datetime) -> None:
    limit = policy.pauses.max_per_ticket
    if len(ticket["pauses"]) >= limit:
        raise UpdateRefused(f"ticket {ticket['_id']}: needs_info refused, the clock was already "
                            f"paused {len(ticket['pauses'])} times (policy pauses.max_per_ticket "
                            f"is {limit})")
    last_reply = max((p["ended_at"] for p in ticket["pauses"]), default=None)
    window = timedelta(seconds=_wall_seconds(policy.pauses.quick_repause_within))
    ticket["pauses"].append({
        "started_at": now, "ended_at": None, "working_seconds": None,
        "quick_repause": last_reply is not None and now - last_reply <= window,
        "status_before": ticket["status"], "agency": ticket["agency"],
    })


def _resume(ticket: Ticket, policy: Policy, now: datetime) -> None:
    pause = open_pause(ticket)
    if pause is None:
        raise UpdateRefused(f"ticket {ticket['_id']}: citizen_replied, but no needs_info is open")
    _end_pause(ticket, pause, policy, now)
    if ticket["status"] == "needs_info":
        ticket["status"] = pause["status_before"]


def _end_pause(ticket: Ticket, pause: dict[str, Any], policy: Policy, now: datetime) -> None:
    calendar = policy.calendar(ticket["citizen_clocks"]["response"]["calendar"])
    pause["ended_at"] = now
    pause["working_seconds"] = calendar.elapsed(pause["started_at"], now)


def _reprioritise(ticket: Ticket, policy: Policy, priority: str) -> None:
    """New targets by the policy for the new priority; starts, pauses and notices already
    sent are kept."""
    ticket["priority"] = priority
    target = target_of(ticket, policy)
    ticket["sla"] = {"target": target.name, "calendar": target.calendar}
    retarget_citizen(ticket, policy, target)
    clocks = ticket["clocks"]
    for name in AGENCY_CLOCKS:
        duration = getattr(target, name)
        if clocks[name] is not None and duration is not None:
            clocks[name] = retarget(clocks[name], policy, target.calendar, duration)
    kept = [s for s in ticket["ladder"] if s["clock"] in ("ceiling", ROUTING)]
    ticket["ladder"] = [*steps_for(policy, clocks, AGENCY_CLOCKS, carry_steps(ticket)), *kept]
