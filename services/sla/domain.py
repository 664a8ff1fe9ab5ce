"""SLA decisions on plain ticket documents (dicts as stored); no Kafka, no MongoDB.

Two clocks per target. The citizen's clock (``citizen_clocks``) runs from submission and is
never reset. The agency's clock (``clocks``: response, update, resolution) runs from the
assignment to the current agency and restarts on re-routing; the escalation ladder watches
it, the legal ceiling (``clocks.ceiling``, from submission) and, while a rejected ticket waits
for a new agency, ``clocks.routing`` (the triage desk's). Only ``responded`` (a reply
the citizen sees) or ``resolved`` stops a response clock. ``needs_info`` pauses every clock
until ``citizen_replied``; pauses live on the ticket, so they survive re-targeting.
"""

import copy
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from services.sla.clocks import (
    Pause,
    closed_at,
    instant_at,
    pause_intervals,
    span_seconds,
    working_elapsed,
)
from services.sla.ladder import (
    ROUTING,
    Notice,
    Step,
    advance,
    build_steps,
    clock_pauses,
    due_notices,
    schedule,
)
from services.sla.policy import Policy, Target, WorkDuration
from shared.contracts import (
    RerouteRequest,
    RoutingExplanation,
    TicketRouted,
    TicketUpdate,
    UpdateAction,
)

Ticket = dict[str, Any]
A = UpdateAction
AGENCY_CLOCKS = ("response", "update", "resolution")
_OPEN_ACTIONS = {A.RESPONDED, A.RESOLVED, A.NOTE, A.REPRIORITISED}

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


# --- clocks --------------------------------------------------------------------------------

def _clock(policy: Policy, calendar: str, start: datetime, duration: WorkDuration) -> dict[str, Any]:
    target = span_seconds(policy.calendar(calendar), start, duration)
    return {"started_at": start, "calendar": calendar, "target_seconds": target, "due_at": None,
            "stopped_at": None, "working_seconds": None, "met": None}


def _retarget(clock: dict[str, Any], policy: Policy, calendar: str,
              duration: WorkDuration) -> dict[str, Any]:
    """The new target and calendar from the same start, so every pause still counts; a
    stopped clock keeps its verdict."""
    if clock["stopped_at"] is not None:
        return clock
    return _clock(policy, calendar, clock["started_at"], duration)


def _stop(clock: dict[str, Any] | None, policy: Policy, now: datetime, pauses: list[Pause], *,
          judge: bool = True) -> None:
    if clock is None or clock["stopped_at"] is not None:
        return
    calendar = policy.calendar(clock["calendar"])
    clock["stopped_at"] = now
    clock["due_at"] = instant_at(calendar, clock["started_at"], clock["target_seconds"],
                                 closed_at(pauses, now))  # frozen from here on
    clock["working_seconds"] = working_elapsed(calendar, clock["started_at"], now, pauses)
    if judge:
        clock["met"] = clock["working_seconds"] <= clock["target_seconds"]


def _target(ticket: Mapping[str, Any], policy: Policy) -> Target:
    return policy.target_for({k: ticket.get(k) for k in ("agency", "priority", "channel", "category")})


def _agency_clocks(policy: Policy, target: Target, assigned_at: datetime) -> dict[str, Any]:
    return {"response": _clock(policy, target.calendar, assigned_at, target.response),
            "update": None,  # starts with the first reply, restarts with each
            "resolution": _clock(policy, target.calendar, assigned_at, target.resolution)}


def _steps_for(policy: Policy, clocks: Mapping[str, Any], names: tuple[str, ...],
               carry: Mapping[tuple[str, int], Step]) -> list[Step]:
    steps: list[Step] = []
    for name in names:
        if clocks.get(name) is not None:
            steps += build_steps(policy.levels(name), clocks[name], policy, carry)
    return steps


