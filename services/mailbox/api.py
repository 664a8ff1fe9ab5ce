"""HTTP: how many mails wait, per state (``GET /v1/mail/summary``), for supervisors; never an
address, a subject or a text."""

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from services.mailbox.store import MailboxStore
from shared.auth import access_of


class MailSummary(BaseModel):
    stored: int = Field(description="Received, not yet submitted to intake (retried).")
    submitted: int = Field(description="New complaints submitted.")
    answered: int = Field(description="Passed on as the citizen's answer to a needs_info.")
    follow_up: int = Field(description="Mails on a known ticket that was not waiting for an answer.")
    refused: int = Field(description="Refused by intake; the citizen was told why.")
    replies_failed: int = Field(description="Replies given up after every retry.")


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/mail", tags=["mail"])

    @router.get("/summary", response_model=MailSummary)
    async def summary(request: Request) -> MailSummary:
        """Counts of the caller's tenant's mails by state, and of replies given up."""
        access = access_of(request)
        assert access.principal is not None, "never public"
        store: MailboxStore = request.app.state.mailbox_store
        tenant = access.principal.tenant
        counts = {s: await store.count_inbound(tenant, s)
                  for s in ("stored", "submitted", "answered", "follow_up", "refused")}
        failed = await store.count_failed_replies(tenant)
        return MailSummary(**counts, replies_failed=failed)

    _ = summary
    return router
