"""HTTP: the escalations of the caller's tenant (``GET /v1/escalations``), and a supervisor's
acknowledgement of one (``POST /v1/escalations/{escalation_id}/acknowledge``).

The app provides an ``EscalationDesk`` as ``app.state.escalations``. A supervisor sees every
escalation of its tenant; an agency head those of its own agency only. Another tenant's
escalation answers 404, exactly as an unknown one."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from services.sla.escalation_flows import EscalationDesk, UnknownEscalation
from services.sla.escalation_store import EscalationFilter
from services.sla.escalations import AckState, EscalationPage, EscalationView
from shared.auth import Access, access_of, own_agency_filter, request_id_of

MAX_PAGE = 200


def _desk(request: Request) -> EscalationDesk:
    desk: EscalationDesk = request.app.state.escalations
    return desk


def _tenant(access: Access) -> str:
    assert access.principal is not None, "escalations are never public"
    return access.principal.tenant



def build_escalations_router() -> APIRouter:
    router = APIRouter(prefix="/v1/escalations", tags=["escalations"])

    @router.get("", response_model=EscalationPage, responses={
        403: {"description": "An agency head asked for another agency"},
        422: {"description": "Bad filter or paging values, each named"}})
    async def list_escalations(
        request: Request,
        state: Annotated[AckState | None, Query(
            description="open (not acknowledged yet) or acknowledged; both if absent.")] = None,
        agency: Annotated[str | None, Query(min_length=1, max_length=40,
                                            description="Agency code.")] = None,
        level: Annotated[int | None, Query(ge=1, le=20)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> EscalationPage:
        """Escalations newest first (by when they fired), each with its level, agency, clock,
        how late the clock was, and its acknowledgement if any. Paged by ``offset``/``limit``;
        ``next_offset`` is null on the last page."""
        access = access_of(request)
        where = EscalationFilter(tenant=_tenant(access), state=state,
                                 agency=own_agency_filter(access, agency, "escalations"), level=level)
        return await _desk(request).page(where, offset=offset, limit=limit)

    @router.post("/{escalation_id}/acknowledge", response_model=EscalationView, responses={
        404: {"description": "Unknown escalation (or another tenant's)"}})
    async def acknowledge_escalation(escalation_id: str, request: Request) -> EscalationView:
        """Acknowledge an escalation: its step (ticket, assignment, clock, level) re-notifies
        no more; higher levels still fire when due. Recorded with who and when, audited
        (``escalation_ack``) and announced on ``disposisi.escalations.acknowledged``.
        Idempotent: a repeat answers the first acknowledgement."""
        access = access_of(request)
        desk = _desk(request)
        try:
            escalation = await desk.acknowledge(escalation_id, tenant=_tenant(access),
                                                actor=access.audit_actor,
                                                request_id=request_id_of(request))
        except UnknownEscalation as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
        [view] = (await desk.views([escalation]))
        return view

    _ = (list_escalations, acknowledge_escalation)
    return router
