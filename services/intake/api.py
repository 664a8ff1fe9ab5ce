"""Intake's HTTP API: submit a complaint, follow it with the tracking number (and read it with
the tracking code), answer the agency's questions."""

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from services.intake.domain import (
    hash_tracking_code,
    idempotency_key,
    mask_for,
    new_tracking_code,
    public_history,
    public_routing,
    tracking_code_matches,
)
from services.intake.flows import Grouped, Intake, Submission
from services.intake.store import complaint_of
from shared.auth import access_of, request_id_of
from shared.contracts import (
    Complaint,
    ComplaintSubmission,
    Strict,
    TicketUpdate,
    UpdateAction,
    VisibleText,
    derived_event_id,
)
from shared.limits import limits_of, rate_limit, too_many
from shared.mongo import Document

log = logging.getLogger(__name__)

TRACKING_CODE_HEADER = "X-Tracking-Code"


class Accepted(BaseModel):
    ticket_id: str = Field(description="Tracking number for the citizen.")
    tracking_code: str | None = Field(
        None, description="Shown once, here: with the tracking number it opens the complaint's "
                          "text and lets the citizen reply. Only a hash of it is stored.")
    status: str = "received"
    duplicate: bool = Field(False, description="True when an earlier submission was found.")
    links: dict[str, str]


class TrackingView(BaseModel):
    """What anyone holding the tracking number may see, and with the tracking code the
    complaint itself; never the reporter, officers' names or internal notes."""

    ticket_id: str
    status: str
    submitted_at: datetime
    channel: str
    title: str | None = Field(None, description="Only with the tracking code.")
    text: str | None = Field(None, description="Only with the tracking code; masked as the agency "
                                               "reads it when the complaint is anonymous or confidential.")
    agency: str | None = None
    agency_name: str | None = None
    priority: str | None = None
    category: str | None = None
    routing: dict[str, Any] | None = None
    deadlines: dict[str, Any] | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    duplicate_of: str | None = Field(
        None, description="The same problem was reported before: this complaint is linked to that "
                          "ticket, and the status and steps shown are its.")


class CitizenReply(Strict):
    """The citizen's answer to an agency's request for information (needs_info)."""

    text: VisibleText = Field(min_length=1, max_length=4000, description="The answer.")


class ReplyAccepted(BaseModel):
    ticket_id: str
    status: str = "sent"


def _intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


def _grouped(request: Request) -> Grouped:
    """Concurrent submissions' writes grouped (``flows.Grouped``); made on first use, so an
    app wired without one (tests) gets one over its ``Intake``."""
    grouped: Grouped | None = getattr(request.app.state, "grouped", None)
    if grouped is None:
        grouped = request.app.state.grouped = Grouped(_intake(request))
    return grouped


TrackingCode = Annotated[str | None, Header(alias=TRACKING_CODE_HEADER, max_length=64)]
TrackingCodeQuery = Annotated[str | None, Query(alias="code", max_length=64,
                                                description="The tracking code, if not in the header.")]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1")
    _submission_routes(router)
    _tracking_routes(router)
    return router


def _submission_routes(router: APIRouter) -> None:
    @router.post("/complaints", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
                 dependencies=[Depends(rate_limit("rate_limit_submit",
                                                  per_key="rate_limit_submit_per_key"))],
                 responses={403: {"description": "The API key is of another channel"},
                            409: {"description": "Idempotency-Key reused for other content"},
                            413: {"description": "Body too large"},
                            422: {"description": "Invalid fields, each named"},
                            429: {"description": "Too many submissions; see Retry-After"}})
    async def submit_complaint(
        submission: ComplaintSubmission, request: Request, background: BackgroundTasks,
        idempotency_key_header: Annotated[str | None, Header(alias="Idempotency-Key",
                                                             max_length=128)] = None,
    ) -> Accepted:
        """Accept a complaint: it is stored before this answers, then published. Needs a
        channel's API key (``X-API-Key``), which submits for its own channel only. The answer
        carries the tracking number and, once, the tracking code."""
        access = access_of(request)
        if access.principal is None or access.principal.name != submission.channel:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "this API key may submit complaints for its own channel only")
        if submission.linked_to is not None:
            raise RequestValidationError([{
                "loc": ("body", "linked_to"), "type": "value_error",
                "msg": "set only by Disposisi when a city forwards a complaint to its province"}])
        intake = _intake(request)
        key = idempotency_key(submission, tenant=access.tenant,
                          header_key=idempotency_key_header)
        code = new_tracking_code()
        stored = Submission(submission, key, actor=access.audit_actor,
                            request_id=request_id_of(request), tracking_code=code,
                            tenant=access.tenant)
        doc = await _grouped(request).store(stored)
        if doc["fingerprint"] != stored.fingerprint:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                "this Idempotency-Key or external_id was used for another complaint")
        if doc["duplicate"]:
            await intake.complaints.add_tracking_code(doc["_id"], hash_tracking_code(code))
        intake.publish_soon([doc])  # stored: if the broker is down, the outbox sweep publishes later
        fetch_media(request, background, doc)
        ticket_id = doc["ticket_id"]
        return Accepted(ticket_id=ticket_id, tracking_code=code, duplicate=doc["duplicate"],
                        links={"self": f"/v1/complaints/{ticket_id}"})

    _ = submit_complaint


