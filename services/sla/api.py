"""SLA's HTTP API: agencies' updates, the triage desk's manual routing, the full ticket view.

Who may call what is in ``shared.permissions``; here each handler checks, once the ticket is
read, that it lies within the caller's scope (own agency, or the triage queue), answering 404
exactly as for an unknown ticket otherwise. The actor of an update is the signed-in caller."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from services.sla.flows import Sla, UnknownTicket, UpdateRefused
from services.sla.review import accepted, awaits_review
from shared.auth import Access, access_of, request_id_of
from shared.contracts import RerouteRequest, Strict, TicketUpdate, derived_event_id
from shared.mongo import Document
from shared.permissions import UPDATE_ACTIONS


class UpdateRequest(TicketUpdate):
    """The body of ``POST /v1/tickets/{id}/events``: an update without ``actor``, which is
    always the signed-in caller (a body naming one is refused, 422)."""

    actor: SkipJsonSchema[None] = Field(None, exclude=True)

    def as_update(self, actor: str) -> TicketUpdate:
        return TicketUpdate.model_validate({**self.model_dump(), "actor": actor})


class RouteByHand(Strict):
    """The triage desk assigns an agency itself; the router carries the decision out."""

    agency: str = Field(min_length=1, max_length=40, description="Agency code from the rulebook.")
    reason: str = Field(min_length=1, max_length=1000, description="Why this agency.")


def _sla(request: Request) -> Sla:
    sla: Sla = request.app.state.sla
    return sla


async def _visible_ticket(request: Request, ticket_id: str, *,
                          repeat_of_review: bool = False) -> Document:
    """The ticket, if the caller may see it; 404 alike for unknown and out-of-scope tickets.
    The triage desk also sees a decision the second opinion disputed, until it settles it
    (and, to repeat its acceptance, the one it accepted)."""
    access = access_of(request)
    ticket = await _sla(request).store.get(ticket_id, tenant=access.tenant)
    disputed = ticket is not None and (awaits_review(ticket)
                                       or (repeat_of_review and accepted(ticket)))
    access.require_ticket(ticket_id, ticket["agency"] if ticket else None, disputed=disputed)
    assert ticket is not None
    return ticket


def _may_take(access: Access, update: TicketUpdate) -> None:
    role = access.principal.role if access.principal else ""
    if update.action not in UPDATE_ACTIONS.get(role, frozenset()):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"role {role} may not record {update.action.value}")


def ticket_json(ticket: Document) -> dict[str, Any]:
    """The agency's view: everything but bookkeeping. Like the agency's queue, it holds the
    reporter only when the complaint is neither anonymous nor confidential."""
    view = {k: v for k, v in ticket.items() if k not in ("_id", "applied_events", "claim")}
    encoded: dict[str, Any] = jsonable_encoder({"ticket_id": ticket["_id"], **view})
    return encoded


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/tickets/{ticket_id}/events", responses={
        403: {"description": "This role may not record this action"},
        404: {"description": "Unknown ticket, or not the caller's"},
        409: {"description": "Action not allowed now"},
        422: {"description": "Invalid fields, each named"}})
    async def post_ticket_event(
        ticket_id: str, update: UpdateRequest, request: Request,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
    ) -> dict[str, Any]:
        """Record an action: acknowledged, responded, resolved, rejected (sent back to the router
        for a new agency), needs_info (pauses the clocks), citizen_replied (resumes them), note,
        reprioritised. With an Idempotency-Key, a retried request is applied once."""
        access = access_of(request)
        _may_take(access, update)
        checked = await _visible_ticket(request, ticket_id)
        event_id = (derived_event_id("http-update", ticket_id, idempotency_key)
                    if idempotency_key else str(uuid.uuid4()))
        try:
            ticket = await _sla(request).apply(ticket_id, update.as_update(access.actor), event_id,
                                               actor=access.audit_actor,
                                               request_id=request_id_of(request),
                                               tenant=access.tenant,
                                               # re-routed since the check: not the caller's
                                               agency=checked["agency"])
        except UnknownTicket as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
        except UpdateRefused as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        return ticket_json(ticket)

    @router.post("/tickets/{ticket_id}/route", status_code=status.HTTP_202_ACCEPTED, responses={
        404: {"description": "Unknown ticket"}, 409: {"description": "Ticket already resolved"},
        422: {"description": "Invalid fields (e.g. an agency code not in the rulebook), each named"}})
    async def post_ticket_route(ticket_id: str, body: RouteByHand, request: Request) -> RerouteRequest:
        """Assign the ticket to an agency by hand: the request goes to the router, which
        publishes the new routing decision. Repeating the same choice is the same request."""
        sla = _sla(request)
        await _visible_ticket(request, ticket_id)
        access = access_of(request)
        if body.agency not in sla.rulebook_for(access.tenant).codes:
            raise RequestValidationError([{
                "loc": ("body", "agency"), "type": "value_error",
                "msg": f"unknown agency code {body.agency!r}: not in the rulebook"}])
        try:
            return await sla.request_route(ticket_id, agency=body.agency,
                                           actor=access.audit_actor, shown_as=access.actor,
                                           reason=body.reason, request_id=request_id_of(request),
                                           tenant=access.tenant)
        except UnknownTicket as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
        except UpdateRefused as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error

    @router.post("/tickets/{ticket_id}/review/accept", responses={
        404: {"description": "Unknown ticket, or not the desk's"},
        409: {"description": "No disputed decision to accept (none raised, or re-routed)"}})
    async def post_review_accept(ticket_id: str, request: Request) -> dict[str, Any]:
        """The triage desk keeps the rules' decision that the router's second opinion disputed:
        the ticket stays with its agency and leaves the review list (``GET /v1/tickets?review=true``).
        Repeating it (same assignment) is the same acceptance. To move the ticket instead,
        route it by hand (``POST /v1/tickets/{id}/route``)."""
        await _visible_ticket(request, ticket_id, repeat_of_review=True)
        access = access_of(request)
        try:
            ticket = await _sla(request).accept_review(
                ticket_id, actor=access.audit_actor, shown_as=access.actor,
                request_id=request_id_of(request), tenant=access.tenant)
        except UnknownTicket as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
        except UpdateRefused as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        return ticket_json(ticket)

    @router.get("/tickets/{ticket_id}", responses={404: {"description": "Unknown ticket"}})
    async def get_ticket(ticket_id: str, request: Request) -> dict[str, Any]:
        """The ticket with its agency, routing explanation, both clocks, pauses, ladder and
        history."""
        return ticket_json(await _visible_ticket(request, ticket_id))

    return router
