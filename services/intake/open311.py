"""Open311 GeoReport v2 on intake's port (``/open311/v2/``): the services a tenant's rulebook
offers, requests posted by any GeoReport v2 client into the same pipeline as ``POST
/v1/complaints``, and their progress from intake's tracking copy. JSON or XML by the path's
extension; refusals in the specification's shape.

Every route is public in the permission table: GeoReport v2 carries its key in the form or
query (``api_key``), not in a header, so the handlers check it. Reads answer anyone; the
jurisdiction's key adds the text, address and media of complaints that are not confidential.
"""

import hashlib
import logging
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile

from services.intake import georeport
from services.intake.api import fetch_media
from services.intake.attachments import Attachments
from services.intake.domain import hash_tracking_code, idempotency_key, new_tracking_code
from services.intake.flows import Intake, Submission
from services.intake.georeport import GeoReportError, Service
from services.intake.media import Checked, MediaRefused
from services.intake.store import complaint_of
from shared.auth import Access, Authenticator, request_id_of
from shared.contracts import ATTACHMENTS_MAX, utc_now
from shared.limits import limits_of, rate_limit, too_many
from shared.mongo import Document
from shared.permissions import Principal, Scope
from shared.tenants import Tenant
from shared.yamlfile import Stamp, file_stamps, read_yaml

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
OPEN311 = "open311"  # the stored complaint's field holding the request's token and service


class Catalogues:
    """Each tenant's services, read from its rulebook file and read again when it changes."""

    def __init__(self) -> None:
        self._cached: dict[Path, tuple[Stamp, list[Service]]] = {}

    def services(self, tenant: Tenant) -> list[Service]:
        stamp = file_stamps((tenant.rulebook,))
        cached = self._cached.get(tenant.rulebook)
        if cached is None or cached[0] != stamp:
            cached = (stamp, georeport.services_of(read_yaml(tenant.rulebook) or {}))
            self._cached[tenant.rulebook] = cached
        return cached[1]

    def service(self, tenant: Tenant, code: str) -> Service | None:
        return next((s for s in self.services(tenant) if s.service_code == code), None)


def _intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


def _format(fmt: str) -> str:
    if fmt not in georeport.FORMATS:
        raise GeoReportError(404, f"format: .{fmt[:10]} is not served (use .json or .xml)")
    return fmt


def _answer(fmt: str, root: str, value: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(georeport.to_xml(root, value), status_code=status,
                        media_type=georeport.FORMATS["xml"])
    return JSONResponse(value, status_code=status)


def _tenant(request: Request, jurisdiction_id: str | None) -> Tenant:
    registry = _intake(request).registry
    if jurisdiction_id is None:
        return registry.get(registry.home)
    if jurisdiction_id not in registry:
        raise GeoReportError(404, "jurisdiction_id: not served by this endpoint")
    return registry.get(jurisdiction_id)


async def _key_holder(request: Request, api_key: str | None) -> Principal | None:
    """The channel key's holder, None when no key is given; a wrong key is refused (403)."""
    if not api_key:
        return None
    auth: Authenticator = request.app.state.auth
    principal = await auth.from_key(api_key)
    channel = _intake(request).settings.open311_channel
    if principal is None or principal.kind != "channel" or principal.name != channel:
        raise GeoReportError(403, f"api_key: not a valid key of the {channel} channel")
    return principal


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["open311"])
    _discovery_routes(router)
    _service_routes(router)
    _request_routes(router)
    return router


def _discovery_routes(router: APIRouter) -> None:
    @router.get("/discovery.{fmt}", summary="GeoReport v2 discovery")
    async def discovery(fmt: str, request: Request) -> Response:
        """Where this endpoint is and what it speaks."""
        fmt = _format(fmt)
        base = str(request.base_url).rstrip("/") + PREFIX + "/"
        return _answer(fmt, "discovery", {
            "changeset": "2026-11-30T00:00:00Z", "contact": "Disposisi intake",
            "key_service": "The city's Disposisi administrator issues keys of the open311 channel.",
            "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2",
                           "url": base, "changeset": "2026-11-30T00:00:00Z", "type": "production",
                           "formats": list(georeport.FORMATS.values())}]})

    _ = discovery


