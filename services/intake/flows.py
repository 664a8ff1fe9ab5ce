"""Intake flows: accept submissions (validate → number → persist with outbox) and publish."""

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.errors import PyMongoError

from services.intake.domain import (
    accept,
    fingerprint,
    hash_tracking_code,
    new_ticket_id,
    to_publish,
)
from services.intake.store import (
    Accepted,
    ComplaintStore,
    ReplyStore,
    TrackingStore,
    complaint_of,
    tracked,
)
from shared.audit import Actor, AuditAction, AuditRecord
from shared.audit_store import AuditLog
from shared.contracts import ComplaintSubmission, Envelope, TicketChanged, TicketUpdate, utc_now
from shared.mongo import Document
from shared.outbox import OutboxRelay, PublishQueue
from shared.settings import Settings
from shared.tenants import Tenants, load_tenants

SUBMITTED_BY, REQUEST_ID = "submitted_by", "request_id"  # kept with the complaint for its audit
AUDITED = "audited"  # set on a complaint whose submission is in the audit log (AuditedRelay)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    content: ComplaintSubmission
    key: str | None
    actor: Actor | None = None  # who submitted; the channel when not given
    request_id: str | None = None
    tracking_code: str | None = None  # given to the citizen over HTTP; only its hash is stored
    tenant: str | None = None  # the caller's (API key's) or the event's; None: the home tenant
    # Stored beside the complaint, never published: a channel's own fields (Open311's token).
    extra: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def fingerprint(self) -> str:
        """The content's hash, computed once (it serialises the whole submission): stored
        with a new complaint, and compared with the stored complaint's to tell a retry from a
        reused idempotency key."""
        return fingerprint(self.content)


@dataclass
class Intake:
    settings: Settings
    complaints: ComplaintStore
    relay: OutboxRelay
    replies: ReplyStore
    reply_relay: OutboxRelay
    tracking: TrackingStore
    tenants: Tenants | None = None  # None: the settings' single tenant
    queue: PublishQueue | None = None  # None: one over ``relay``

    def __post_init__(self) -> None:
        if self.tenants is None:
            self.tenants = load_tenants(self.settings)
        if self.queue is None:
            self.queue = PublishQueue(self.relay)

    @property
    def registry(self) -> Tenants:
        assert self.tenants is not None
        return self.tenants

    def _ticket_id(self, tenant: str) -> str:
        """A tracking number with the tenant's prefix and local date."""
        config = self.registry.get(tenant)
        local_now = utc_now().astimezone(ZoneInfo(config.timezone))
        return new_ticket_id(config.ticket_prefix, local_now)

    def _accepted(self, submission: Submission) -> Accepted:
        tenant = submission.tenant or self.settings.tenant
        ticket_id = self._ticket_id(tenant)
        complaint, withheld = to_publish(accept(submission.content, ticket_id=ticket_id, now=utc_now()))
        # Without an idempotency key each submission is its own complaint.
        key = submission.key or f"new:{uuid.uuid4()}"
        actor = submission.actor or Actor.channel(complaint.channel.value)
        code = submission.tracking_code
        return Accepted(key=key, complaint=complaint, fingerprint=submission.fingerprint,
                        tenant=tenant,
                        extra={**submission.extra, SUBMITTED_BY: actor.model_dump(),
                               REQUEST_ID: submission.request_id},
                        withheld=withheld, tracking_code_hash=hash_tracking_code(code) if code else None)

    def _reissue(self, item: Accepted) -> Accepted:
        complaint = item.complaint.model_copy(update={"ticket_id": self._ticket_id(item.tenant)})
        return replace(item, complaint=complaint)

    async def store(self, submissions: list[Submission]) -> list[Document]:
        """Persist (the point of no loss); returns each submission's stored document, which is an
        earlier one when the idempotency key was seen before."""
        items = [self._accepted(s) for s in submissions]
        stored = await self.complaints.save(items, self._reissue)
        return [stored[i.key] for i in items]

    async def publish(self, docs: list[Document]) -> None:
        await self.relay.publish(docs)

    def publish_soon(self, docs: list[Document]) -> None:
        """Publish with the next batch (an HTTP answer does not wait for it)."""
        assert self.queue is not None
        self.queue.put(docs)

    async def flush(self) -> None:
        assert self.queue is not None
        await self.queue.flush()

    async def mark_ticketed(self, ticket_ids: list[str], *, tenant: str | None = None) -> int:
        """The SLA service opened these complaints' tickets: reconciliation leaves them be."""
        return await self.complaints.mark_ticketed(ticket_ids, utc_now(), tenant=tenant)

    async def track(self, changes: list[Envelope[TicketChanged]]) -> None:
        """Keep the newest public state of each ticket, and settle the replies it lists."""
        newest: dict[str, Envelope[TicketChanged]] = {}
        for change in changes:
            known = newest.get(str(change.ticket_id))
            if known is None or change.data.version > known.data.version:
                newest[str(change.ticket_id)] = change
        await self.tracking.save_all([tracked(change) for change in newest.values()])
        now = utc_now()
        await self.replies.mark_settled(
            [i for c in newest.values() for i in c.data.replies_applied], "applied", now)
        await self.replies.mark_settled(
            [i for c in newest.values() for i in c.data.replies_refused], "refused", now)

    async def store_reply(self, ticket_id: str, update: TicketUpdate, event_id: str, *,
                          tenant: str | None = None) -> Document:
        """Persist a citizen's reply (the point of no loss) with its outbox event, in the
        complaint's tenant."""
        return await self.replies.save(ticket_id, update, event_id,
                                       tenant=tenant or self.settings.tenant)

    async def publish_reply(self, doc: Document) -> None:
        await self.reply_relay.publish([doc])


