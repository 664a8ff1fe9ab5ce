"""What a page shows when something behind it fails: a service that does not answer is a 503
page saying so; any other error is logged once with its traceback (structlog, the request's
method and path, never its form or query) and shown as a 500 page, so a failure in a test
or in production can be traced from the log."""

from typing import TYPE_CHECKING

import httpx
from fastapi import FastAPI, Request, status
from fastapi.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.flows import Unanswered
from services.console.i18n import gettext
from shared.logs import get_logger

if TYPE_CHECKING:
    from services.console.api import Console

log = get_logger(__name__)


def install_error_pages(app: FastAPI) -> None:
    """Call before the language middleware is added, so the pages are in the request's
    language (the middleware added last runs first)."""
    app.add_exception_handler(Unanswered, _unanswered)
    app.add_exception_handler(httpx.HTTPError, _unanswered)
    app.add_middleware(LogUnhandled)


async def _unanswered(request: Request, error: Exception) -> Response:
    log.warning("a service behind the page did not answer", method=request.method,
                path=request.url.path, problem=str(error) or type(error).__name__)
    return _error_page(request, status.HTTP_503_SERVICE_UNAVAILABLE,
                       gettext("Layanan tidak menjawab"),
                       gettext("Layanan di balik halaman ini sedang tidak menjawab. "
                               "Coba muat ulang halaman sebentar lagi."))


def _error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    console: Console = request.app.state.console
    session = console.sessions.read(request)
    return console.render(request, session, "error.html", {"title": title, "message": message},
                          status_code=status_code)


class LogUnhandled:
    """Any exception no handler took: logged with its traceback, answered with the error
    page (or, once the response has started, only logged and passed on)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unhandled error in the console", method=scope.get("method"),
                          path=scope.get("path"))
            if started:
                raise
            request = Request(scope)
            try:
                page = _error_page(request, status.HTTP_500_INTERNAL_SERVER_ERROR,
                                   gettext("Terjadi kesalahan"),
                                   gettext("Halaman ini tidak dapat ditampilkan karena kesalahan "
                                           "di server; kesalahan sudah dicatat."))
            except Exception:
                log.exception("the error page failed too")
                page = PlainTextResponse("Internal Server Error", status_code=500)
            await page(scope, receive, send)
