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

from services.console.domain import (
    CLOCK_STATES,
    STATUS_LABELS,
    action_label,
    citizen_steps,
    form_errors,
)
from services.console.flows import Backends, SignedOut
from services.console.live import live_events
from services.console.session import CSRF_FIELD, Session, Sessions, check_csrf
from services.router.rulebook import Rulebook
from services.sla.updates import ALLOWED
from shared.contracts import utc_now
from shared.settings import Settings

# Optional in the form so a missing token is the same 403 as a wrong one.
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
    _citizen_routes(router)
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
                                                    idempotency_key=_once(nonce))
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


def _once(nonce: str) -> str:
    """The form's nonce as the API's Idempotency-Key: a form sent twice (a double click, a
    resent POST) is applied once."""
    return nonce.strip()[:100] or uuid.uuid4().hex


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
    return console.render(request, session, "ticket.html", {
        "ticket": ticket, "allowed": allowed, "errors": errors, "action": action,
        "values": values or {}, "nonce": uuid.uuid4().hex,
        "agencies": [a for a in console.rulebook.agencies if a.code != ticket["agency"]]},
        status_code=400 if errors else 200)


# --- the citizen --------------------------------------------------------------------------------

def _citizen_routes(router: APIRouter) -> None:
    @router.get("/track")
    async def track_search(request: Request, ticket_id: str = "") -> Response:
        console = _console(request)
        session = console.sessions.read(request)
        if ticket_id.strip():
            return console.redirect(request, session, f"/track/{ticket_id.strip().upper()}")
        return console.render(request, session, "track_search.html", {})

    @router.get("/track/{ticket_id}")
    async def track(request: Request, ticket_id: str) -> Response:
        console = _console(request)
        session = console.sessions.read(request)
        return await _show_tracking(request, console, session, ticket_id, errors=[])

    @router.post("/track/{ticket_id}")
    async def open_with_code(request: Request, ticket_id: str, csrf: CsrfField = "",
                             code: Annotated[str, Form()] = "") -> Response:
        """The tracking code is kept in the (signed, HttpOnly) session, never in the address,
        where it would reach browser history and logs."""
        console = _console(request)
        session = console.sessions.read(request)
        check_csrf(session, csrf)
        code = code.strip()[:64]
        if not code:
            return await _show_tracking(request, console, session, ticket_id,
                                        errors=[{"field": "code", "problem": "wajib diisi"}])
        if await console.backends.track(ticket_id, code) is None:
            return await _show_tracking(request, console, session, ticket_id, errors=[
                {"field": "code", "problem": "Nomor atau kode pelacakan tidak cocok."}])
        session.codes = {**session.codes, ticket_id: code}
        return console.redirect(request, session, f"/track/{ticket_id}")

    @router.post("/track/{ticket_id}/reply")
    async def reply(request: Request, ticket_id: str, csrf: CsrfField = "",
                    nonce: Annotated[str, Form()] = "", text: Annotated[str, Form()] = "") -> Response:
        console = _console(request)
        session = console.sessions.read(request)
        check_csrf(session, csrf)
        code = session.codes.get(ticket_id)
        if code is None:
            return console.redirect(request, session, f"/track/{ticket_id}")
        if not text.strip():
            return await _show_tracking(request, console, session, ticket_id,
                                        errors=[{"field": "text", "problem": "wajib diisi"}])
        answer = await console.backends.reply(ticket_id, code, text.strip(), _once(nonce))
        if not answer.ok:
            problems = ([{"field": "text", "problem": "Instansi sedang tidak menunggu jawaban."}]
                        if answer.status == 409 else form_errors(answer.body))
            return await _show_tracking(request, console, session, ticket_id, errors=problems,
                                        text=text)
        session.flash = "Jawaban Anda sudah dikirim ke instansi. Terima kasih."
        return console.redirect(request, session, f"/track/{ticket_id}")

    @router.get("/submit")
    async def submit_page(request: Request) -> Response:
        console = _console(request)
        return console.render(request, console.sessions.read(request), "submit.html", {
            "errors": [], "values": {}, "nonce": uuid.uuid4().hex,
            "open": console.settings.console_channel_api_key is not None})

    @router.post("/submit")
    async def submit(request: Request, csrf: CsrfField = "", nonce: Annotated[str, Form()] = "",
                     text: Annotated[str, Form()] = "", title: Annotated[str, Form()] = "",
                     kelurahan: Annotated[str, Form()] = "", address: Annotated[str, Form()] = "",
                     name: Annotated[str, Form()] = "", phone: Annotated[str, Form()] = "",
                     email: Annotated[str, Form()] = "",
                     anonymous: Annotated[str, Form()] = "") -> Response:
        console = _console(request)
        session = console.sessions.read(request)
        check_csrf(session, csrf)
        values = {"text": text, "title": title, "kelurahan": kelurahan, "address": address,
                  "name": name, "phone": phone, "email": email, "anonymous": anonymous}
        errors = [] if text.strip() else [{"field": "text", "problem": "wajib diisi"}]
        if not errors:
            answer = await console.backends.submit(_complaint(values), _once(nonce))
            if answer.ok:
                ticket_id, code = answer.body["ticket_id"], answer.body.get("tracking_code")
                if code:
                    session.codes = {**session.codes, ticket_id: code}
                return console.render(request, session, "submitted.html",
                                      {"ticket_id": ticket_id, "code": code})
            errors = form_errors(answer.body)
        return console.render(request, session, "submit.html", {
            "errors": errors, "values": values, "nonce": nonce, "open": True}, status_code=400)

    _ = (track_search, track, open_with_code, reply, submit_page, submit)


def _complaint(values: dict[str, str]) -> dict[str, Any]:
    complaint: dict[str, Any] = {"channel": "web", "text": values["text"].strip()}
    if values["title"].strip():
        complaint["title"] = values["title"].strip()
    location = {k: values[k].strip() for k in ("kelurahan", "address") if values[k].strip()}
    if location:
        complaint["location"] = location
    reporter = {k: values[k].strip() for k in ("name", "phone", "email") if values[k].strip()}
    if reporter:
        complaint["reporter"] = reporter
    if values["anonymous"]:
        complaint["anonymous"] = True
    return complaint


async def _show_tracking(request: Request, console: Console, session: Session, ticket_id: str, *,
                         errors: list[dict[str, str]], text: str = "") -> Response:
    code = session.codes.get(ticket_id)
    view = await console.backends.track(ticket_id, code)
    if view is None and code is not None:  # a code that no longer fits: ask again
        session.codes = {k: v for k, v in session.codes.items() if k != ticket_id}
        view = await console.backends.track(ticket_id, None)
    if view is None:
        return console.render(request, session, "error.html", {
            "title": "Pengaduan tidak ditemukan",
            "message": f"Tidak ada pengaduan dengan nomor {ticket_id}. Periksa kembali nomornya."},
            status_code=404)
    return console.render(request, session, "track.html", {
        "view": view, "with_code": code is not None, "steps": citizen_steps(view["status"]),
        "errors": errors, "text": text, "nonce": uuid.uuid4().hex},
        status_code=400 if errors else 200)
