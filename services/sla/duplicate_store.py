"""The SLA's ``duplicates`` collection (one ``DuplicateLink`` per duplicate, keyed by its own
ticket id) and the query for open tickets near a new complaint (a bounding box on the stored
coordinates; ``duplicates.nearest_primary`` measures the real distance)."""

from collections.abc import Sequence
from typing import cast

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.sla.duplicates import DuplicateLink, Probe, search_box, time_range
from services.sla.inbox import OPEN_STATUSES
from shared.mongo import Document, insert_new

DUPLICATES = "duplicates"
_CANDIDATES_MAX = 500  # a busy pothole: more open reports than this in one box is not plausible


class DuplicateLinks:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.links = db[DUPLICATES]
        self.tickets = db["tickets"]

    async def ensure_indexes(self) -> None:
        await self.links.create_index([("primary", ASCENDING)])
        await self.tickets.create_index([("tenant", ASCENDING), ("category", ASCENDING),
                                         ("status", ASCENDING)])

    async def open_near(self, probe: Probe) -> list[Document]:
        """Open tickets of the probe's tenant, agency and category inside its search box and
        time range (coarse: the caller measures)."""
        box = search_box(probe)
        low, high = time_range(probe)
        query: Document = {
            "tenant": probe.tenant, "category": probe.category, "agency": probe.agency,
            "status": {"$in": list(OPEN_STATUSES)},
            "location.lat": {"$gte": box["lat"][0], "$lte": box["lat"][1]},
            "location.lon": {"$gte": box["lon"][0], "$lte": box["lon"][1]},
            "submitted_at": {"$gte": low, "$lte": high}}
        fields = dict.fromkeys(("agency", "category", "location", "submitted_at", "status"), 1)
        return await self.tickets.find(query, fields).limit(_CANDIDATES_MAX).to_list(None)

    async def add(self, link: DuplicateLink) -> DuplicateLink:
        """Store the link once; returns the stored one (a redelivery keeps the first)."""
        await insert_new(self.links, [dict(link)])
        stored = await self.links.find_one({"_id": link["_id"]})
        assert stored is not None
        return cast(DuplicateLink, stored)

    async def get(self, ticket_id: str) -> DuplicateLink | None:
        found = await self.links.find_one({"_id": ticket_id})
        return None if found is None else cast(DuplicateLink, found)

    async def of_tickets(self, ticket_ids: Sequence[str]) -> list[DuplicateLink]:
        """The links of these ids that are duplicates."""
        found = await self.links.find({"_id": {"$in": list(ticket_ids)}}).to_list(None)
        return [cast(DuplicateLink, doc) for doc in found]

    async def of_primaries(self, primary_ids: Sequence[str]) -> list[DuplicateLink]:
        """Every duplicate linked to these tickets."""
        found = await self.links.find({"primary": {"$in": list(primary_ids)}}).to_list(None)
        return [cast(DuplicateLink, doc) for doc in found]
