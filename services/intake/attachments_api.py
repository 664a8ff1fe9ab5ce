"""Attachments over HTTP: a channel uploads files to a complaint it submitted; the citizen
with the tracking code, and the agency holding the ticket, list and read them."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Request, Response, UploadFile, status
from pydantic import BaseModel

from services.intake.api import TrackingCode, TrackingCodeQuery, _complaint_for, _intake
from services.intake.attachment_store import RESOLUTION, Attachment
from services.intake.attachments import Attachments
from services.intake.media import IMAGE_FORMATS, MediaRefused
from shared.auth import access_of
from shared.contracts import ATTACHMENTS_MAX
from shared.limits import rate_limit
from shared.mongo import Document


class AttachmentList(BaseModel):
    ticket_id: str
    attachments: list[Attachment]


def _attachments(request: Request) -> Attachments:
    found: Attachments = request.app.state.attachments
    return found


def is_upload(method: str, path: str) -> bool:
    """Requests that carry files (a larger body limit)."""
    return method == "POST" and (path.endswith("/attachments") or path.startswith("/open311/v2/requests."))


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["attachments"])
    _channel_routes(router)
    _citizen_routes(router)
    _agency_routes(router)
    return router


async def keep_uploads(request: Request, doc: Document, files: list[UploadFile]) -> list[Attachment]:
    """Check and store uploaded files of a stored complaint; 413/415 naming the file's number."""
    attachments = _attachments(request)
    if len(files) > ATTACHMENTS_MAX:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"file: at most {ATTACHMENTS_MAX} files per complaint")
    kept = []
    for number, upload in enumerate(files, start=1):
        content = await upload.read(attachments.settings.attachment_max_bytes + 1)
        try:
            kept.append(await attachments.add(doc, content))
        except MediaRefused as refused:
            code = status.HTTP_413_CONTENT_TOO_LARGE if "larger" in str(refused) \
                else status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
            raise HTTPException(code, f"file {number}: {refused}") from None
    return kept


def _channel_routes(router: APIRouter) -> None:
    @router.post("/complaints/{ticket_id}/attachments", status_code=status.HTTP_201_CREATED,
                 response_model=AttachmentList,
                 dependencies=[Depends(rate_limit("rate_limit_submit",
                                                  per_key="rate_limit_submit_per_key"))],
                 responses={404: {"description": "No complaint of the key's tenant by this number"},
                            413: {"description": "A file is too large"},
                            415: {"description": "A file's content is not an accepted type"}})
    async def upload(ticket_id: str, request: Request,
                     file: Annotated[list[UploadFile], File(description="One or more files.")]
                     ) -> AttachmentList:
        """Photos or documents of a complaint, sent by the channel that took it (multipart
        ``file`` parts). The type is read from the content; images of anonymous or
        confidential complaints lose their EXIF (GPS) data; images get a thumbnail."""
        doc = await _intake(request).complaints.by_ticket(ticket_id)
        if doc is None or doc.get("tenant") != access_of(request).tenant:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint with this tracking number")
        await keep_uploads(request, doc, file)
        listed = await _attachments(request).store.of_ticket(doc["ticket_id"], doc["tenant"])
        return AttachmentList(ticket_id=doc["ticket_id"], attachments=listed)

    _ = upload


def _citizen_routes(router: APIRouter) -> None:
    @router.get("/complaints/{ticket_id}/attachments", response_model=AttachmentList,
                dependencies=[Depends(rate_limit("rate_limit_tracking"))],
                responses={404: {"description": "Unknown tracking number, or a wrong tracking code"}})
    async def list_for_citizen(ticket_id: str, request: Request, code: TrackingCode = None,
                               code_query: TrackingCodeQuery = None) -> AttachmentList:
        """The complaint's files, with the tracking code."""
        doc = await _complaint_for(request, ticket_id, code or code_query, required=True)
        listed = await _attachments(request).store.of_ticket(doc["ticket_id"], doc["tenant"])
        return AttachmentList(ticket_id=doc["ticket_id"], attachments=listed)

    @router.get("/complaints/{ticket_id}/attachments/{attachment_id}",
                dependencies=[Depends(rate_limit("rate_limit_tracking"))],
                responses={200: {"content": {"image/jpeg": {}, "application/pdf": {}}},
                           404: {"description": "Unknown file, number, or a wrong tracking code"}})
    async def read_for_citizen(ticket_id: str, attachment_id: str, request: Request,
                               code: TrackingCode = None, code_query: TrackingCodeQuery = None) -> Response:
        doc = await _complaint_for(request, ticket_id, code or code_query, required=True)
        return await _file(request, doc, attachment_id)

    _ = (list_for_citizen, read_for_citizen)