def _tracking_routes(router: APIRouter) -> None:
    @router.get("/complaints/{ticket_id}", response_model=TrackingView,
                dependencies=[Depends(rate_limit("rate_limit_tracking"))],
                responses={404: {"description": "Unknown tracking number, or a wrong tracking code"},
                           429: {"description": "Too many requests; see Retry-After"}})
    async def get_complaint(ticket_id: str, request: Request, code: TrackingCode = None,
                            code_query: TrackingCodeQuery = None) -> TrackingView:
        """Where a complaint is: agency, deadlines and steps. With the tracking code (header
        X-Tracking-Code or ?code=) also the complaint's text, the routing's reasons and the
        agency's messages."""
        given = code or code_query or None
        doc = await _complaint_for(request, ticket_id, given)
        return tracking_view(
            doc, await _intake(request).tracking.get(doc["ticket_id"], doc.get("tenant")),
            with_content=given is not None)

    @router.post("/complaints/{ticket_id}/replies", status_code=status.HTTP_202_ACCEPTED,
                 response_model=ReplyAccepted,
                 dependencies=[Depends(rate_limit("rate_limit_replies"))],
                 responses={404: {"description": "Unknown tracking number, or a wrong tracking code"},
                            409: {"description": "The agency is not waiting for an answer"},
                            422: {"description": "Invalid fields, each named"},
                            429: {"description": "Too many requests; see Retry-After"}})
    async def reply_to_agency(
        ticket_id: str, reply: CitizenReply, request: Request, background: BackgroundTasks,
        code: TrackingCode = None, code_query: TrackingCodeQuery = None,
        idempotency_key_header: Annotated[str | None, Header(alias="Idempotency-Key",
                                                             max_length=128)] = None,
    ) -> ReplyAccepted:
        """Answer the agency's question (the ticket is in needs_info) with the tracking number
        and code: a `citizen_replied` update resumes the clocks. Stored before this answers."""
        intake = _intake(request)
        doc = await _complaint_for(request, ticket_id, code or code_query, required=True)
        ticket = await intake.tracking.get(doc["ticket_id"], doc.get("tenant"))
        if ticket is None or ticket.get("status") != "needs_info":
            raise HTTPException(status.HTTP_409_CONFLICT,
                                "the agency is not waiting for an answer to this complaint")
        complaint = _withheld_complaint(doc)
        update = TicketUpdate(action=UpdateAction.CITIZEN_REPLIED, actor="citizen",
                              note=mask_for(complaint, reply.text))
        event_id = (derived_event_id("citizen-reply", doc["ticket_id"], idempotency_key_header)
                    if idempotency_key_header else str(uuid.uuid4()))
        stored = await intake.store_reply(doc["ticket_id"], update, event_id,
                                          tenant=doc.get("tenant"))
        background.add_task(_publish_reply_quietly, intake, stored)
        return ReplyAccepted(ticket_id=doc["ticket_id"])

    _ = (get_complaint, reply_to_agency)


async def _complaint_for(request: Request, ticket_id: str, code: str | None, *,
                         required: bool = False) -> Document:
    """The stored complaint, when the number (and the code, if given or required) fit. A
    wrong code answers like an unknown number; wrong codes for one ticket are limited, so a
    code cannot be guessed however many addresses try."""
    store = _intake(request).complaints
    doc = await store.by_ticket(ticket_id)
    if doc is not None and (code is not None or required):
        limits = limits_of(request)
        wait = limits.exhausted("tracking_code_failures", "ticket", doc["ticket_id"])
        if wait is not None:
            raise too_many(wait, "too many wrong tracking codes for this complaint")
        if not tracking_code_matches(code, doc.get("tracking_codes", [])):
            limits.hit("tracking_code_failures", "ticket", doc["ticket_id"])
            doc = None
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "no complaint with this tracking number" +
                            (" and tracking code" if code is not None or required else ""))
    return doc


def _withheld_complaint(doc: Document) -> Complaint:
    """The complaint with its reporter, as accepted: what masking a reply needs to know."""
    complaint = Complaint.model_validate(complaint_of(doc))
    withheld = doc.get("withheld")
    if withheld and withheld.get("reporter"):
        return complaint.model_copy(update={"reporter": withheld["reporter"]})
    return complaint


def fetch_media(request: Request, background: BackgroundTasks, doc: Document) -> None:
    """Fetch the files a new complaint names by URL, after the answer (services.intake.attachments)."""
    attachments = getattr(request.app.state, "attachments", None)
    urls = complaint_of(doc).get("attachments") or (doc.get("withheld") or {}).get("attachments")
    if attachments is not None and not doc["duplicate"] and urls:
        background.add_task(attachments.fetch_all, doc)
async def _publish_reply_quietly(intake: Intake, doc: Document) -> None:
    try:
        await intake.publish_reply(doc)
    except Exception as error:
        log.warning("publishing a reply to %s failed, the outbox sweep will retry: %s",
                    doc["ticket_id"], error)


def tracking_view(doc: Document, ticket: Document | None, *, with_content: bool) -> TrackingView:
    """The public view; ``with_content`` when the caller gave the right tracking code."""
    complaint = complaint_of(doc)
    view = TrackingView(
        ticket_id=doc["ticket_id"], status="received", submitted_at=doc["submitted_at"],
        channel=complaint["channel"], title=complaint.get("title") if with_content else None,
        text=complaint["text"] if with_content else None,
    )
    if ticket is None:
        return view
    return view.model_copy(update={
        "status": ticket["status"], "agency": ticket["agency"],
        "agency_name": ticket.get("agency_name"), "priority": ticket.get("priority"),
        "category": ticket.get("category"),
        "routing": public_routing(ticket.get("routing"), assignment=ticket.get("assignment", 1),
                                  with_content=with_content),
        "deadlines": ticket.get("deadlines"),
        "history": public_history(ticket.get("history", []), with_notes=with_content),
        "duplicate_of": ticket.get("duplicate_of"),
    })
