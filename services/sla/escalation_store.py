"""The escalations as supervisors list them, and their acknowledgements (``escalation_acks``:
one per ladder step, also the outbox of ``escalation.acknowledged``).

Each escalation document of an acknowledged step carries ``ack_state`` and ``ack_id`` (strings:
NX-27017 keeps ``$set`` strings as given), so the open/acknowledged filter is a plain query.
The tenant is read from the stored event's envelope, which every escalation has carried."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.sla.escalations import ACKNOWLEDGED, AckDoc, AckState, step_of
from shared.mongo import Document, insert_new

ACKS = "escalation_acks"
NEWEST_FIRST = [("fired_at", DESCENDING), ("_id", DESCENDING)]


@dataclass(frozen=True)
class EscalationFilter:
    tenant: str
    state: AckState | None = None
    agency: str | None = None
    level: int | None = None

    def query(self) -> Document:
        found: Document = {"event.tenant": self.tenant}
        if self.state is not None:  # an open one has no ack_state at all
            found["ack_state"] = ACKNOWLEDGED if self.state == ACKNOWLEDGED else None
        if self.agency is not None:
            found["agency"] = self.agency
        if self.level is not None:
            found["level"] = self.level
        return found


class EscalationAcks:
    def __init__(self, db: AsyncDatabase[Document],
                 escalations: AsyncCollection[Document]) -> None:
        self.escalations = escalations
        self.acks = db[ACKS]

    async def ensure_indexes(self) -> None:
        # Not (fired_at, _id): NX-27017 refuses every insert into a collection with _id in a
        # compound index ("JSON path error near '_id'").
        await self.escalations.create_index([("fired_at", DESCENDING)])
        await self.acks.create_index([("finished", ASCENDING)])

    async def escalation(self, escalation_id: str, tenant: str) -> Document | None:
        """The escalation, if it is this tenant's (another tenant's is as unknown)."""
        return await self.escalations.find_one({"_id": escalation_id, "event.tenant": tenant})

    async def page(self, where: EscalationFilter, *, offset: int,
                   limit: int) -> tuple[list[Document], bool]:
        """Escalations newest first, and whether more follow."""
        found = await self.escalations.find(where.query()).sort(NEWEST_FIRST).skip(
            offset).limit(limit + 1).to_list(None)
        return found[:limit], len(found) > limit

    async def acks_of(self, escalations: Sequence[Document]) -> dict[str, Document]:
        """The acknowledgements of these escalations' steps, by step id."""
        steps = sorted({step_of(e) for e in escalations})
        if not steps:
            return {}
        return {a["_id"]: a for a in await self.acks.find({"_id": {"$in": steps}}).to_list(None)}

    async def add(self, ack: AckDoc, outbox: Document) -> Document:
        """Store the step's acknowledgement once; returns the stored one (maybe an earlier,
        which stays: the first supervisor to acknowledge is who is recorded)."""
        await insert_new(self.acks, [{**ack, **outbox}])
        stored = await self.acks.find_one({"_id": ack["_id"]})
        assert stored is not None
        return stored

    async def mark_escalations(self, ack: AckDoc) -> None:
        """Every notice of the step so far shows as acknowledged."""
        await self.escalations.update_many(
            {"ticket_id": ack["ticket_id"], "assignment": ack["assignment"],
             "clock": ack["clock"], "level": ack["level"]},
            {"$set": {"ack_state": ACKNOWLEDGED, "ack_id": ack["_id"]}})

    async def set_finished(self, ack_id: str) -> None:
        await self.acks.update_one({"_id": ack_id}, {"$set": {"finished": "yes"}})

    async def unfinished(self, older_than: datetime, limit: int) -> list[Document]:
        """Acknowledgements whose request stopped part-way (a crash, the store lost mid-way)."""
        return await self.acks.find({"finished": "no", "acknowledged_at": {"$lt": older_than}}).limit(
            limit).to_list(None)