def _carry(ticket: Ticket, *, reset_slots: frozenset[str] = frozenset()) -> dict[tuple[str, int], Step]:
    return {(s["clock"], s["level"]): {**s, "slot": 0 if s["clock"] in reset_slots else s["slot"]}
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
    return ticket


# --- new tickets and re-routing ---------------------------------------------------------------

def _routed_fields(routed: TicketRouted) -> dict[str, Any]:
    return {"agency": routed.agency, "agency_name": routed.agency_name,
            "authority": routed.authority, "priority": routed.priority.value,
            "channel": routed.channel.value, "category": routed.category,
            "routing": routed.routing.model_dump(mode="json"), "assignment": routed.assignment}


def _history(now: datetime, action: str, agency: str, *, actor: str | None = None,
             note: str | None = None, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    entry = {"at": now, "action": action, "actor": actor, "agency": agency, "note": note,
             "reason": reason}
    return {**entry, **{k: v for k, v in extra.items() if v is not None}}


def new_ticket(ticket_id: str, routed: TicketRouted, policy: Policy, *, assigned_at: datetime,
               now: datetime) -> Ticket:
    """A ticket with its clocks, deadlines and escalation ladder, as first stored."""
    fields = _routed_fields(routed)
    target = _target(fields, policy)
    start = routed.submitted_at
    clocks = {**_agency_clocks(policy, target, assigned_at),
              "ceiling": _clock(policy, policy.ceiling.calendar, start, policy.ceiling.after)}
    ticket: Ticket = {
        "_id": ticket_id, "status": "assigned", **fields,
        "title": routed.title, "text": routed.text,
        "location": routed.location.model_dump() if routed.location else None,
        "anonymous": routed.anonymous, "confidential": routed.confidential,
        "attachments": list(routed.attachments),
        "submitted_at": start, "assigned_at": assigned_at, "created_at": now,
        "first_response_at": None, "resolved_at": None,
        "sla": {"target": target.name, "calendar": target.calendar},
        "citizen_clocks": {"response": _clock(policy, target.calendar, start, target.response),
                           "resolution": _clock(policy, target.calendar, start, target.resolution)},
        "clocks": clocks,
        "ladder": _steps_for(policy, clocks, ("response", "resolution", "ceiling"), {}),
        "assignments": [{"agency": routed.agency, "assignment": routed.assignment,
                         "assigned_at": assigned_at, "ended_at": None, "outcome": None,
                         "reason": None}],
        "rejected_by": list(routed.rejected_by), "pauses": [],
        "history": [_history(now, "assigned", routed.agency, actor=routed.assigned_by or "router",
                             note=routed.routing.reason)],
        "applied_events": [], "version": 1,
    }
    return refresh(ticket, policy, now)


def reassign(ticket: Ticket, routed: TicketRouted, policy: Policy, *, assigned_at: datetime,
             now: datetime) -> Ticket | None:
    """The ticket handed to the agency of a newer routing decision; None when the decision is
    not newer (a duplicate) or the ticket is already resolved."""
    if routed.assignment <= ticket["assignment"] or ticket["status"] == "resolved":
        return None
    changed = copy.deepcopy(ticket)
    pauses = pause_intervals(changed["pauses"])
    previous = changed["assignments"][-1]
    if previous["ended_at"] is None:
        previous.update(ended_at=assigned_at, outcome="manual" if routed.assigned_by else "rerouted")
        for name in AGENCY_CLOCKS:
            _stop(changed["clocks"][name], policy, assigned_at, pauses, judge=False)
    _stop(changed["clocks"].get(ROUTING), policy, assigned_at, [])  # met: re-routed in time
    changed.update(_routed_fields(routed))
    changed["assigned_at"] = assigned_at
    changed["rejected_by"] = sorted(set(changed["rejected_by"]) | set(routed.rejected_by))
    changed["assignments"].append({"agency": routed.agency, "assignment": routed.assignment,
                                   "assigned_at": assigned_at, "ended_at": None, "outcome": None,
                                   "reason": None})
    target = _target(changed, policy)
    changed["sla"] = {"target": target.name, "calendar": target.calendar}
    _retarget_citizen(changed, policy, target)
    changed["clocks"].update(_agency_clocks(policy, target, assigned_at))
    ceiling = [s for s in changed["ladder"] if s["clock"] == "ceiling"]
    changed["ladder"] = [*_steps_for(policy, changed["clocks"], ("response", "resolution"), {}), *ceiling]
    pause = _open_pause(changed)
    if pause is not None:  # still waiting for the citizen: the new agency's clocks wait too
        pause["status_before"] = "assigned"
    changed["status"] = "needs_info" if pause is not None else "assigned"
    changed["history"].append(_history(
        now, "rerouted", routed.agency, actor=routed.assigned_by or "router",
        note=routed.routing.reason, previous_agency=routed.previous_agency or previous["agency"],
        assignment=routed.assignment))
    return refresh(changed, policy, now)


def _retarget_citizen(ticket: Ticket, policy: Policy, target: Target) -> None:
    citizen = ticket["citizen_clocks"]
    citizen["response"] = _retarget(citizen["response"], policy, target.calendar, target.response)
    citizen["resolution"] = _retarget(citizen["resolution"], policy, target.calendar,
                                      target.resolution)


# --- agencies' updates ---------------------------------------------------------------------

def _open_pause(ticket: Ticket) -> dict[str, Any] | None:
    return next((p for p in ticket["pauses"] if p["ended_at"] is None), None)


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
    elif action is A.REPRIORITISED:
        assert update.priority is not None
        _reprioritise(changed, policy, update.priority.value)
    _set_status(changed, STATUS_AFTER.get(action))
    changed["history"].append(_history(
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
    pause = _open_pause(ticket)
    if pause is None or status in ("resolved", "rejected", "needs_info"):
        ticket["status"] = status
    else:
        pause["status_before"] = status


def _respond(ticket: Ticket, policy: Policy, now: datetime, pauses: list[Pause]) -> None:
    if ticket["first_response_at"] is None:
        ticket["first_response_at"] = now
    _stop(ticket["citizen_clocks"]["response"], policy, now, pauses)
    _stop(ticket["clocks"]["response"], policy, now, pauses)
    target = _target(ticket, policy)
    if target.update is None:
        return
    previous = ticket["clocks"]["update"]
    if previous is not None:  # a reply in time or late: the cycle it ends is judged
        _stop(previous, policy, now, pauses)
    ticket["clocks"]["update"] = _clock(policy, target.calendar, now, target.update)
    carry = _carry(ticket, reset_slots=frozenset({"update"}))
    others = [s for s in ticket["ladder"] if s["clock"] != "update"]
    ticket["ladder"] = [*others, *_steps_for(policy, ticket["clocks"], ("update",), carry)]


def _resolve(ticket: Ticket, policy: Policy, now: datetime, pauses: list[Pause]) -> None:
    pause = _open_pause(ticket)
    if pause is not None:
        _end_pause(ticket, pause, policy, now)
        pauses = pause_intervals(ticket["pauses"])
    if ticket["first_response_at"] is None:  # the resolution is itself a reply the citizen sees
        ticket["first_response_at"] = now
    ticket["resolved_at"] = now
    for clock in [*ticket["citizen_clocks"].values(), *ticket["clocks"].values()]:
        _stop(clock, policy, now, pauses)
    ticket["assignments"][-1]["ended_at"] = now


def _reject(ticket: Ticket, update: TicketUpdate, policy: Policy, now: datetime,
            pauses: list[Pause]) -> None:
    ticket["assignments"][-1].update(ended_at=now, outcome="rejected", reason=update.reason)
    if ticket["agency"] not in ticket["rejected_by"]:
        ticket["rejected_by"].append(ticket["agency"])
    for name in AGENCY_CLOCKS:  # the assignment ended: its clocks are not judged
        _stop(ticket["clocks"][name], policy, now, pauses, judge=False)
    if policy.routing is not None:  # now the triage desk and the router owe a new agency
        routing = _clock(policy, policy.routing.calendar, now, policy.routing.within)
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
    pause = _open_pause(ticket)
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
    target = _target(ticket, policy)
    ticket["sla"] = {"target": target.name, "calendar": target.calendar}
    _retarget_citizen(ticket, policy, target)
    clocks = ticket["clocks"]
    for name in AGENCY_CLOCKS:
        duration = getattr(target, name)
        if clocks[name] is not None and duration is not None:
            clocks[name] = _retarget(clocks[name], policy, target.calendar, duration)
    kept = [s for s in ticket["ladder"] if s["clock"] in ("ceiling", ROUTING)]
    ticket["ladder"] = [*_steps_for(policy, clocks, AGENCY_CLOCKS, _carry(ticket)), *kept]


# --- escalations ---------------------------------------------------------------------------

def escalations_due(ticket: Ticket, policy: Policy, now: datetime, *, late_after_seconds: float,
                    supervisors: Callable[[str], Mapping[str, str]],
                    routing_desk: str = "TRIAGE") -> list[Notice]:
    """The notices due now, by the ladder's stored schedule; ``supervisors`` gives an agency's
    role holders, ``routing_desk`` is who re-routes a rejected ticket."""
    return due_notices(ticket, policy, now, late_after_seconds=late_after_seconds,
                       supervisors=supervisors, routing_desk=routing_desk,
                       pauses=pause_intervals(ticket["pauses"]))


def mark_fired(ticket: Ticket, notices: list[Notice], policy: Policy, now: datetime) -> Ticket:
    """The ticket after these notices were stored: each step moves to its next notice."""
    changed = copy.deepcopy(ticket)
    pauses = pause_intervals(changed["pauses"])
    for notice in notices:
        step = changed["ladder"][notice.index]
        advance(step, changed["clocks"][step["clock"]], policy, now, pauses)
    return refresh(changed, policy, now)


# --- re-routing requests -------------------------------------------------------------------

def as_routed(ticket: Ticket) -> TicketRouted:
    """The ticket as the router sees it (no reporter: the SLA never stores one)."""
    previous = [a["agency"] for a in ticket["assignments"][:-1]]
    return TicketRouted(
        agency=ticket["agency"], agency_name=ticket["agency_name"], authority=ticket["authority"],
        priority=ticket["priority"], category=ticket["category"],
        routing=RoutingExplanation.model_validate(ticket["routing"]), channel=ticket["channel"],
        title=ticket["title"], text=ticket["text"], location=ticket["location"],
        anonymous=ticket["anonymous"], confidential=ticket["confidential"],
        submitted_at=ticket["submitted_at"], attachments=ticket.get("attachments", []),
        assignment=ticket["assignment"], previous_agency=previous[-1] if previous else None,
        rejected_by=ticket["rejected_by"])


def rejection_request(ticket: Ticket, update: TicketUpdate) -> RerouteRequest:
    assert update.reason is not None
    return RerouteRequest(ticket=as_routed(ticket), cause="rejected", actor=update.actor,
                          reason=update.reason, suggested_agency=update.suggested_agency)


def manual_request(ticket: Ticket, *, agency: str, actor: str, reason: str) -> RerouteRequest:
    if ticket["status"] == "resolved":
        raise UpdateRefused(f"ticket {ticket['_id']} is resolved: it cannot be routed again")
    return RerouteRequest(ticket=as_routed(ticket), cause="manual", actor=actor, reason=reason,
                          agency=agency)