def _service_routes(router: APIRouter) -> None:
    @router.get("/services.{fmt}", summary="GeoReport v2 service list")
    async def services(fmt: str, request: Request, jurisdiction_id: str | None = None) -> Response:
        """One service per routing category of the jurisdiction's rulebook."""
        fmt = _format(fmt)
        tenant = _tenant(request, jurisdiction_id)
        listed = [s.as_open311() for s in request.app.state.open311.services(tenant)]
        return _answer(fmt, "services", listed)

    @router.get("/services/{service_code}.{fmt}", summary="GeoReport v2 service definition")
    async def service_definition(service_code: str, fmt: str, request: Request,
                                 jurisdiction_id: str | None = None) -> Response:
        """The attributes a request of this service takes."""
        fmt = _format(fmt)
        service = request.app.state.open311.service(_tenant(request, jurisdiction_id), service_code)
        if service is None:
            raise GeoReportError(404, "service_code: no such service")
        return _answer(fmt, "service_definition", georeport.service_definition(service))

    _ = (services, service_definition)


def _request_routes(router: APIRouter) -> None:
    @router.post("/requests.{fmt}", summary="GeoReport v2 create a service request",
                 dependencies=[Depends(rate_limit("rate_limit_submit"))])
    async def post_request(fmt: str, request: Request, background: BackgroundTasks) -> Response:
        """Form-encoded (or multipart) ``api_key``, ``service_code``, a location and the
        description: stored, then published as ``POST /v1/complaints`` does. Answers the new
        ``service_request_id`` with a ``token`` and, in ``service_notice``, the citizen's
        tracking code (shown once)."""
        fmt = _format(fmt)
        form = await request.form()
        return _answer(fmt, "service_requests", [await _accept(request, background, form)])

    @router.get("/requests.{fmt}", summary="GeoReport v2 service requests",
                dependencies=[Depends(rate_limit("rate_limit_tracking"))])
    async def get_requests(fmt: str, request: Request) -> Response:
        """Newest first; filters ``service_request_id`` (comma list, overrides the others),
        ``service_code``, ``start_date``, ``end_date`` (W3C, at most the window's days apart)
        and ``status`` (open, closed)."""
        fmt = _format(fmt)
        found = await _requests(request, dict(request.query_params))
        return _answer(fmt, "service_requests", found)

    @router.get("/requests/{service_request_id}.{fmt}", summary="GeoReport v2 one service request",
                dependencies=[Depends(rate_limit("rate_limit_tracking"))])
    async def get_request(service_request_id: str, fmt: str, request: Request) -> Response:
        fmt = _format(fmt)
        query = {**request.query_params, "service_request_id": service_request_id}
        found = await _requests(request, query)
        if not found:
            raise GeoReportError(404, "service_request_id: no such request")
        return _answer(fmt, "service_requests", found)

    @router.get("/tokens/{token}.{fmt}", summary="GeoReport v2 request id from a token",
                dependencies=[Depends(rate_limit("rate_limit_tracking"))])
    async def get_token(token: str, fmt: str, request: Request) -> Response:
        fmt = _format(fmt)
        doc = await _intake(request).complaints.by_open311_token(token[:64])
        if doc is None:
            raise GeoReportError(404, "token: no such token")
        return _answer(fmt, "service_requests",
                       [{"service_request_id": doc["ticket_id"], "token": token}])

    _ = (post_request, get_requests, get_request, get_token)


async def _accept(request: Request, background: BackgroundTasks, form: FormData) -> dict[str, Any]:
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    api_key = fields.get("api_key") or request.headers.get("x-api-key")
    holder = await _key_holder(request, api_key)
    if holder is None or api_key is None:
        raise GeoReportError(403, "api_key: required to post a request")
    # The key's own limit, as X-API-Key has on POST /v1/complaints (GeoReport's is in the form).
    limits = limits_of(request)
    identity = hashlib.sha256(api_key.encode(errors="replace")).hexdigest()[:32]
    wait = limits.hit("rate_limit_submit_per_key", "key", identity)
    if wait is not None:
        raise too_many(wait)
    jurisdiction = fields.get("jurisdiction_id")
    if jurisdiction is not None and jurisdiction != holder.tenant:
        raise GeoReportError(403, "jurisdiction_id: this api_key posts for its own jurisdiction only")
    tenant = _intake(request).registry.get(holder.tenant)
    code = fields.get("service_code") or ""
    service = request.app.state.open311.service(tenant, code)
    if service is None:
        raise GeoReportError(400, "service_code: no such service (see services.json)")
    submission = georeport.submission_of(fields, service)
    uploads = [v for k, v in form.multi_items() if k == "media" and isinstance(v, UploadFile)]
    # Files are checked before the request is stored: a refused photo refuses the request
    # whole, so a client's corrected retry does not leave a first copy behind.
    media = await _checked_media(request, uploads, submission.anonymous or submission.confidential)
    intake = _intake(request)
    header_key = request.headers.get("idempotency-key")
    key = idempotency_key(submission, tenant=tenant.id,
                          header_key=header_key[:128] if header_key else None)
    tracking_code = new_tracking_code()
    token = secrets.token_urlsafe(12)
    access = Access(holder, Scope.TENANT)
    stored = Submission(
        submission, key, actor=access.audit_actor, request_id=request_id_of(request),
        tracking_code=tracking_code, tenant=holder.tenant,
        extra={OPEN311: {"token": token, "service_code": service.service_code,
                         "service_name": service.service_name}})
    [doc] = await intake.store([stored])
    if doc["fingerprint"] != stored.fingerprint:
        raise GeoReportError(409, "Idempotency-Key: used before for another request")
    if doc["duplicate"]:
        await intake.complaints.add_tracking_code(doc["_id"], hash_tracking_code(tracking_code))
    for checked in media:
        await request.app.state.attachments.keep(doc, checked)
    intake.publish_soon([doc])  # stored: if the broker is down, the outbox sweep publishes later
    fetch_media(request, background, doc)
    ticket_id = doc["ticket_id"]
    return {"service_request_id": ticket_id, "token": doc[OPEN311]["token"], "account_id": None,
            "service_notice": f"Nomor pelacakan {ticket_id}, kode pelacakan {tracking_code}: "
                              "simpan kode ini (hanya ditampilkan sekali) untuk membaca dan "
                              "menjawab laporan."}


