"""The citizen's pages: the public complaint form and the tracking page (with the tracking
code, the complaint's text, the agency's messages and the answer to a request for
information). Intake's API is called with the web channel's key (the form) or the code."""

import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from services.console.domain import citizen_steps, form_errors
from services.console.flows import idempotency_key
from services.console.i18n import gettext
from services.console.session import CSRF_FIELD, Session, check_csrf

if TYPE_CHECKING:
    from services.console.api import Console

CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]


def _console(request: Request) -> "Console":
    console: Console = request.app.state.console
    return console


# --- the citizen --------------------------------------------------------------------------------

def citizen_routes(router: APIRouter) -> None:
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
                                        errors=[{"field": "code", "problem": gettext("wajib diisi")}])
        if await console.backends.track(ticket_id, code) is None:
            return await _show_tracking(request, console, session, ticket_id, errors=[
                {"field": "code", "problem": gettext("Nomor atau kode pelacakan tidak cocok.")}])
        session.codes = {**session.codes, ticket_id: code}
        return console.redirect(request, session, f"/track/{ticket_id}")

    @router.get("/track/{ticket_id}/attachments/{attachment_id}")
    async def track_file(request: Request, ticket_id: str, attachment_id: str) -> Response:
        """A file of the citizen's complaint (the agency's photo of the fix), with the tracking
        code kept in the session: without it, 404."""
        console = _console(request)
        session = console.sessions.read(request)
        code = session.codes.get(ticket_id)
        found = None if code is None else await console.backends.citizen_file(ticket_id, code,
                                                                              attachment_id)
        if found is None:
            return Response(status_code=404)
        content, mime = found
        return Response(content, media_type=mime, headers={
            "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox"})

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
                                        errors=[{"field": "text", "problem": gettext("wajib diisi")}])
        answer = await console.backends.reply(ticket_id, code, text.strip(), idempotency_key(nonce))
        if not answer.ok:
            problems = ([{"field": "text", "problem": gettext("Instansi sedang tidak menunggu jawaban.")}]
                        if answer.status == 409 else form_errors(answer.body))
            return await _show_tracking(request, console, session, ticket_id, errors=problems,
                                        text=text)
        session.flash = gettext("Jawaban Anda sudah dikirim ke instansi. Terima kasih.")
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
        errors = [] if text.strip() else [{"field": "text", "problem": gettext("wajib diisi")}]
        if not errors:
            answer = await console.backends.submit(_complaint(values), idempotency_key(nonce))
            if answer.ok:
                ticket_id, code = answer.body["ticket_id"], answer.body.get("tracking_code")
                if code:
                    session.codes = {**session.codes, ticket_id: code}
                return console.render(request, session, "submitted.html",
                                      {"ticket_id": ticket_id, "code": code})
            errors = form_errors(answer.body)
        return console.render(request, session, "submit.html", {
            "errors": errors, "values": values, "nonce": nonce, "open": True}, status_code=400)

    _ = (track_search, track, open_with_code, track_file, reply, submit_page, submit)


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


async def _show_tracking(request: Request, console: "Console", session: Session, ticket_id: str, *,
                         errors: list[dict[str, str]], text: str = "") -> Response:
    code = session.codes.get(ticket_id)
    view = await console.backends.track(ticket_id, code)
    if view is None and code is not None:  # a code that no longer fits: ask again
        session.codes = {k: v for k, v in session.codes.items() if k != ticket_id}
        view = await console.backends.track(ticket_id, None)
    if view is None:
        return console.render(request, session, "error.html", {
            "title": gettext("Pengaduan tidak ditemukan"),
            "message": gettext("Tidak ada pengaduan dengan nomor %(id)s. Periksa kembali nomornya.")
            % {"id": ticket_id}},
            status_code=404)
    photos = await console.backends.resolution_photos(ticket_id, code) if code else []
    return console.render(request, session, "track.html", {
        "view": view, "with_code": code is not None, "steps": citizen_steps(view["status"]),
        "photos": photos,
        "errors": errors, "text": text, "nonce": uuid.uuid4().hex},
        status_code=400 if errors else 200)