def _agency_routes(router: APIRouter) -> None:
    @router.get("/tickets/{ticket_id}/attachments", response_model=AttachmentList,
                responses={404: {"description": "No such ticket in the caller's scope"}})
    async def list_for_agency(ticket_id: str, request: Request) -> AttachmentList:
        """The ticket's files, for the agency that holds it (and the triage desk, supervisors)."""
        doc = await _ticket_in_scope(request, ticket_id)
        listed = await _attachments(request).store.of_ticket(doc["ticket_id"], doc["tenant"])
        return AttachmentList(ticket_id=doc["ticket_id"], attachments=listed)

    @router.get("/tickets/{ticket_id}/attachments/{attachment_id}",
                responses={200: {"content": {"image/jpeg": {}, "application/pdf": {}}},
                           404: {"description": "No such file or ticket in the caller's scope"}})
    async def read_for_agency(ticket_id: str, attachment_id: str, request: Request) -> Response:
        doc = await _ticket_in_scope(request, ticket_id)
        return await _file(request, doc, attachment_id)

    @router.post("/tickets/{ticket_id}/attachments", status_code=status.HTTP_201_CREATED,
                 response_model=AttachmentList,
                 responses={404: {"description": "No such ticket in the caller's scope"},
                            413: {"description": "The photo is too large"},
                            415: {"description": "The file is not a photo (JPEG, PNG, WebP)"}})
    async def add_resolution_photo(
            ticket_id: str, request: Request,
            file: Annotated[UploadFile, File(description="One photo of the fixed problem.")],
    ) -> AttachmentList:
        """The agency's photo of the fixed problem (``purpose: resolution``), sent with or just
        before resolving. Its metadata (EXIF: GPS, time, the phone) is always removed: the
        citizen sees it with the tracking code."""
        doc = await _ticket_in_scope(request, ticket_id)
        attachments = _attachments(request)
        content = await file.read(attachments.settings.attachment_max_bytes + 1)
        try:
            checked = await attachments.inspect(content, hide_identity=True)
            if checked.mime not in IMAGE_FORMATS:
                raise MediaRefused(f"the content is {checked.mime}; a photo is expected "
                                   f"({', '.join(sorted(IMAGE_FORMATS))})")
        except MediaRefused as refused:
            code = status.HTTP_413_CONTENT_TOO_LARGE if "larger" in str(refused) \
                else status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
            raise HTTPException(code, f"file: {refused}") from None
        await attachments.keep(doc, checked, source="agency", purpose=RESOLUTION)
        listed = await attachments.store.of_ticket(doc["ticket_id"], doc["tenant"])
        return AttachmentList(ticket_id=doc["ticket_id"], attachments=listed)

    _ = (list_for_agency, read_for_agency, add_resolution_photo)


async def _ticket_in_scope(request: Request, ticket_id: str) -> Document:
    """The complaint, when its ticket is in the caller's tenant and scope (intake's tracking
    copy says which agency holds it); else 404, as for an unknown ticket."""
    access = access_of(request)
    intake = _intake(request)
    ticket = await intake.tracking.get(ticket_id, access.tenant)
    access.require_ticket(ticket_id, ticket.get("agency") if ticket else None)
    doc = await intake.complaints.by_ticket(ticket_id)
    if doc is None or doc.get("tenant") != access.tenant:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
    return doc


async def _file(request: Request, doc: Document, attachment_id: str) -> Response:
    found = await _attachments(request).store.read(doc["ticket_id"], doc["tenant"], attachment_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such attachment")
    content, mime = found
    # Never rendered as a page of this origin, whatever the bytes turn out to be.
    return Response(content, media_type=mime, headers={
        "X-Content-Type-Options": "nosniff", "Content-Disposition": "attachment",
        "Cache-Control": "private, no-store"})