async def _checked_media(request: Request, uploads: list[UploadFile], hide_identity: bool) -> list[Checked]:
    attachments: Attachments = request.app.state.attachments
    if len(uploads) > ATTACHMENTS_MAX:
        raise GeoReportError(400, f"media: at most {ATTACHMENTS_MAX} files")
    checked = []
    for number, upload in enumerate(uploads, start=1):
        content = await upload.read(attachments.settings.attachment_max_bytes + 1)
        try:
            checked.append(await attachments.inspect(content, hide_identity=hide_identity))
        except MediaRefused as refused:
            raise GeoReportError(400, f"media {number}: {refused}") from None
    return checked


async def _requests(request: Request, query: dict[str, str]) -> list[dict[str, Any]]:
    intake = _intake(request)
    settings = intake.settings
    tenant = _tenant(request, query.get("jurisdiction_id"))
    holder = await _key_holder(request, query.get("api_key"))
    detailed = holder is not None and holder.tenant == tenant.id
    ids = georeport.comma_list(query.get("service_request_id"))
    if ids:
        docs = await intake.complaints.by_tickets(ids[:settings.open311_requests_max], tenant.id)
        codes, statuses = None, None
    else:
        docs = await _in_window(intake, tenant, query)
        codes = georeport.comma_list(query.get("service_code"))
        statuses = georeport.comma_list(query.get("status"))
        unknown = set(statuses) - {"open", "closed"}
        if unknown:
            raise GeoReportError(400, "status: give open, closed or both (comma separated)")
    tickets = await intake.tracking.many([d["ticket_id"] for d in docs], tenant.id)
    zone = ZoneInfo(tenant.timezone)
    found = [georeport.service_request(complaint_of(d), d, tickets.get(d["ticket_id"]), zone=zone,
                                       detailed=detailed) for d in docs]
    return [r for r in found if georeport.matches(r, codes=codes, statuses=statuses)][
        :settings.open311_requests_max]


async def _in_window(intake: Intake, tenant: Tenant, query: dict[str, str]) -> list[Document]:
    window = timedelta(days=intake.settings.open311_window_days)
    start = georeport.parse_w3c("start_date", query.get("start_date"))
    end = georeport.parse_w3c("end_date", query.get("end_date"))
    try:
        end = end or (start + window if start else utc_now())
        start = start or end - window
    except OverflowError:  # a date at the calendar's very edge, e.g. 0001-01-01
        raise GeoReportError(400, "start_date/end_date: out of range") from None
    if end < start:
        raise GeoReportError(400, "end_date: before start_date")
    if end - start > window:
        raise GeoReportError(400, f"start_date/end_date: at most {window.days} days apart")
    # Filters on status and service apply after the join with the tracking copy: read more.
    return await intake.complaints.submitted_between(
        tenant.id, start, end, limit=intake.settings.open311_requests_max * 5)


def install(app: FastAPI) -> None:
    """The routes, the catalogues and the specification's error shape for them."""
    app.state.open311 = Catalogues()
    app.include_router(build_router())

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, GeoReportError)
        fmt = "xml" if request.url.path.endswith(".xml") else "json"
        log.info("open311 %s %s refused (%d): %s", request.method, request.url.path,
                 error.status, error.description)
        return _answer(fmt, "errors", georeport.errors_body(error), status=error.status)

    app.add_exception_handler(GeoReportError, refused)
