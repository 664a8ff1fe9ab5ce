"""The console's door for the staff's pages: signed in, and a role the APIs' permission table
lets use the page (``domain.may_open``); otherwise the sign-in page or a 403 page."""

from typing import TYPE_CHECKING

from fastapi import Request, status
from fastapi.responses import Response

from services.console.domain import may_open
from services.console.session import Session

if TYPE_CHECKING:
    from services.console.api import Console


def console_of(request: Request) -> "Console":
    console: Console = request.app.state.console
    return console


def open_page(request: Request, *pages: str) -> "tuple[Console, Session] | Response":
    """The console and the session when the signed-in person may use every one of ``pages``;
    else the sign-in page (signed out) or 403 (the role may not)."""
    console = console_of(request)
    session = console.sessions.read(request)
    if not session.signed_in:
        return console.redirect(request, session, "/login")
    role = (session.user or {}).get("role")
    if not all(may_open(role, page) for page in pages):
        return console.render(request, session, "error.html", {
            "title": "Akses ditolak",
            "message": "Peran Anda tidak boleh membuka halaman ini."},
            status_code=status.HTTP_403_FORBIDDEN)
    return console, session


def open_stream(request: Request, *pages: str) -> "tuple[Console, Session] | Response":
    """``open_page`` for a server-sent event stream: a bare 401 or 403, no page."""
    console = console_of(request)
    session = console.sessions.read(request)
    if not session.signed_in:
        return Response(status_code=status.HTTP_401_UNAUTHORIZED)
    role = (session.user or {}).get("role")
    if not all(may_open(role, page) for page in pages):
        return Response(status_code=status.HTTP_403_FORBIDDEN)
    return console, session


def signed_out(request: Request, console: "Console") -> Response:
    """The API no longer takes the session's token: back to the sign-in page."""
    return console.redirect(request, Session(flash="Sesi berakhir; silakan masuk lagi."), "/login")
