"""The connector's own collections: the LAPOR! reports it knows (by ticket) and the status
updates for LAPOR! (pending until exported). It reads no other service's collections: what
it knows of tickets comes from intake's answers and the events.

An update is inserted by an id derived from its step, so a redelivered or repeated
``ticket.changed`` adds nothing; exporting marks updates with the export's id."""

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.lapor.domain import ReportDoc, UpdateDoc
from shared.mongo import Document, insert_new

REPORTS = "lapor_reports"
UPDATES = "lapor_updates"


def report_key(tenant: str, ticket_id: str) -> str:
    return f"{tenant}:{ticket_id}"


class LaporStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.reports: AsyncCollection[Document] = db[REPORTS]
        self.updates: AsyncCollection[Document] = db[UPDATES]

    async def ensure_indexes(self) -> None:
        await self.reports.create_index([("tenant", ASCENDING), ("lapor_id", ASCENDING)])
        await self.updates.create_index([("tenant", ASCENDING), ("exported_at", ASCENDING),
                                         ("at", ASCENDING)])

    # --- reports ---------------------------------------------------------------------------

    async def note_report(self, report: ReportDoc) -> None:
        """Remember a LAPOR! report's ticket; a field already known is not cleared by a
        source that lacks it (the events do not carry LAPOR!'s tracking number)."""
        known = {k: v for k, v in report.items() if v is not None and k != "_id"}
        await self.reports.update_one({"_id": report["_id"]}, {"$set": known}, upsert=True)

    async def report(self, tenant: str, ticket_id: str) -> ReportDoc | None:
        found = await self.reports.find_one({"_id": report_key(tenant, ticket_id)})
        return None if found is None else cast(ReportDoc, found)

    async def known_ids(self, tenant: str, lapor_ids: Sequence[str]) -> set[str]:
        if not lapor_ids:
            return set()
        found = await self.reports.find({"tenant": tenant,
                                         "lapor_id": {"$in": sorted(set(lapor_ids))}}).to_list(None)
        return {str(r["lapor_id"]) for r in found}

    # --- updates ---------------------------------------------------------------------------

    async def add_updates(self, updates: Sequence[UpdateDoc]) -> int:
        return await insert_new(self.updates, [dict(u) for u in updates])

    async def pending(self, tenant: str, *, limit: int) -> list[UpdateDoc]:
        found = await self.updates.find({"tenant": tenant, "exported_at": None}).sort(
            [("at", ASCENDING), ("_id", ASCENDING)]).limit(limit).to_list(None)
        return [cast(UpdateDoc, u) for u in found]

    async def listed(self, tenant: str, *, exported: bool | None, offset: int,
                     limit: int) -> tuple[list[UpdateDoc], bool]:
        where: Document = {"tenant": tenant}
        if exported is not None:
            where["exported_at"] = {"$ne": None} if exported else None
        found = await self.updates.find(where).sort([("at", ASCENDING), ("_id", ASCENDING)]).skip(
            offset).limit(limit + 1).to_list(None)
        return [cast(UpdateDoc, u) for u in found[:limit]], len(found) > limit

    async def mark_exported(self, ids: Sequence[str], *, export_id: str, at: datetime) -> int:
        if not ids:
            return 0
        result = await self.updates.update_many(
            {"_id": {"$in": list(ids)}, "exported_at": None},
            {"$set": {"exported_at": at, "export_id": export_id}})
        return int(result.modified_count)
