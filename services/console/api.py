"""The console's pages: sign-in, the agency's inbox (live over server-sent events), a ticket
with its actions, the citizen's tracking page and the public complaint form. Every read and
action goes to intake or the SLA API with the caller's own credentials."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import jwt
from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sse_starlette import EventSourceResponse

from services.console.citizen import citizen_routes
from services.console.domain import (
    CLOCK_STATES,
    STATUS_LABELS,
    action_label,
    form_errors,
)
from services.console.flows import Backends, SignedOut, idempotency_key
from services.console.live import live_events
from services.console.session import CSRF_FIELD, Session, Sessions, check_csrf
from services.router.rulebook import Rulebook
from services.sla.updates import ALLOWED
from shared.contracts import utc_now
from shared.settings import Settings

# Each handler defaults it to "": a form without the token is then the same 403 as one with a
# wrong token (not a 422 that would name the field).
CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]
FILTERS = ("status", "due", "category", "kelurahan", "q")
OFFICER_ROLES = ("officer", "agency_head")


@dataclass
class Console:
    settings: Settings
    backends: Backends
    sessions: Sessions
    templates: Jinja2Templates
    rulebook: Rulebook

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
    _inbox_routes(router)
    _ticket_routes(router)
    citizen_routes(router)
    return router


# --- sign-in --------------------------------------------------------------------------------

def _sign_in_routes(router: APIRouter) -> None:
    @router.get("/")
    async def home(request: Request) -> Response:
        console = _console(request)
        session = console.sessions.read(request)
        return console.redirect(request, session, "/inbox" if session.signed_in else "/login")

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
        errors = [{"field": name, "problem": "wajib diisi"}
                  for name, value in (("username", username), ("password", password)) if not value]
        if not errors:
            answer = await console.backends.sign_in(username, password)
            if answer.ok:
                token = answer.body["access_token"]
                claims = jwt.decode(token, options={"verify_signature": False})  # the API verifies
                session.token = token
                session.user = {"username": claims.get("sub"), "role": claims.get("role"),
                                "agency": claims.get("agency")}
                return console.redirect(request, session, "/inbox")
            errors = [{"field": "username", "problem": "Nama pengguna atau kata sandi salah, atau "
                       "akun terkunci sementara." if answer.status in (400, 401) else
                       "Terlalu banyak percobaan; coba lagi nanti." if answer.status == 429 else
                       f"Layanan masuk tidak menjawab ({answer.status})."}]
        return console.render(request, session, "login.html",
                              {"errors": errors, "username": username}, status_code=400)

    @router.post("/logout")
    async def logout(request: Request, csrf: CsrfField = "") -> Response:
        console = _console(request)
        session = console.sessions.read(request)
        check_csrf(session, csrf)
        fresh = Session(flash="Anda sudah keluar.")
        return console.redirect(request, fresh, "/login")

    _ = (home, login_page, login, logout)


def _signed_in(request: Request) -> tuple[Console, Session] | Response:
    console = _console(request)
    session = console.sessions.read(request)
    if not session.signed_in:
        return console.redirect(request, session, "/login")
    return console, session


def _signed_out(request: Request, console: Console) -> Response:
    session = Session(flash="Sesi berakhir; silakan masuk lagi.")
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
        pages = max(1, -(-listing["total"] // console.settings.console_page_size))
        query = urlencode({k: v for k, v in filters.items() if v})
        return console.render(request, session, "inbox.html", {
            "listing": listing, "filters": filters, "page": page, "pages": pages,
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
                 "resolved": ("note",), "rejected": ("reason", "suggested_agency"), "note": ("note",)}


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
                            suggested_agency: Annotated[str, Form()] = "") -> Response:
        found = _signed_in(request)
        if isinstance(found, Response):
            return found
        console, session = found
        check_csrf(session, csrf)
        values = {"note": note.strip(), "reason": reason.strip(),
                  "suggested_agency": suggested_agency.strip()}
        errors = _action_problems(action, values)
        if not errors:
            update = {"action": action, **{k: values[k] for k in ACTION_FIELDS[action] if values[k]}}
            assert session.token is not None
            try:
                answer = await console.backends.act(session.token, ticket_id, update,
                                                    idempotency_key=idempotency_key(nonce))
            except SignedOut:
                return _signed_out(request, console)
            if answer.ok:
                session.flash = f"Tindakan tercatat: {_done_label(action)}."
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


def _action_problems(action: str, values: dict[str, str]) -> list[dict[str, str]]:
    if action not in ACTION_FIELDS:
        return [{"field": "", "problem": "tindakan tidak dikenal"}]
    required = {"needs_info": ("note",), "responded": ("note",),
                "rejected": ("reason", "suggested_agency")}.get(action, ())
    return [{"field": f"{action}-{name}", "problem": "wajib diisi"} for name in required
            if not values[name]]


def _done_label(action: str) -> str:
    return action_label(action).lower()


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
            "title": "Tiket tidak ditemukan",
            "message": f"Tiket {ticket_id} tidak ada, atau bukan tiket instansi Anda."},
            status_code=404)
    role = (session.user or {}).get("role")
    allowed = sorted(a.value for a in ALLOWED.get(ticket["status"], set())) \
        if role in OFFICER_ROLES else []
    files = await console.backends.attachments(session.token, ticket_id)
    return console.render(request, session, "ticket.html", {
        "ticket": ticket, "allowed": allowed, "files": files, "errors": errors, "action": action,
        "values": values or {}, "nonce": uuid.uuid4().hex,
        "agencies": [a for a in console.rulebook.agencies if a.code != ticket["agency"]]},
        status_code=400 if errors else 200)
