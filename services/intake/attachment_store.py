"""Intake's attachments in MongoDB GridFS (bucket ``attachments``): each file a complaint came
with, as kept (stripped of metadata when the reporter's identity is hidden), and its
thumbnail, both tagged with the complaint's tracking number and tenant."""

import hashlib
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from gridfs import AsyncGridFSBucket, NoFile
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from typing_extensions import TypedDict  # pydantic reads it in responses (Python 3.11)

from services.intake.media import Checked
from shared.mongo import Document

BUCKET = "attachments"


class AttachmentMeta(TypedDict):
    """The GridFS file's ``metadata``."""

    ticket_id: str
    tenant: str
    kind: str  # "original" or "thumbnail"
    mime: str
    sha256: str
    stripped: bool
    original: str | None  # a thumbnail's original file id
    source: str  # "upload", "media_url" or "agency"
    purpose: str  # "complaint" (the citizen's) or "resolution" (the agency's photo of the fix)


COMPLAINT, RESOLUTION = "complaint", "resolution"


class Attachment(TypedDict):
    """One attachment as listed: never the file's original name (it may name the reporter)."""

    id: str
    mime: str
    size: int
    stripped: bool
    thumbnail_id: str | None
    purpose: str


class AttachmentStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
        self.files = db[f"{BUCKET}.files"]

    async def ensure_indexes(self) -> None:
        await self.files.create_index([("metadata.ticket_id", ASCENDING), ("metadata.kind", ASCENDING)])

    async def save(self, ticket_id: str, tenant: str, checked: Checked, *, source: str,
                   purpose: str = COMPLAINT) -> Attachment:
        """Store the file and its thumbnail. The same content twice for one complaint (a
        retried upload) is stored once."""
        digest = hashlib.sha256(checked.content).hexdigest()
        # The agency's photo of the fix is its own file even when the bytes are the citizen's.
        same_purpose = purpose if purpose == RESOLUTION else {"$ne": RESOLUTION}
        existing = await self.files.find_one({"metadata.ticket_id": ticket_id,
                                              "metadata.kind": "original", "metadata.sha256": digest,
                                              "metadata.purpose": same_purpose})
        if existing is not None:
            return await self._listed(existing)
        meta = AttachmentMeta(ticket_id=ticket_id, tenant=tenant, kind="original", mime=checked.mime,
                              sha256=digest, stripped=checked.stripped, original=None, source=source,
                              purpose=purpose)
        file_id = await self.bucket.upload_from_stream(f"{ticket_id}-{digest[:12]}", checked.content,
                                                       metadata=dict(meta))
        thumb_id = None
        if checked.thumbnail is not None:
            thumb = AttachmentMeta(ticket_id=ticket_id, tenant=tenant, kind="thumbnail",
                                   mime="image/jpeg", sha256=hashlib.sha256(checked.thumbnail).hexdigest(),
                                   stripped=True, original=str(file_id), source=source,
                                   purpose=purpose)
            thumb_id = await self.bucket.upload_from_stream(f"{ticket_id}-{digest[:12]}-thumb",
                                                            checked.thumbnail, metadata=dict(thumb))
        return Attachment(id=str(file_id), mime=checked.mime, size=len(checked.content),
                          stripped=checked.stripped, thumbnail_id=str(thumb_id) if thumb_id else None,
                          purpose=purpose)

    async def _listed(self, doc: Document) -> Attachment:
        thumb = await self.files.find_one({"metadata.original": str(doc["_id"]),
                                           "metadata.kind": "thumbnail"})
        meta: dict[str, Any] = doc["metadata"]
        return Attachment(id=str(doc["_id"]), mime=meta["mime"], size=int(doc["length"]),
                          stripped=bool(meta.get("stripped")),
                          thumbnail_id=str(thumb["_id"]) if thumb else None,
                          purpose=str(meta.get("purpose") or COMPLAINT))

    async def of_ticket(self, ticket_id: str, tenant: str) -> list[Attachment]:
        cursor = self.files.find({"metadata.ticket_id": ticket_id, "metadata.tenant": tenant,
                                  "metadata.kind": "original"}).sort("uploadDate", ASCENDING)
        return [await self._listed(doc) for doc in await cursor.to_list(None)]

    async def read(self, ticket_id: str, tenant: str, file_id: str) -> tuple[bytes, str] | None:
        """A file's bytes and type, only when it belongs to this complaint of this tenant."""
        try:
            oid = ObjectId(file_id)
        except InvalidId:
            return None
        doc = await self.files.find_one({"_id": oid, "metadata.ticket_id": ticket_id,
                                         "metadata.tenant": tenant})
        if doc is None:
            return None
        try:
            stream = await self.bucket.open_download_stream(oid)
        except NoFile:
            return None
        return await stream.read(), str(doc["metadata"]["mime"])
