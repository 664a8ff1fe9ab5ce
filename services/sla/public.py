"""What of a ticket leaves the SLA service for the public tracking view (``ticket.changed``):
status, agency, routing, deadlines and the citizen's steps, and which of the citizen's replies
the ticket settled. Never who acted, an internal note or the reporter. Pure functions."""

from typing import Any

from services.sla.duplicates import DuplicateLink
from services.sla.timing import Ticket
from shared.contracts import (
    CHANGED_HISTORY_MAX,
    NOTES_FOR_THE_CITIZEN,
    PUBLIC_ACTIONS,
    PublicStep,
    TicketChanged,
    UpdateAction,
)

REFUSED_REPLIES = "refused_replies"  # ticket field: citizen replies refused, by event id


def public_steps(history: list[dict[str, Any]]) -> list[PublicStep]:
    steps = [PublicStep(at=entry["at"], action=entry["action"], agency=entry.get("agency"),
                        note=entry.get("note") if entry["action"] in NOTES_FOR_THE_CITIZEN else None)
             for entry in history if entry.get("action") in PUBLIC_ACTIONS]
    return steps[-CHANGED_HISTORY_MAX:]


def replies_applied(ticket: Ticket) -> list[str]:
    return [entry["event_id"] for entry in ticket["history"]
            if entry.get("action") == UpdateAction.CITIZEN_REPLIED.value and entry.get("event_id")]


def public_state(ticket: Ticket) -> TicketChanged:
    return TicketChanged(
        version=ticket["version"], status=ticket["status"], agency=ticket["agency"],
        agency_name=ticket.get("agency_name"), priority=ticket.get("priority"),
        category=ticket.get("category"), assignment=ticket.get("assignment", 1),
        routing=ticket.get("routing"), deadlines=ticket.get("deadlines") or {},
        history=public_steps(ticket["history"]), replies_applied=replies_applied(ticket),
        replies_refused=list(ticket.get(REFUSED_REPLIES, [])))


def duplicate_state(primary: TicketChanged, duplicate: DuplicateLink) -> TicketChanged:
    """What a duplicate's citizen sees: the primary's progress, linked to it by name. Not the
    primary's messages to its own citizen, nor its replies; a question the agency asked the
    first citizen shows as acknowledged, so nobody else is asked to answer it."""
    status = "acknowledged" if primary.status == UpdateAction.NEEDS_INFO.value else primary.status
    history = [step.model_copy(update={"note": None}) for step in primary.history]
    # the router's reasons and matched terms quote the first citizen's words
    routing = None if primary.routing is None else primary.routing.model_copy(
        update={"matched_terms": [], "reason": duplicate["reason"], "place": None})
    return primary.model_copy(update={
        "status": status, "history": history, "routing": routing,
        "replies_applied": [], "replies_refused": [],
        "duplicate_of": duplicate["primary"], "duplicate_reason": duplicate["reason"]})