class AuditedRelay(OutboxRelay):
    """Intake's outbox: a complaint's submission is appended to the audit log before its event
    is published, by the writer or, after a crash or an outage, by the sweep. So every
    complaint that reaches the router is audited (once: keyed by its tracking number), and an
    HTTP submission's 202 does not wait for the append.

    The complaint itself records that it was audited (``audited``), set in the write that marks
    it published, or after a failed send: a document published before or republished by the
    sweep or the reconciliation is not appended again. So the append writes no ``audit_keys``
    document (one store write less per complaint): only a process that died between the
    append and the send leaves audited complaints unmarked, and their next append drops each
    at the unique (tenant, key) index. (``audit_keys`` is skipped by the log intake's app
    makes: ``AuditLog(db, register_keys=False)``.)"""

    def __init__(self, *args: Any, audit: AuditLog, tenant: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.audit = audit
        self.tenant = tenant

    async def publish(self, docs: Sequence[Document]) -> None:
        fresh = [d for d in docs if not d.get("published") and not d.get(AUDITED)]
        await self.audit.append([submission_record(d.get("tenant") or self.tenant, d) for d in fresh])
        try:
            await super().publish(docs)
        except Exception:  # the sweep retries these: it need not append them again
            await self._note_audited(fresh)
            raise

    def published_fields(self) -> Document:
        # Appended before it was sent: free to record with the mark (the same write).
        return {**super().published_fields(), AUDITED: True}

    async def _note_audited(self, docs: Sequence[Document]) -> None:
        """After a failed send (a broker outage): every retry would otherwise try to append
        them again, each costing a failed insert or two."""
        if not docs:
            return
        try:
            await self.collection.update_many({"_id": {"$in": [d["_id"] for d in docs]}},
                                              {"$set": {AUDITED: True}})
        except PyMongoError as error:  # the store is away too: the index still drops them
            log.warning("outbox %s: noting %d complaints audited failed: %s",
                        self.collection.name, len(docs), error)


def submission_record(tenant: str, doc: Document) -> AuditRecord:
    complaint = complaint_of(doc)
    actor = doc.get(SUBMITTED_BY) or Actor.channel(complaint["channel"]).model_dump()
    return AuditRecord(
        tenant=tenant, key=f"submission:{doc['ticket_id']}", action=AuditAction.SUBMISSION,
        ticket_id=doc["ticket_id"], actor=Actor.model_validate(actor),
        request_id=doc.get(REQUEST_ID), time=doc["submitted_at"],
        # Never the text or the reporter: whether identity is hidden is all it says of them.
        after={"status": "received", "channel": complaint["channel"],
               "anonymous": complaint.get("anonymous", False),
               "confidential": complaint.get("confidential", False)})


@dataclass
class _Waiting:
    submission: Submission
    answer: "asyncio.Future[Document]"


class Grouped:
    """Stores concurrent HTTP submissions together: one ``insert_many`` for every submission
    that arrived while the previous write was in flight, instead of one round trip each.

    No timer: a submission arriving when nothing is being written is written at once, so an
    idle service adds no wait; under load the writes group themselves. Each caller's await
    returns only after its own submission is stored (the 202 comes after the write), and a
    failed write fails every caller of that group, as a failed single write did. Two
    submissions with the same idempotency key never share a write, so the second is told it is
    a duplicate exactly as when they came one after the other."""

    def __init__(self, intake: Intake, *, most: int = 256) -> None:
        self.intake = intake
        self.most = most  # submissions per write: bounds one write's size and its wait
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def store(self, submission: Submission) -> Document:
        answer: asyncio.Future[Document] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(submission, answer))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        return await answer

    async def _write_all(self) -> None:
        while self._waiting:
            group = self._next_group()
            try:
                docs = await self.intake.store([w.submission for w in group])
            except asyncio.CancelledError:  # stopping: nobody waits for an answer forever
                for waiting in [*group, *self._waiting]:
                    waiting.answer.cancel()
                self._waiting = []
                raise
            except Exception as error:
                for waiting in group:
                    if not waiting.answer.done():
                        waiting.answer.set_exception(error)
                continue
            for waiting, doc in zip(group, docs, strict=True):
                if not waiting.answer.done():
                    waiting.answer.set_result(doc)

    def _next_group(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        keys: set[str | None] = set()
        later: list[_Waiting] = []
        for waiting in self._waiting:
            key = waiting.submission.key
            if len(group) >= self.most or (key is not None and key in keys):
                later.append(waiting)
            else:
                group.append(waiting)
                keys.add(key)
        self._waiting = later
        return group
