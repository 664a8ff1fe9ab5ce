"""SLA decisions: deadlines, the escalation ladder, what an agency's update does to a ticket.

Pure functions over plain ticket documents (dicts as stored); no Kafka, no MongoDB.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.sla.policy import Policy
from shared.contracts import Escalation, Recipient, TicketRouted, TicketUpdate, UpdateAction

Ticket = dict[str, Any]
CLOCKS = ("response", "resolution")
TERMINAL = {"resolved"}

# Which actions each status accepts. A rejected ticket waits for re-routing.
ALLOWED: dict[str, set[UpdateAction]] = {
    "assigned": set(UpdateAction) - {UpdateAction.CITIZEN_REPLIED, UpdateAction.NOTE,
                                     UpdateAction.REPRIORITISED},
    "acknowledged": set(UpdateAction) - {UpdateAction.ACKNOWLEDGED, UpdateAction.CITIZEN_REPLIED,
                                         UpdateAction.NOTE, UpdateAction.REPRIORITISED},
    "needs_info": {UpdateAction.RESPONDED, UpdateAction.RESOLVED, UpdateAction.REJECTED},
    "responded": {UpdateAction.RESPONDED, UpdateAction.RESOLVED, UpdateAction.NEEDS_INFO},
    "rejected": set(),
    "resolved": set(),
}
STATUS_AFTER = {
    UpdateAction.ACKNOWLEDGED: "acknowledged", UpdateAction.RESPONDED: "responded",
    UpdateAction.RESOLVED: "resolved", UpdateAction.REJECTED: "rejected",
    UpdateAction.NEEDS_INFO: "needs_info",
}


class UpdateRefused(ValueError):
    """The update does not fit the ticket's state; the message says why."""


def new_ticket(ticket_id: str, routed: TicketRouted, policy: Policy, *, now: datetime) -> Ticket:
    """A ticket with its clocks, deadlines and escalation ladder, as first stored."""
    fields = {"agency": routed.agency, "priority": routed.priority.value,
              "channel": routed.channel.value, "category": routed.category}
    target = policy.target_for(fields)
    calendar = policy.calendar(target.calendar)
    start = routed.submitted_at
    clocks: dict[str, dict[str, Any]] = {
        "response": {"started_at": start, "target_seconds": target.response,
                     "due_at": calendar.add(start, target.response), "stopped_at": None},
        "resolution": {"started_at": start, "target_seconds": target.resolution,
                       "due_at": calendar.add(start, target.resolution), "stopped_at": None},
    }
    ladder = [
        {"clock": lvl.clock, "level": lvl.level, "at": lvl.at, "notify": lvl.notify,
         "trigger_at": calendar.add(start, lvl.at * clocks[lvl.clock]["target_seconds"]),
         "fired_at": None}
        for lvl in policy.escalation
    ]
    ticket: Ticket = {
        "_id": ticket_id, "status": "assigned", **fields,
        "agency_name": routed.agency_name, "authority": routed.authority,
        "routing": routed.routing.model_dump(mode="json"), "title": routed.title,
        "text": routed.text, "location": routed.location.model_dump() if routed.location else None,
        "anonymous": routed.anonymous, "confidential": routed.confidential,
        "submitted_at": routed.submitted_at, "assigned_at": now, "created_at": now,
        "sla": {"target": target.name, "calendar": target.calendar},
        "clocks": clocks, "ladder": ladder,
        "deadlines": {
            "response_due": clocks["response"]["due_at"],
            "resolution_due": clocks["resolution"]["due_at"],
            "legal_ceiling": start + timedelta(days=policy.legal_ceiling_days),
        },
        "history": [{"at": now, "action": "assigned", "actor": "router",
                     "note": routed.routing.reason, "agency": routed.agency}],
        "applied_events": [], "version": 1,
    }
    ticket["next_check_at"] = next_check_at(ticket)
    return ticket


def _running(ticket: Ticket, clock: str) -> bool:
    return ticket["status"] not in TERMINAL and ticket["clocks"][clock]["stopped_at"] is None


def next_check_at(ticket: Ticket) -> datetime | None:
    """When the scheduler must look at this ticket next: its earliest unfired trigger."""
    pending = [step["trigger_at"] for step in ticket["ladder"]
               if step["fired_at"] is None and _running(ticket, step["clock"])]
    return min(pending, default=None)


@dataclass(frozen=True)
class Due:
    index: int
    escalation: Escalation


def claim_id(ticket: Ticket, due: Due) -> str:
    """One id per (ticket, assignment, clock, level): replicas that both see the step due
    both try to store this id, and the store's unique key lets exactly one succeed."""
    e = due.escalation
    return f"{ticket['_id']}:a{ticket.get('assignment', 1)}:{e.clock}:{e.level}"


def due_escalations(ticket: Ticket, now: datetime, *, late_after_seconds: float) -> list[Due]:
    """Ladder steps whose trigger has passed on a running clock and that have not fired."""
    due = []
    for index, step in enumerate(ticket["ladder"]):
        if step["fired_at"] is not None or not _running(ticket, step["clock"]):
            continue
        if step["trigger_at"] > now:
            continue
        late = (now - step["trigger_at"]).total_seconds() > late_after_seconds
        due.append(Due(index, Escalation(
            agency=ticket["agency"], level=step["level"], clock=step["clock"],
            trigger=f"{step['at']:.0%} of {step['clock']} target",
            due_at=ticket["clocks"][step["clock"]]["due_at"], triggered_at=step["trigger_at"],
            fired_at=now, late=late, recipients=[Recipient(role=r) for r in step["notify"]],
        )))
    return due


def mark_fired(ticket: Ticket, due: list[Due], now: datetime) -> Ticket:
    ladder = [dict(step) for step in ticket["ladder"]]
    for item in due:
        ladder[item.index]["fired_at"] = now
    changed = {**ticket, "ladder": ladder}
    changed["next_check_at"] = next_check_at(changed)
    return changed


def apply_update(ticket: Ticket, update: TicketUpdate, *, event_id: str, now: datetime) -> Ticket:
    """The ticket after an agency's action; raises UpdateRefused when the action does not fit."""
    status = ticket["status"]
    if update.action not in ALLOWED.get(status, set()):
        raise UpdateRefused(f"ticket {ticket['_id']} is {status}: {update.action.value} not allowed")
    clocks = {name: dict(clock) for name, clock in ticket["clocks"].items()}
    if update.action in (UpdateAction.RESPONDED, UpdateAction.RESOLVED):
        _stop(clocks["response"], now)  # acknowledging is not responding: only this stops it
    if update.action is UpdateAction.RESOLVED:
        _stop(clocks["resolution"], now)
    entry = {"at": now, "action": update.action.value, "actor": update.actor,
             "note": update.note, "reason": update.reason,
             "suggested_agency": update.suggested_agency, "event_id": event_id}
    changed = {**ticket, "status": STATUS_AFTER[update.action], "clocks": clocks,
               "history": [*ticket["history"], {k: v for k, v in entry.items() if v is not None}],
               "applied_events": [*ticket["applied_events"], event_id]}
    changed["next_check_at"] = next_check_at(changed)
    return changed


def _stop(clock: dict[str, Any], now: datetime) -> None:
    if clock["stopped_at"] is None:
        clock["stopped_at"] = now
        clock["met"] = now <= clock["due_at"]
