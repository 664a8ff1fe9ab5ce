"""SLA's HTTP API: agencies' updates and the full ticket view."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder

from services.sla.flows import Sla, UnknownTicket, UpdateRefused
from shared.contracts import TicketUpdate, derived_event_id
from shared.mongo import Document


def _sla(request: Request) -> Sla:
    sla: Sla = request.app.state.sla
    return sla


def ticket_json(ticket: Document) -> dict[str, Any]:
    """The agency's view: everything but bookkeeping. The SLA store never holds the reporter."""
    view = {k: v for k, v in ticket.items() if k not in ("_id", "applied_events")}
    encoded: dict[str, Any] = jsonable_encoder({"ticket_id": ticket["_id"], **view})
    return encoded


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/tickets/{ticket_id}/events", responses={
        404: {"description": "Unknown ticket"}, 409: {"description": "Action not allowed now"},
        422: {"description": "Invalid fields, each named"}})
    async def post_ticket_event(
        ticket_id: str, update: TicketUpdate, request: Request,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
    ) -> dict[str, Any]:
        """Record an agency's action (acknowledged, responded, resolved, rejected, needs_info).
        With an Idempotency-Key, a retried request is applied once."""
        event_id = (derived_event_id("http-update", ticket_id, idempotency_key)
                    if idempotency_key else str(uuid.uuid4()))
        try:
            ticket = await _sla(request).apply(ticket_id, update, event_id)
        except UnknownTicket as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
        except UpdateRefused as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        return ticket_json(ticket)

    @router.get("/tickets/{ticket_id}", responses={404: {"description": "Unknown ticket"}})
    async def get_ticket(ticket_id: str, request: Request) -> dict[str, Any]:
        """The ticket with its agency, routing explanation, clocks, ladder and history."""
        ticket = await _sla(request).store.get(ticket_id)
        if ticket is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
        return ticket_json(ticket)

    return router
