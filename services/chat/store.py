"""The chat service's own collections: the provider messages seen (idempotency), the drafts,
the tickets submitted through a chat channel, and the messages to send. It reads no other
service's collections.

Times a query compares are epoch seconds (NX-27017 stores a ``$set`` datetime as a string);
drafts and messages are written whole, each write guarded by the version it read."""

from typing import TypedDict, cast

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.chat.domain import DraftDoc, OutgoingDoc, TicketLinkDoc
from shared.mongo import Document, insert_new
from shared.sending import due_documents, replace_if_version

DRAFTS, TICKETS, OUTGOING, INBOUND = "chat_drafts", "chat_tickets", "chat_outgoing", "chat_inbound"


class InboundDoc(TypedDict):
    _id: str  # channel:provider message id
    applied: bool  # joined a draft (or answered); False after a crash in between
    received_epoch: float


class ChatStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.inbound: AsyncCollection[Document] = db[INBOUND]
        self.drafts: AsyncCollection[Document] = db[DRAFTS]
        self.tickets: AsyncCollection[Document] = db[TICKETS]
        self.outgoing: AsyncCollection[Document] = db[OUTGOING]

    async def ensure_indexes(self) -> None:
        await self.drafts.create_index([("due_epoch", ASCENDING)])
        await self.drafts.create_index([("sender", ASCENDING), ("status", ASCENDING)])
        await self.tickets.create_index([("sender", ASCENDING)])
        await self.outgoing.create_index([("due_epoch", ASCENDING)])

    # --- provider messages -------------------------------------------------------------------

    async def seen(self, key: str, now: float) -> bool:
        """Record a provider message; True if it was recorded and applied before."""
        if await insert_new(self.inbound, [dict(InboundDoc(_id=key, applied=False,
                                                           received_epoch=now))]):
            return False
        found = await self.inbound.find_one({"_id": key})
        return bool(found and found["applied"])

    async def applied(self, key: str) -> None:
        await self.inbound.update_one({"_id": key}, {"$set": {"applied": True}})

    # --- drafts -------------------------------------------------------------------------------

    async def open_draft(self, channel: str, sender: str) -> DraftDoc | None:
        found = await self.drafts.find_one({"channel": channel, "sender": sender, "status": "open",
                                            "kind": "complaint"})
        return cast(DraftDoc | None, found)

    async def add_draft(self, draft: DraftDoc) -> bool:
        return await insert_new(self.drafts, [dict(draft)]) == 1

    async def save_draft(self, draft: DraftDoc, *, read_version: int) -> bool:
        return await replace_if_version(self.drafts, draft, read_version)

    async def due_drafts(self, now: float, limit: int) -> list[DraftDoc]:
        return [cast(DraftDoc, d) for d in await due_documents(self.drafts, now, limit)]

    # --- tickets ------------------------------------------------------------------------------

    async def link(self, ticket: TicketLinkDoc) -> TicketLinkDoc:
        """Keep the ticket's link; the first one stored wins (its tracking code)."""
        await insert_new(self.tickets, [dict(ticket)])
        return cast(TicketLinkDoc, await self.tickets.find_one({"_id": ticket["_id"]}))

    async def ticket(self, ticket_id: str, tenant: str) -> TicketLinkDoc | None:
        found = await self.tickets.find_one({"_id": ticket_id, "tenant": tenant})
        return cast(TicketLinkDoc | None, found)

    async def waiting_ticket(self, channel: str, sender: str) -> TicketLinkDoc | None:
        """The citizen's ticket whose agency waits for information, if any."""
        found = await self.tickets.find_one({"channel": channel, "sender": sender,
                                             "status": "needs_info"})
        return cast(TicketLinkDoc | None, found)

    async def note_state(self, ticket_id: str, status: str, version: int) -> None:
        await self.tickets.update_one({"_id": ticket_id, "version": {"$lt": version}},
                                      {"$set": {"status": status, "version": version}})

    # --- messages to citizens -----------------------------------------------------------------

    async def add_outgoing(self, messages: list[OutgoingDoc]) -> int:
        return await insert_new(self.outgoing, [dict(m) for m in messages])
