"""Intake flows: accept submissions (validate → number → persist with outbox) and publish."""

import uuid
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from services.intake.domain import accept, fingerprint, new_ticket_id
from services.intake.store import Accepted, ComplaintStore
from shared.contracts import ComplaintSubmission, utc_now
from shared.mongo import Document
from shared.outbox import OutboxRelay
from shared.settings import Settings


@dataclass(frozen=True)
class Submission:
    content: ComplaintSubmission
    key: str | None


@dataclass
class Intake:
    settings: Settings
    complaints: ComplaintStore
    relay: OutboxRelay

    def _ticket_id(self) -> str:
        local_now = utc_now().astimezone(ZoneInfo(self.settings.timezone))
        return new_ticket_id(self.settings.ticket_prefix, local_now)

    def _accepted(self, submission: Submission) -> Accepted:
        ticket_id = self._ticket_id()
        complaint = accept(submission.content, ticket_id=ticket_id, now=utc_now())
        # Without an idempotency key each submission is its own complaint.
        key = submission.key or f"new:{uuid.uuid4()}"
        return Accepted(key=key, complaint=complaint, fingerprint=fingerprint(submission.content))

    def _reissue(self, item: Accepted) -> Accepted:
        complaint = item.complaint.model_copy(update={"ticket_id": self._ticket_id()})
        return replace(item, complaint=complaint)

    async def store(self, submissions: list[Submission]) -> list[Document]:
        """Persist (the point of no loss); returns each submission's stored document, which is an
        earlier one when the idempotency key was seen before."""
        items = [self._accepted(s) for s in submissions]
        stored = await self.complaints.save(items, self._reissue)
        return [stored[i.key] for i in items]

    async def publish(self, docs: list[Document]) -> None:
        await self.relay.publish(docs)

    async def mark_ticketed(self, ticket_ids: list[str]) -> int:
        """The SLA service opened these complaints' tickets: reconciliation leaves them be."""
        return await self.complaints.mark_ticketed(ticket_ids, utc_now())
