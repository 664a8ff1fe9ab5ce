"""Intake's HTTP API: submit a complaint, look it up by tracking number."""

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, HTTPException, Request, status
from pydantic import BaseModel, Field

from services.intake.domain import fingerprint, idempotency_key, public_history
from services.intake.flows import Intake, Submission
from services.intake.store import complaint_of
from shared.auth import access_of, request_id_of
from shared.contracts import ComplaintSubmission
from shared.mongo import Document

log = logging.getLogger(__name__)


class Accepted(BaseModel):
    ticket_id: str = Field(description="Tracking number for the citizen.")
    status: str = "received"
    duplicate: bool = Field(False, description="True when an earlier submission was found.")
    links: dict[str, str]


class TrackingView(BaseModel):
    """What anyone holding the tracking number may see: never the reporter's identity."""

    ticket_id: str
    status: str
    submitted_at: datetime
    channel: str
    title: str | None = None
    text: str | None = Field(None, description="Withheld when the complaint is confidential.")
    agency: str | None = None
    agency_name: str | None = None
    priority: str | None = None
    category: str | None = None
    routing: dict[str, Any] | None = None
    deadlines: dict[str, Any] | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)


def _intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/complaints", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
                 responses={403: {"description": "The API key is of another channel"},
                            409: {"description": "Idempotency-Key reused for other content"},
                            422: {"description": "Invalid fields, each named"}})
    async def submit_complaint(
        submission: ComplaintSubmission, request: Request, background: BackgroundTasks,
        idempotency_key_header: Annotated[str | None, Header(alias="Idempotency-Key",
                                                             max_length=128)] = None,
    ) -> Accepted:
        """Accept a complaint: it is stored before this answers, then published. Needs a
        channel's API key (``X-API-Key``), which submits for its own channel only."""
        principal = access_of(request).principal
        if principal is None or principal.name != submission.channel:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "this API key may submit complaints for its own channel only")
        intake = _intake(request)
        key = idempotency_key(submission, header_key=idempotency_key_header)
        access = access_of(request)
        [doc] = await intake.store([Submission(submission, key, actor=access.audit_actor,
                                               request_id=request_id_of(request))])
        if doc["fingerprint"] != fingerprint(submission):
            raise HTTPException(status.HTTP_409_CONFLICT,
                                "this Idempotency-Key or external_id was used for another complaint")
        background.add_task(_publish_quietly, intake, doc)
        ticket_id = doc["ticket_id"]
        return Accepted(ticket_id=ticket_id, duplicate=doc["duplicate"],
                        links={"self": f"/v1/complaints/{ticket_id}"})

    @router.get("/complaints/{ticket_id}", response_model=TrackingView,
                responses={404: {"description": "Unknown tracking number"}})
    async def get_complaint(ticket_id: str, request: Request) -> TrackingView:
        """Where a complaint is: agency, routing explanation, deadlines and history."""
        store = _intake(request).complaints
        doc = await store.by_ticket(ticket_id)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no complaint {ticket_id}")
        return tracking_view(doc, await store.ticket(ticket_id))

    return router


async def _publish_quietly(intake: Intake, doc: Document) -> None:
    # The complaint is already stored: if the broker is down, the outbox sweep publishes later.
    try:
        await intake.publish([doc])
    except Exception as error:
        log.warning("publishing %s failed, the outbox sweep will retry: %s", doc["ticket_id"], error)


def tracking_view(doc: Document, ticket: Document | None) -> TrackingView:
    complaint = complaint_of(doc)
    confidential = bool(complaint.get("confidential"))
    view = TrackingView(
        ticket_id=doc["ticket_id"], status="received", submitted_at=doc["submitted_at"],
        channel=complaint["channel"], title=None if confidential else complaint.get("title"),
        text=None if confidential else complaint["text"],
    )
    if ticket is None:
        return view
    return view.model_copy(update={
        "status": ticket["status"], "agency": ticket["agency"],
        "agency_name": ticket.get("agency_name"), "priority": ticket.get("priority"),
        "category": ticket.get("category"), "routing": ticket.get("routing"),
        "deadlines": ticket.get("deadlines"), "history": public_history(ticket.get("history", [])),
    })
