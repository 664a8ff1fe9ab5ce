"""HTTP: the deliveries of the caller's tenant (``GET /v1/deliveries``), for the supervisor
dashboard's list of failed ones (``?status=failed``).

A supervisor sees every delivery of its tenant; an agency head those of its own agency. A
delivery shows who (a staff id of the directory, or "citizen"), over which contact name, its
state and last error: never an address or the message sent to a citizen."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.notify.domain import DeliveryDoc, Kind, Status
from services.notify.store import DeliveryFilter, NotifyStore
from shared.auth import access_of, own_agency_filter

MAX_PAGE = 200


class DeliveryView(BaseModel):
    delivery_id: str
    notice_id: str = Field(description="The notice (event and recipient); one per person.")
    kind: Kind
    ticket_id: str
    agency: str
    recipient: str = Field(description="Staff id from the directory, or 'citizen'.")
    contact: str = Field(description="Which of the recipient's contacts, e.g. email, webhook.")
    title: str
    status: Status
    attempts: int
    urgent: bool
    created_at: datetime
    next_attempt_at: datetime | None = Field(None, description="When it is tried next, if open.")
    deferred_until: datetime | None = Field(None, description="End of the quiet hours it waited.")
    sent_at: datetime | None = None
    last_error: str | None = None


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryView] = Field(description="Newest first.")
    next_offset: int | None = Field(None, description="Offset of the next page; null on the last.")


def delivery_view(doc: DeliveryDoc) -> DeliveryView:
    due = doc["due_epoch"]
    return DeliveryView(
        delivery_id=doc["_id"], notice_id=doc["notice_id"], kind=doc["kind"],
        ticket_id=doc["ticket_id"], agency=doc["agency"], recipient=doc["recipient"],
        contact=doc["contact"], title=doc["title"], status=doc["status"],
        attempts=doc["attempts"], urgent=doc["urgent"], created_at=doc["created_at"],
        next_attempt_at=None if due is None else datetime.fromtimestamp(due).astimezone(),
        deferred_until=doc["deferred_until"], sent_at=doc["sent_at"], last_error=doc["last_error"])



def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])

    @router.get("", response_model=DeliveryPage, responses={
        403: {"description": "An agency head asked for another agency"},
        422: {"description": "Bad filter or paging values, each named"}})
    async def list_deliveries(
        request: Request,
        state: Annotated[Status | None, Query(
            alias="status", description="pending, deferred, retrying, sent, failed or "
                                        "cancelled; all if absent.")] = None,
        kind: Annotated[Literal["escalation", "assignment", "citizen_reply"] | None,
                        Query()] = None,
        agency: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> DeliveryPage:
        """Deliveries newest first, paged by ``offset``/``limit``; ``next_offset`` is null on
        the last page. ``?status=failed`` lists those given up after every retry."""
        access = access_of(request)
        assert access.principal is not None, "deliveries are never public"
        store: NotifyStore = request.app.state.notify_store
        where = DeliveryFilter(tenant=access.principal.tenant, status=state,
                               agency=own_agency_filter(access, agency, "deliveries"), kind=kind)
        found, more = await store.page(where, offset=offset, limit=limit)
        return DeliveryPage(deliveries=[delivery_view(d) for d in found],
                            next_offset=offset + limit if more else None)

    _ = list_deliveries
    return router
