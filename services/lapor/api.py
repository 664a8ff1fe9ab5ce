"""HTTP: the status updates for LAPOR! of the caller's tenant (``GET /v1/lapor/updates``),
pending or exported, for the admin instansi (triage desk), supervisors and administrators.

An update shows the LAPOR! id, the step in LAPOR!'s words and the agency's reply to the
citizen: what goes to LAPOR! anyway. Never a reporter."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.lapor.domain import LaporStatus, UpdateDoc
from services.lapor.store import LaporStore
from shared.auth import access_of

MAX_PAGE = 200


class UpdateView(BaseModel):
    update_id: str = Field(description="Stable: the same step is always the same update.")
    lapor_id: str
    lapor_tracking_number: str | None
    ticket_id: str
    status: LaporStatus
    action: str = Field(description="Disposisi's step: assigned, responded, resolved...")
    at: datetime
    agency: str | None
    reply: str | None = Field(description="The agency's message to the citizen, if any.")
    exported_at: datetime | None


class UpdatePage(BaseModel):
    updates: list[UpdateView] = Field(description="Oldest first.")
    next_offset: int | None = None


def view(doc: UpdateDoc) -> UpdateView:
    return UpdateView(update_id=doc["_id"], lapor_id=doc["lapor_id"],
                      lapor_tracking_number=doc["lapor_tracking_number"],
                      ticket_id=doc["ticket_id"], status=doc["status"], action=doc["action"],
                      at=doc["at"], agency=doc["agency_name"] or doc["agency"],
                      reply=doc["reply"], exported_at=doc["exported_at"])


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/lapor", tags=["lapor"])

    @router.get("/updates", response_model=UpdatePage)
    async def list_updates(
        request: Request,
        exported: Annotated[bool | None, Query(
            description="false: pending only; true: exported only; absent: all.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> UpdatePage:
        """Status changes and replies for LAPOR!, oldest first, paged."""
        access = access_of(request)
        assert access.principal is not None, "updates are never public"
        store: LaporStore = request.app.state.lapor_store
        found, more = await store.listed(access.principal.tenant, exported=exported,
                                         offset=offset, limit=limit)
        return UpdatePage(updates=[view(u) for u in found],
                          next_offset=offset + limit if more else None)

    _ = list_updates
    return router
