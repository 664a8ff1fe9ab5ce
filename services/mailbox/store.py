"""The mailbox's own collections: received mails (whole, by the hash of their Message-ID),
the threads of complaints that came by mail (where replies go), and the mails to send. It
reads no other service's collections.

Mails are inserted by id (a mail received twice, or a reply made twice, is stored once) and
written whole afterwards, each write guarded by the version it read."""

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.mailbox.domain import InboundDoc, InboundStatus, OutgoingDoc, ThreadDoc
from shared.mongo import Document, insert_new
from shared.sending import due_documents, replace_if_version

INBOUND, THREADS, OUTGOING = "mailbox_inbound", "mailbox_threads", "mailbox_outgoing"


def thread_key(tenant: str, ticket_id: str) -> str:
    return f"{tenant}:{ticket_id}"


class MailboxStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.inbound: AsyncCollection[Document] = db[INBOUND]
        self.threads: AsyncCollection[Document] = db[THREADS]
        self.outgoing: AsyncCollection[Document] = db[OUTGOING]

    async def ensure_indexes(self) -> None:
        await self.inbound.create_index([("due_epoch", ASCENDING)])
        await self.outgoing.create_index([("due_epoch", ASCENDING)])

    async def keep(self, mail: InboundDoc) -> bool:
        """Store a received mail; False when a mail of this Message-ID was stored before."""
        return await insert_new(self.inbound, [dict(mail)]) == 1

    async def inbound_due(self, now_epoch: float, limit: int) -> list[InboundDoc]:
        return [cast(InboundDoc, d) for d in await due_documents(self.inbound, now_epoch, limit)]

    async def claim_inbound(self, mail: InboundDoc, lease_end: float) -> InboundDoc | None:
        """Take the mail for one submission: due again only at ``lease_end`` (so a mailbox
        that died holding it leaves it to the next turn then); None if another took it."""
        claimed = InboundDoc(**{**mail, "due_epoch": lease_end})
        return claimed if await self.save_inbound(claimed, read_version=mail["version"]) else None

    async def save_inbound(self, mail: InboundDoc, *, read_version: int) -> bool:
        """Write the mail whole if nobody changed it since ``read_version``; its version in
        the store is then ``read_version + 1``."""
        return await replace_if_version(self.inbound, mail, read_version)

    async def inbound_mail(self, mail_id: str) -> InboundDoc | None:
        return cast(InboundDoc | None, await self.inbound.find_one({"_id": mail_id}))

    async def count_inbound(self, tenant: str, status: InboundStatus) -> int:
        return await self.inbound.count_documents({"tenant": tenant, "status": status})

    async def count_failed_replies(self, tenant: str) -> int:
        return await self.outgoing.count_documents({"tenant": tenant, "status": "failed"})

    async def backlog(self, now: datetime) -> dict[str, tuple[int, float]]:
        """Mails waiting (received, not submitted; to send, not sent) and the oldest's age in
        seconds, for the outbox gauges `disposisi status` shows."""
        found: dict[str, tuple[int, float]] = {}
        for name, collection, where, time in (
                (INBOUND, self.inbound, {"status": "stored"}, "received_at"),
                (OUTGOING, self.outgoing, {"status": {"$in": ["pending", "retrying"]}}, "created_at")):
            count = await collection.count_documents(where)
            oldest = await collection.find(where, {time: 1}).sort(time, ASCENDING).limit(1).to_list(None)
            at = oldest[0].get(time) if oldest else None
            found[name] = (count, (now - at).total_seconds() if isinstance(at, datetime) else 0.0)
        return found

    async def add_thread(self, thread: ThreadDoc) -> ThreadDoc:
        """The thread of this ticket: the one stored first wins (its tracking code stays)."""
        await insert_new(self.threads, [dict(thread)])
        found = await self.threads.find_one({"_id": thread["_id"]})
        return cast(ThreadDoc, found)

    async def thread(self, tenant: str, ticket_id: str) -> ThreadDoc | None:
        return cast(ThreadDoc | None, await self.threads.find_one({"_id": thread_key(tenant, ticket_id)}))

    async def threads_of(self, keys: Sequence[str]) -> dict[str, ThreadDoc]:
        if not keys:
            return {}
        found = await self.threads.find({"_id": {"$in": sorted(set(keys))}}).to_list(None)
        return {str(t["_id"]): cast(ThreadDoc, t) for t in found}

    async def add_outgoing(self, mails: Sequence[OutgoingDoc]) -> int:
        return await insert_new(self.outgoing, [dict(m) for m in mails])
