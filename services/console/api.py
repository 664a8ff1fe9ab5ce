"""The console's pages: sign-in, the agency's inbox (live over server-sent events), a ticket
with its actions, the citizen's tracking page and the public complaint form. Every read and
action goes to intake or the SLA API with the caller's own credentials."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import jwt
from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sse_starlette import EventSourceResponse

from services.console.citizen import citizen_routes
from services.console.dashboard import dashboard_routes
from services.console.desk import triage_routes
from services.console.domain import (
    CLOCK_STATES,
    STATUS_LABELS,
    action_label,
    form_errors,
    home_page,
    page_count,
)
from services.console.flows import Backends, SignedOut, idempotency_key
from services.console.i18n import COOKIE as LANGUAGE_COOKIE
from services.console.i18n import LANGUAGES, gettext
from services.console.live import live_events
from services.console.replies import ReplyTemplates
from services.console.review import review_routes
from services.console.session import CSRF_FIELD, Session, Sessions, check_csrf
from services.router.rulebook import Rulebook
from services.sla.updates import ALLOWED
from shared.contracts import utc_now
from shared.permissions import Principal
from shared.settings import Settings

# Each handler defaults it to "": a form without the token is then the same 403 as one with a
# wrong token (not a 422 that would name the field).
CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]
FILTERS = ("status", "due", "category", "kelurahan", "q", "mine")
OFFICER_ROLES = ("officer", "agency_head")


@dataclass
class Console:
    settings: Settings
    backends: Backends
    sessions: Sessions
    templates: Jinja2Templates
    rulebook: Rulebook
    replies: ReplyTemplates = field(default_factory=lambda: ReplyTemplates({}))

    def render(self, request: Request, session: Session, name: str, context: dict[str, Any],
               status_code: int = 200) -> HTMLResponse:
        flash, session.flash = session.flash, None
        response = self.templates.TemplateResponse(request, name, {
            "session": session, "user": session.user, "csrf": session.csrf, "flash": flash,
            "now": utc_now(), "timezone": self.settings.timezone, **context},
            status_code=status_code)
        self.sessions.write(request, response, session)
        return response

    def redirect(self, request: Request, session: Session, url: str) -> Response:
        response = RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
        self.sessions.write(request, response, session)
        return response


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _inbox_params(filters: dict[str, str], page: int, per_page: int) -> dict[str, str | int]:
    return {**{k: v for k, v in filters.items() if v}, "page": page, "per_page": per_page}


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    _sign_in_routes(router)
    _language_routes(router)
    _inbox_routes(router)
    _ticket_routes(router)
    citizen_routes(router)
    triage_routes(router)
    review_routes(router)
    dashboard_routes(router)
    return router


# --- sign-in --------------------------------------------------------------------------------

def _sign_in_routes(router: APIRouter) -> None:
    @router.get("/")
    async def home(request: Request) -> Response:
        console = _console(request)
        session = console.sessions.read(request)
        return console.redirect(request, session, home_page((session.user or {}).get("role"))
                                if session.signed_in else "/login")

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        console = _console(request)
        return console.render(request, console.sessions.read(request), "login.html", {"errors": []})

    @router.post("/login")
    async def login(request: Request, csrf: CsrfField = "", username: Annotated[str, Form()] = "",
                    password: Annotated[str, Form()] = "") -> Response:
        console = _console(request)
        session = console.sessions.read(request)
        check_csrf(session, csrf)
        errors = [{"field": name, "problem": gettext("wajib diisi")}
                  for name, value in (("username", username), ("password", password)) if not value]
        if not errors:
            answer = await console.backends.sign_in(username, password)
            if answer.ok:
                token = answer.body["access_token"]
                claims = jwt.decode(token, options={"verify_signature": False})  # the API verifies
                session.token = token
                session.user = {"username": claims.get("sub"), "role": claims.get("role"),
                                "agency": claims.get("agency"), "tenant": claims.get("tenant")}
                return console.redirect(request, session, home_page(session.user["role"]))
            errors = [{"field": "username", "problem": gettext(
                "Nama pengguna atau kata sandi salah, atau akun terkunci sementara.")
                if answer.status in (400, 401) else
                gettext("Terlalu banyak percobaan; coba lagi nanti.") if answer.status == 429 else
                gettext("Layanan masuk tidak menjawab (%(status)s).") % {"status": answer.status}}]
        return console.render(request, session, "login.html",
                              {"errors": errors, "username": username}, status_code=400)

    @router.post("/logout")
    async def logout(request: Request, csrf: CsrfField = "") -> Response:
        console = _console(request)
        session = console.sessions.read(request)
        check_csrf(session, csrf)
        fresh = Session(flash=gettext("Anda sudah keluar."))
        return console.redirect(request, fresh, "/login")

    _ = (home, login_page, login, logout)


# --- the language switch -------------------------------------------------------------------------

LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def _language_routes(router: APIRouter) -> None:
    @router.get("/language/{code}")
    async def choose_language(code: str, back_to: Annotated[str, Query(alias="next")] = "/"
                              ) -> Response:
        """The switch on every page: remember the language in a cookie, back to the page."""
        # only a page of the console: never a redirect to another site
        local = back_to.startswith("/") and not back_to.startswith("//") and "\\" not in back_to
        back = back_to if local else "/"
        response = RedirectResponse(back, status_code=status.HTTP_303_SEE_OTHER)
        if code in LANGUAGES:
            response.set_cookie(LANGUAGE_COOKIE, code, max_age=LANGUAGE_COOKIE_SECONDS,
                                httponly=True, samesite="lax", path="/")
        return response

    _ = choose_language


def _signed_in(request: Request) -> tuple[Console, Session] | Response:
    console = _console(request)
    session = console.sessions.read(request)
    if not session.signed_in:
        return console.redirect(request, session, "/login")
    return console, session


def _signed_out(request: Request, console: Console) -> Response:
    session = Session(flash=gettext("Sesi berakhir; silakan masuk lagi."))
    return console.redirect(request, session, "/login")


# --- the inbox --------------------------------------------------------------------------------

def _inbox_routes(router: APIRouter) -> None:
    @router.get("/inbox")
    async def inbox(request: Request, page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
        found = _signed_in(request)
        if isinstance(found, Response):
            return found
        console, session = found
        filters = {k: request.query_params.get(k, "")[:100] for k in FILTERS}
        params = _inbox_params(filters, page, console.settings.console_page_size)
        assert session.token is not None
        try:
            listing = await console.backends.inbox(session.token, params)
        except SignedOut:
            return _signed_out(request, console)
        more = bool(listing.get("total_capped"))  # counted up to the SLA's cap: "4+" pages
        pages = page_count(listing["total"], more, page=page, shown=len(listing["tickets"]),
                           per_page=console.settings.console_page_size)
        query = urlencode({k: v for k, v in filters.items() if v})
        return console.render(request, session, "inbox.html", {
            "listing": listing, "filters": filters, "page": page, "pages": pages, "more": more,
            "query": query, "live_url": f"/inbox/live?{urlencode(params)}",
            "clock_states": CLOCK_STATES, "statuses": STATUS_LABELS,
            "categories": sorted({r.category for a in console.rulebook.agencies for r in a.rules
                                  if r.category})})

    @router.get("/inbox/live")
    async def inbox_live(request: Request) -> Response:
        """Server-sent events: the inbox's rows again whenever the page's tickets changed, so
        an arriving, withdrawn or changed ticket shows without a reload."""
        found = _signed_in(request)
        if isinstance(found, Response):
            return Response(status_code=status.HTTP_401_UNAUTHORIZED)
        console, session = found
        params: dict[str, str | int] = {k: v[:100] for k, v in request.query_params.items()
                                        if k in (*FILTERS, "page", "per_page")}
        assert session.token is not None
        token = session.token
        rows = console.templates.get_template("_rows.html")
        count = console.templates.get_template("_count.html")

        async def fetch() -> dict[str, Any] | None:
            return await console.backends.inbox(token, params)

        def render(listing: dict[str, Any], now: datetime) -> dict[str, str]:
            context = {"listing": listing, "now": now, "timezone": console.settings.timezone}
            return {"rows": rows.render(context), "count": count.render(context)}

        return EventSourceResponse(live_events(request, fetch, render,
                                               console.settings.console_live_poll_seconds))

    _ = (inbox, inbox_live)


# --- one ticket ---------------------------------------------------------------------------------

ACTION_FIELDS = {"acknowledged": (), "responded": ("note",), "needs_info": ("note",),
                 "resolved": ("note",), "rejected": ("reason", "suggested_agency"), "note": ("note",),
                 "picked_up": ()}
TEMPLATE_ACTIONS = ("responded", "needs_info", "resolved", "note")


def _ticket_routes(router: APIRouter) -> None:
    @router.get("/tickets/{ticket_id}")
    async def ticket_page(request: Request, ticket_id: str) -> Response:
        found = _signed_in(request)
        if isinstance(found, Response):
            return found
        console, session = found
        return await _show_ticket(request, console, session, ticket_id, errors=[])

    @router.get("/tickets/{ticket_id}/attachments/{attachment_id}")
    async def ticket_attachment(request: Request, ticket_id: str, attachment_id: str) -> Response:
        """A file of the ticket (or its thumbnail), fetched from intake with the officer's
        token: the browser never holds the token, so images come through the console."""
        found = _signed_in(request)
        if isinstance(found, Response):
            return found
        console, session = found
        assert session.token is not None
        try:
            file = await console.backends.attachment(session.token, ticket_id, attachment_id)
        except SignedOut:
            return _signed_out(request, console)
        if file is None:
            return Response(status_code=404)
        content, mime = file
        return Response(content, media_type=mime, headers={
            "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox"})

    @router.post("/tickets/{ticket_id}/actions")
    async def ticket_action(request: Request, ticket_id: str, csrf: CsrfField = "",
                            action: Annotated[str, Form()] = "", nonce: Annotated[str, Form()] = "",
                            note: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
                            suggested_agency: Annotated[str, Form()] = "",
                            template: Annotated[str, Form()] = "",
                            photo: Annotated[UploadFile | None, File()] = None) -> Response:
        found = _signed_in(request)
        if isinstance(found, Response):
            return found
        console, session = found
        check_csrf(session, csrf)
        values = {"note": note.strip(), "reason": reason.strip(),
                  "suggested_agency": suggested_agency.strip()}
        errors = _fill_from_template(console, session, action, template.strip(), values)
        errors = errors or _action_problems(action, values)
        if not errors and action == "resolved" and photo is not None:
            try:
                errors = await _keep_resolution_photo(console, session, ticket_id, photo)
            except SignedOut:
                return _signed_out(request, console)
        if not errors:
            update = {"action": action, **{k: values[k] for k in ACTION_FIELDS[action] if values[k]}}
            assert session.token is not None
            try:
                answer = await console.backends.act(session.token, ticket_id, update,
                                                    idempotency_key=idempotency_key(nonce))
            except SignedOut:
                return _signed_out(request, console)
            if answer.ok:
                session.flash = gettext("Tindakan tercatat: %(action)s.") % {"action": _done_label(action)}
                return console.redirect(request, session, f"/tickets/{ticket_id}")
            errors = ([{"field": "", "problem": str(answer.body.get("detail"))}]
                      if answer.status in (403, 404, 409) else form_errors(answer.body))
        return await _show_ticket(request, console, session, ticket_id, errors=errors,
                                  action=action, values=values)

    @router.get("/tickets/{ticket_id}/live")
    async def ticket_live(request: Request, ticket_id: str) -> Response:
        """Server-sent events: the ticket's status and traffic light when they change (the
        citizen answered and the clock runs again, a colleague acted, a deadline passed)."""
        found = _signed_in(request)
        if isinstance(found, Response):
            return Response(status_code=status.HTTP_401_UNAUTHORIZED)
        console, session = found
        assert session.token is not None
        token = session.token
        line = console.templates.get_template("_ticket_status.html")

        async def fetch() -> dict[str, Any] | None:
            return await console.backends.ticket(token, ticket_id)

        def render(ticket: dict[str, Any], now: datetime) -> dict[str, str]:
            return {"status": line.render(ticket=ticket, now=now)}

        return EventSourceResponse(live_events(request, fetch, render,
                                               console.settings.console_live_poll_seconds))

    _ = (ticket_page, ticket_action, ticket_live)


async def _keep_resolution_photo(console: Console, session: Session, ticket_id: str,
                                 photo: UploadFile) -> list[dict[str, str]]:
    """Send the photo of the fix to intake before the ticket is resolved: a refused photo
    (not an image, too large) stops the resolution, so the officer can send a better one."""
    content = await photo.read(console.settings.attachment_max_bytes + 1)
    if not content:
        return []  # the file input left empty
    assert session.token is not None
    answer = await console.backends.add_resolution_photo(session.token, ticket_id, content)
    if answer.ok:
        return []
    return [{"field": "photo", "problem": str(answer.body.get("detail"))}]


def _action_problems(action: str, values: dict[str, str]) -> list[dict[str, str]]:
    if action not in ACTION_FIELDS:
        return [{"field": "", "problem": gettext("tindakan tidak dikenal")}]
    required = {"needs_info": ("note",), "responded": ("note",),
                "rejected": ("reason", "suggested_agency")}.get(action, ())
    return [{"field": f"{action}-{name}", "problem": gettext("wajib diisi")} for name in required
            if not values[name]]


def _actor_of(console: Console, session: Session) -> str:
    """How the SLA names this person on a ticket they picked up (``Principal.actor``)."""
    user = session.user or {}
    return Principal("user", str(user.get("username")), user.get("tenant") or console.settings.tenant,
                     str(user.get("role")), user.get("agency")).actor


def _templates_of(console: Console, session: Session, action: str) -> list[Any]:
    user = session.user or {}
    tenant = user.get("tenant") or console.settings.tenant
    return console.replies.for_form(tenant, user.get("agency") or "", action)


def _fill_from_template(console: Console, session: Session, action: str, name: str,
                        values: dict[str, str]) -> list[dict[str, str]]:
    """A template chosen without the page's script (which copies it into the text to edit):
    its text is sent when the officer wrote none."""
    if not name:
        return []
    chosen = next((t for t in _templates_of(console, session, action) if t.name == name), None)
    if chosen is None:
        return [{"field": f"{action}-template", "problem": gettext("templat tidak dikenal")}]
    if not values["note"]:
        values["note"] = chosen.text
    return []


def _done_label(action: str) -> str:
    return gettext(action_label(action)).lower()


async def _show_ticket(request: Request, console: Console, session: Session, ticket_id: str, *,
                       errors: list[dict[str, str]], action: str = "",
                       values: dict[str, str] | None = None) -> Response:
    assert session.token is not None
    try:
        ticket = await console.backends.ticket(session.token, ticket_id)
    except SignedOut:
        return _signed_out(request, console)
    if ticket is None:
        return console.render(request, session, "error.html", {
            "title": gettext("Tiket tidak ditemukan"),
            "message": gettext("Tiket %(id)s tidak ada, atau bukan tiket instansi Anda.") % {
                "id": ticket_id}},
            status_code=404)
    role = (session.user or {}).get("role")
    allowed = sorted(a.value for a in ALLOWED.get(ticket["status"], set())) \
        if role in OFFICER_ROLES else []
    files = await console.backends.attachments(session.token, ticket_id)
    return console.render(request, session, "ticket.html", {
        "ticket": ticket, "allowed": allowed, "files": files, "errors": errors, "action": action,
        "values": values or {}, "nonce": uuid.uuid4().hex,
        "replies": {a: _templates_of(console, session, a) for a in TEMPLATE_ACTIONS},
        "assigned_to_me": ticket.get("assignee") == _actor_of(console, session),
        "agencies": [a for a in console.rulebook.agencies if a.code != ticket["agency"]]},
        status_code=400 if errors else 200)
