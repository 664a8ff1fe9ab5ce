"""Supervisors' escalations: how one is acknowledged, what the acknowledgement does to the
ticket's ladder, and how it is audited and shown. Pure: no MongoDB, no Kafka.

An escalation is one notice of a ladder step (ticket, assignment, clock, level); its
re-notifications are further notices of the same step. Acknowledging any notice of a step
acknowledges the step: it re-notifies no more. A higher level of the same clock is another
step, so it still fires when due (the ladder's point is that lateness keeps climbing)."""

import copy
from datetime import datetime
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, Field

from services.sla.policy import Policy
from services.sla.timing import Ticket, refresh
from shared.audit import Actor, AuditAction, AuditRecord
from shared.contracts import Escalation, EscalationAcknowledged
from shared.mongo import Document

AckState = Literal["open", "acknowledged"]
ACKNOWLEDGED: AckState = "acknowledged"


class AckDoc(TypedDict):
    """One acknowledgement as stored (``escalation_acks``, one per step), beside its outbox
    fields (``topic``, ``event``, ``published``...). ``finished`` is "no" until the ticket, the
    audit log and the escalations' markers all hold it (text: NX-27017 stores ``$set`` of a
    bool as 1)."""

    _id: str  # the step: ticket:aN:clock:level
    tenant: str
    escalation_id: str
    ticket_id: str
    agency: str
    assignment: int
    clock: str
    level: int
    repeat: int
    actor: dict[str, Any]
    label: str
    request_id: str | None
    acknowledged_at: datetime
    finished: Literal["no", "yes"]


def step_id(ticket_id: str, assignment: int, clock: str, level: int) -> str:
    """The ladder step an escalation is a notice of (its id without the repeat number)."""
    return f"{ticket_id}:a{assignment}:{clock}:{level}"


def step_of(escalation: Document) -> str:
    return step_id(escalation["ticket_id"], escalation["assignment"], escalation["clock"],
                   escalation["level"])


def ack_fields(escalation: Document, *, tenant: str, actor: Actor, request_id: str | None,
               now: datetime) -> AckDoc:
    """The acknowledgement of ``escalation`` (a stored ``escalations`` document) by ``actor``."""
    return AckDoc(
        _id=step_of(escalation), tenant=tenant, escalation_id=escalation["_id"],
        ticket_id=escalation["ticket_id"], agency=escalation["agency"],
        assignment=escalation["assignment"], clock=escalation["clock"], level=escalation["level"],
        repeat=escalation["repeat"], actor=actor.model_dump(), label=actor.label,
        request_id=request_id, acknowledged_at=now, finished="no")


def ack_event(ack: AckDoc) -> EscalationAcknowledged:
    return EscalationAcknowledged(
        escalation_id=ack["escalation_id"], agency=ack["agency"], assignment=ack["assignment"],
        clock=ack["clock"], level=ack["level"], repeat=ack["repeat"],
        acknowledged_by=ack["label"], acknowledged_at=ack["acknowledged_at"])


def acknowledge_step(ticket: Ticket, ack: AckDoc, policy: Policy, now: datetime) -> Ticket | None:
    """The ticket with the acknowledged step re-notifying no more; None when there is nothing
    to change: the step is already acknowledged, or the ticket moved on to another assignment
    (whose ladder is new: the old step is gone with it)."""
    if ticket["assignment"] != ack["assignment"]:
        return None
    index = next((i for i, s in enumerate(ticket["ladder"])
                  if s["clock"] == ack["clock"] and s["level"] == ack["level"]), None)
    if index is None or ticket["ladder"][index].get("acknowledged"):
        return None
    changed = copy.deepcopy(ticket)
    changed["ladder"][index]["acknowledged"] = {
        "escalation_id": ack["escalation_id"], "by": ack["label"], "at": ack["acknowledged_at"]}
    return refresh(changed, policy, now)


def ack_record(ack: AckDoc) -> AuditRecord:
    """The audit entry, from the acknowledgement alone (so a retry or the sweep appends the
    same one, once: keyed by the step)."""
    return AuditRecord(
        tenant=ack["tenant"], key=f"escalation_ack:{ack['_id']}", action=AuditAction.ESCALATION_ACK,
        actor=Actor.model_validate(ack["actor"]), ticket_id=ack["ticket_id"],
        request_id=ack["request_id"], time=ack["acknowledged_at"],
        before={"state": "open"},
        after={"state": ACKNOWLEDGED, "escalation_id": ack["escalation_id"],
               "agency": ack["agency"], "assignment": ack["assignment"], "clock": ack["clock"],
               "level": ack["level"], "repeat": ack["repeat"]})


class Acknowledgement(BaseModel):
    by: str = Field(description="Who acknowledged, e.g. 'inspektorat (supervisor)'.")
    at: datetime
    escalation_id: str = Field(description="The notice of the step that was acknowledged.")


class EscalationView(Escalation):
    """One escalation as the API lists it: the ``ticket.escalated`` event, its id and ticket,
    how late the clock is, and whether a supervisor has acknowledged its step."""

    escalation_id: str
    ticket_id: str
    overdue_seconds: float | None = Field(
        None, description="Working seconds past the clock's target when it fired (0 if not yet).")
    state: AckState
    acknowledgement: Acknowledgement | None = None


class EscalationPage(BaseModel):
    escalations: list[EscalationView] = Field(description="Newest first.")
    next_offset: int | None = Field(None, description="Offset of the next page; null on the last.")


def escalation_view(escalation: Document, ack: Document | None) -> EscalationView:
    event = Escalation.model_validate(escalation["event"]["data"])
    overdue = None
    if event.elapsed_seconds is not None and event.target_seconds is not None:
        overdue = max(0.0, event.elapsed_seconds - event.target_seconds)
    acknowledgement = None
    if ack is not None:
        acknowledgement = Acknowledgement(by=ack["label"], at=ack["acknowledged_at"],
                                          escalation_id=ack["escalation_id"])
    return EscalationView(**event.model_dump(), escalation_id=escalation["_id"],
                          ticket_id=escalation["ticket_id"], overdue_seconds=overdue,
                          state=ACKNOWLEDGED if ack is not None else "open",
                          acknowledgement=acknowledgement)
