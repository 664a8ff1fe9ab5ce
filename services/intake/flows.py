"""Intake flows: accept submissions (validate → number → persist with outbox) and publish."""

import uuid
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from services.intake.domain import (
    accept,
    fingerprint,
    hash_tracking_code,
    new_ticket_id,
    to_publish,
)
from services.intake.store import Accepted, ComplaintStore, ReplyStore
from shared.contracts import ComplaintSubmission, TicketUpdate, utc_now
from shared.mongo import Document
from shared.outbox import OutboxRelay
from shared.settings import Settings


@dataclass(frozen=True)
class Submission:
    content: ComplaintSubmission
    key: str | None
    tracking_code: str | None = None  # given to the citizen over HTTP; only its hash is stored


@dataclass
class Intake:
    settings: Settings
    complaints: ComplaintStore
    relay: OutboxRelay
    replies: ReplyStore
    reply_relay: OutboxRelay

    def _ticket_id(self) -> str:
        local_now = utc_now().astimezone(ZoneInfo(self.settings.timezone))
        return new_ticket_id(self.settings.ticket_prefix, local_now)

    def _accepted(self, submission: Submission) -> Accepted:
        ticket_id = self._ticket_id()
        complaint, withheld = to_publish(accept(submission.content, ticket_id=ticket_id, now=utc_now()))
        # Without an idempotency key each submission is its own complaint.
        key = submission.key or f"new:{uuid.uuid4()}"
        code = submission.tracking_code
        return Accepted(key=key, complaint=complaint, fingerprint=fingerprint(submission.content),
                        withheld=withheld, tracking_code_hash=hash_tracking_code(code) if code else None)

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

    async def store_reply(self, ticket_id: str, update: TicketUpdate, event_id: str) -> Document:
        """Persist a citizen's reply (the point of no loss) with its outbox event."""
        return await self.replies.save(ticket_id, update, event_id)

    async def publish_reply(self, doc: Document) -> None:
        await self.reply_relay.publish([doc])
