"""Intake flows: accept submissions (validate → number → persist with outbox) and publish."""

import uuid
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from services.intake.domain import accept, fingerprint, new_ticket_id
from services.intake.store import Accepted, ComplaintStore, complaint_of
from shared.audit import Actor, AuditAction, AuditRecord
from shared.audit_store import AuditLog
from shared.contracts import ComplaintSubmission, utc_now
from shared.mongo import Document
from shared.outbox import OutboxRelay
from shared.settings import Settings


@dataclass(frozen=True)
class Submission:
    content: ComplaintSubmission
    key: str | None
    actor: Actor | None = None  # who submitted; the channel when not given
    request_id: str | None = None


@dataclass
class Intake:
    settings: Settings
    complaints: ComplaintStore
    relay: OutboxRelay
    audit: AuditLog

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
        docs = [stored[i.key] for i in items]
        # Every stored complaint, new or earlier: an append lost to a crash is made when the
        # submission is retried or redelivered (once: keyed by the tracking number).
        await self.audit.append([self._record(d, s) for d, s in zip(docs, submissions, strict=True)])
        return docs

    def _record(self, doc: Document, submission: Submission) -> AuditRecord:
        complaint = complaint_of(doc)
        return AuditRecord(
            tenant=self.settings.tenant, key=f"submission:{doc['ticket_id']}",
            action=AuditAction.SUBMISSION, ticket_id=doc["ticket_id"],
            actor=submission.actor or Actor.channel(complaint["channel"]),
            request_id=submission.request_id, time=doc["submitted_at"],
            # Never the text or the reporter: whether identity is hidden is all it says of them.
            after={"status": "received", "channel": complaint["channel"],
                   "anonymous": complaint.get("anonymous", False),
                   "confidential": complaint.get("confidential", False)})

    async def publish(self, docs: list[Document]) -> None:
        await self.relay.publish(docs)
