"""The audit records of the SLA's state changes, built from plain ticket documents and events.
Pure: the flows append them. Only ids and state fields go in, never the complaint's text or
the reporter."""

from typing import Any

from services.sla.ladder import Notice
from services.sla.timing import Ticket, open_pause
from shared.audit import Actor, AuditAction, AuditRecord, update_action
from shared.contracts import Envelope, TicketRouted, TicketUpdate, UpdateAction

ROUTER = Actor.service("router")
SCHEDULER = Actor.system("sla-scheduler")
# What a change of a ticket is described by: the fields an auditor compares before and after.
STATE_FIELDS = ("status", "agency", "assignment", "priority", "category", "rejected_by",
                "assignee")


def ticket_state(ticket: Ticket) -> dict[str, Any]:
    state = {name: ticket.get(name) for name in STATE_FIELDS}
    state["rejected_by"] = list(ticket.get("rejected_by") or [])
    state["paused"] = open_pause(ticket) is not None
    state["pauses"] = len(ticket.get("pauses") or [])
    return state


def changed_fields(before: Ticket, after: Ticket) -> tuple[dict[str, Any], dict[str, Any]]:
    """The state fields that differ, as they were and as they became."""
    old, new = ticket_state(before), ticket_state(after)
    names = [name for name in new if old.get(name) != new[name]]
    return {n: old.get(n) for n in names}, {n: new[n] for n in names}


def update_actor(update: TicketUpdate) -> Actor:
    """Who an update read from Kafka says acted (HTTP updates carry the signed-in caller):
    the citizen for their own reply."""
    if update.action is UpdateAction.CITIZEN_REPLIED and update.actor is None:
        return Actor.citizen()
    return Actor.claimed(update.actor)


def update_note(before: Ticket, after: Ticket, actor: Actor, request_id: str | None) -> dict[str, Any]:
    """Kept in the update's history entry, so the audit record can be rebuilt from the stored
    ticket if the append after the ticket's write is lost (the redelivered event finds the
    update applied and appends from here)."""
    old, new = changed_fields(before, after)
    return {"actor": actor.model_dump(), "before": old, "after": new, "request_id": request_id}


def update_record(tenant: str, ticket: Ticket, event_id: str) -> AuditRecord | None:
    """The record of the update ``event_id`` from the ticket's history; None for an update
    stored before the audit trail existed."""
    entry = next((h for h in reversed(ticket["history"]) if h.get("event_id") == event_id), None)
    if entry is None or "audit" not in entry:
        return None
    note = entry["audit"]
    return AuditRecord(
        tenant=tenant, key=f"update:{event_id}", action=update_action(UpdateAction(entry["action"])),
        actor=Actor.model_validate(note["actor"]), ticket_id=ticket["_id"], before=note["before"],
        after=note["after"], request_id=note.get("request_id"), time=entry["at"])


def routing_record(tenant: str, event: Envelope[TicketRouted]) -> AuditRecord:
    """A routing decision taking effect: the first (``routing``), a re-routing after a
    rejection (``routing``) or the triage desk's hand assignment carried out (``assignment``),
    each by the router.
    Built from the event alone, so a redelivery builds the same record."""
    routed = event.data
    manual = routed.assigned_by is not None
    # The router carries out a hand assignment; who chose it was authenticated when asking
    # and is audited there (``manual_assignment``): the event only names them as text.
    assigned_by = {"assigned_by": routed.assigned_by} if manual else {}
    before = None
    if routed.assignment > 1:
        before = {"agency": routed.previous_agency, "assignment": routed.assignment - 1}
    return AuditRecord(
        tenant=tenant, key=f"routed:{event.id}",
        action=AuditAction.ASSIGNMENT if manual else AuditAction.ROUTING,
        actor=ROUTER, ticket_id=str(event.ticket_id), before=before, after={
            "agency": routed.agency, "assignment": routed.assignment,
            "priority": routed.priority.value, "category": routed.category,
            "rulebook_version": routed.routing.rulebook_version,
            "rule_ids": list(routed.routing.rule_ids), "confidence": routed.routing.confidence,
            "rejected_by": list(routed.rejected_by), **assigned_by},
        time=event.time)


def manual_request_record(tenant: str, ticket: Ticket, *, request_key: str, agency: str,
                          actor: Actor, request_id: str | None) -> AuditRecord:
    return AuditRecord(
        tenant=tenant, key=f"manual:{request_key}", action=AuditAction.MANUAL_ASSIGNMENT,
        actor=actor, ticket_id=ticket["_id"], request_id=request_id,
        before={"agency": ticket["agency"], "assignment": ticket["assignment"]},
        after={"agency": agency})


def review_record(tenant: str, ticket: Ticket, *, actor: Actor,
                  request_id: str | None) -> AuditRecord:
    """The desk accepted the rules' decision the second opinion disputed (once per assignment:
    a repeat, or a retry after a crash, is keyed the same)."""
    opinion = ticket["routing"].get("second_opinion") or {}
    return AuditRecord(
        tenant=tenant, key=f"review:{ticket['_id']}:a{ticket['assignment']}",
        action=AuditAction.REVIEW_ACCEPTED, actor=actor, ticket_id=ticket["_id"],
        request_id=request_id, before={"model_agency": opinion.get("agency")},
        after={"agency": ticket["agency"], "assignment": ticket["assignment"]})


def escalation_record(tenant: str, ticket: Ticket, notice: Notice) -> AuditRecord:
    escalation = notice.escalation
    return AuditRecord(
        tenant=tenant, key=f"escalation:{notice.id}", action=AuditAction.ESCALATION,
        actor=SCHEDULER, ticket_id=ticket["_id"], time=escalation.fired_at, after={
            "agency": escalation.agency, "assignment": escalation.assignment,
            "clock": escalation.clock, "level": escalation.level, "repeat": escalation.repeat,
            "late": escalation.late, "recipients": [r.role for r in escalation.recipients]})
