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
from datetime import datetime
from typing import Any

from services.sla.clocks import pause_intervals
from services.sla.ladder import ROUTING, Notice, advance, due_notices
from services.sla.policy import Policy
from services.sla.timing import (
    AGENCY_CLOCKS,
    Ticket,
    agency_clocks,
    history_entry,
    open_pause,
    refresh,
    retarget_citizen,
    start_clock,
    steps_for,
    stop_clock,
    target_of,
)
from services.sla.updates import ALLOWED, UpdateRefused, apply_update
from shared.contracts import RerouteRequest, RoutingExplanation, TicketRouted, TicketUpdate

__all__ = ["ALLOWED", "Ticket", "UpdateRefused", "apply_update", "as_routed", "escalations_due",
           "manual_request", "mark_fired", "new_ticket", "reassign", "rejection_request"]


# --- new tickets and re-routing ---------------------------------------------------------------

def _routed_fields(routed: TicketRouted) -> dict[str, Any]:
    return {"agency": routed.agency, "agency_name": routed.agency_name,
            "authority": routed.authority, "priority": routed.priority.value,
            "channel": routed.channel.value, "category": routed.category,
            "routing": routed.routing.model_dump(mode="json"), "assignment": routed.assignment}


def new_ticket(ticket_id: str, routed: TicketRouted, policy: Policy, *, assigned_at: datetime,
               now: datetime) -> Ticket:
    """A ticket with its clocks, deadlines and escalation ladder, as first stored."""
    fields = _routed_fields(routed)
    target = target_of(fields, policy)
    start = routed.submitted_at
    clocks = {**agency_clocks(policy, target, assigned_at),
              "ceiling": start_clock(policy, policy.ceiling.calendar, start, policy.ceiling.after)}
    ticket: Ticket = {
        "_id": ticket_id, "status": "assigned", **fields,
        "title": routed.title, "text": routed.text,
        "location": routed.location.model_dump() if routed.location else None,
        "anonymous": routed.anonymous, "confidential": routed.confidential,
        "attachments": list(routed.attachments),
        # Kept so a re-routed ticket reaches its next agency with a way to answer the citizen;
        # the router never sends one for an anonymous or confidential complaint.
        "reporter": routed.reporter.model_dump(mode="json") if routed.reporter else None,
        "submitted_at": start, "assigned_at": assigned_at, "created_at": now,
        "first_response_at": None, "resolved_at": None,
        "sla": {"target": target.name, "calendar": target.calendar},
        "citizen_clocks": {"response": start_clock(policy, target.calendar, start, target.response),
                           "resolution": start_clock(policy, target.calendar, start, target.resolution)},
        "clocks": clocks,
        "ladder": steps_for(policy, clocks, ("response", "resolution", "ceiling"), {}),
        "assignments": [{"agency": routed.agency, "assignment": routed.assignment,
                         "assigned_at": assigned_at, "ended_at": None, "outcome": None,
                         "reason": None}],
        "rejected_by": list(routed.rejected_by), "pauses": [],
        "history": [history_entry(now, "assigned", routed.agency,
                                  actor=routed.assigned_by or "router", note=routed.routing.reason)],
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
            stop_clock(changed["clocks"][name], policy, assigned_at, pauses, judge=False)
    stop_clock(changed["clocks"].get(ROUTING), policy, assigned_at, [])  # met: re-routed in time
    changed.update(_routed_fields(routed))
    changed["assigned_at"] = assigned_at
    changed["assignee"] = None  # a new agency: none of its officers has picked it up yet
    changed["rejected_by"] = sorted(set(changed["rejected_by"]) | set(routed.rejected_by))
    changed["assignments"].append({"agency": routed.agency, "assignment": routed.assignment,
                                   "assigned_at": assigned_at, "ended_at": None, "outcome": None,
                                   "reason": None})
    target = target_of(changed, policy)
    changed["sla"] = {"target": target.name, "calendar": target.calendar}
    retarget_citizen(changed, policy, target)
    changed["clocks"].update(agency_clocks(policy, target, assigned_at))
    ceiling = [s for s in changed["ladder"] if s["clock"] == "ceiling"]
    changed["ladder"] = [*steps_for(policy, changed["clocks"], ("response", "resolution"), {}), *ceiling]
    pause = open_pause(changed)
    if pause is not None:  # still waiting for the citizen: the new agency's clocks wait too
        pause["status_before"] = "assigned"
    changed["status"] = "needs_info" if pause is not None else "assigned"
    changed["history"].append(history_entry(
        now, "rerouted", routed.agency, actor=routed.assigned_by or "router",
        note=routed.routing.reason, previous_agency=routed.previous_agency or previous["agency"],
        assignment=routed.assignment))
    return refresh(changed, policy, now)


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
    """The ticket as the router sees it, reporter included unless the complaint hides it."""
    previous = [a["agency"] for a in ticket["assignments"][:-1]]
    return TicketRouted(
        agency=ticket["agency"], agency_name=ticket["agency_name"], authority=ticket["authority"],
        priority=ticket["priority"], category=ticket["category"],
        routing=RoutingExplanation.model_validate(ticket["routing"]), channel=ticket["channel"],
        title=ticket["title"], text=ticket["text"], location=ticket["location"],
        anonymous=ticket["anonymous"], confidential=ticket["confidential"],
        submitted_at=ticket["submitted_at"], attachments=ticket.get("attachments", []),
        reporter=ticket.get("reporter"), assignment=ticket["assignment"],
        previous_agency=previous[-1] if previous else None, rejected_by=ticket["rejected_by"])


def rejection_request(ticket: Ticket, update: TicketUpdate) -> RerouteRequest:
    assert update.reason is not None
    return RerouteRequest(ticket=as_routed(ticket), cause="rejected", actor=update.actor,
                          reason=update.reason, suggested_agency=update.suggested_agency)


def manual_request(ticket: Ticket, *, agency: str, actor: str, reason: str) -> RerouteRequest:
    if ticket["status"] == "resolved":
        raise UpdateRefused(f"ticket {ticket['_id']} is resolved: it cannot be routed again")
    return RerouteRequest(ticket=as_routed(ticket), cause="manual", actor=actor, reason=reason,
                          agency=agency)
