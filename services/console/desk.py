"""The triage desk's page (``/triage``): the TRIAGE queue with the router's top candidates
and their evidence, each ticket assigned with one choice, and the bounced tickets with their
rejection history. Live over server-sent events like the inbox. The queue is read from
``GET /v1/tickets`` and assigned with ``POST /v1/tickets/{id}/route``, with the person's own
token: the SLA API decides what the desk sees and may do."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from services.console.flows import SignedOut
from services.console.guard import open_page, open_stream, signed_out
from services.console.live import live_events
from services.console.session import CSRF_FIELD, check_csrf
from shared.contracts import utc_now

if TYPE_CHECKING:
    from services.console.api import Console

CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]
PAGE = "triage"
QUEUE_PAGE_SIZE = 50
# The reason the router records with the desk's choice (shown in the ticket's history).
REASONS = {"candidate": "dipilih meja triase dari kandidat router",
           "other": "dipilih meja triase (di luar kandidat router)",
           "review": "dialihkan meja triase setelah meninjau keputusan yang disanggah pendapat kedua"}
# Where the desk returns after an assignment: the queue, or the review list it came from.
BACK = {"triage": "/triage", "review": "/triage/review"}


def triage_routes(router: APIRouter) -> None:
    @router.get("/triage")
    async def triage(request: Request, page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
        return await show_queue(request, page, errors=[])

    @router.get("/triage/live")
    async def triage_live(request: Request,
                          page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
        """Server-sent events: the queue again whenever a ticket arrives, bounces back or
        leaves it (assigned by a colleague, or re-routed)."""
        found = open_stream(request, PAGE)
        if isinstance(found, Response):
            return found
        console, session = found
        assert session.token is not None
        token, csrf = session.token, session.csrf
        queue = console.templates.get_template("_triage_queue.html")

        async def fetch() -> dict[str, Any] | None:
            return await console.backends.inbox(token, _params(page))

        def render(listing: dict[str, Any], now: datetime) -> dict[str, str]:
            return {"queue": queue.render(_context(console, listing, now, csrf))}

        return EventSourceResponse(live_events(request, fetch, render,
                                               console.settings.console_live_poll_seconds))

    @router.post("/triage/{ticket_id}/assign")
    async def assign(request: Request, ticket_id: str, csrf: CsrfField = "",
                     agency: Annotated[str, Form()] = "",
                     source: Annotated[str, Form()] = "candidate",
                     back: Annotated[str, Form()] = "triage") -> Response:
        found = open_page(request, PAGE)
        if isinstance(found, Response):
            return found
        console, session = found
        check_csrf(session, csrf)
        code = agency.strip().upper()
        codes = {a.code for a in console.rulebook.agencies}
        if not code or code not in codes:
            return await show_queue(request, 1, errors=[
                {"field": f"other-{ticket_id}", "problem": "Pilih instansi tujuan."}])
        assert session.token is not None
        try:
            answer = await console.backends.route(session.token, ticket_id, code,
                                                  REASONS.get(source, REASONS["other"]))
        except SignedOut:
            return signed_out(request, console)
        if not answer.ok:
            problem = str(answer.body.get("detail") or answer.body.get("errors") or answer.status)
            return await show_queue(request, 1, errors=[{"field": "", "problem": (
                f"Tiket {ticket_id} tidak dapat diteruskan: {problem}")}])
        session.flash = (f"Tiket {ticket_id} diteruskan ke {code}. Tiket keluar dari antrean "
                         "begitu router mencatat keputusannya.")
        return console.redirect(request, session, BACK.get(back, BACK["triage"]))

    _ = (triage, triage_live, assign)


def _params(page: int) -> dict[str, str | int]:
    return {"page": page, "per_page": QUEUE_PAGE_SIZE}


def _context(console: "Console", listing: dict[str, Any], now: datetime, csrf: str) -> dict[str, Any]:
    """What the queue fragment shows: new tickets and bounced ones apart, the agencies to
    choose from (never the desk itself), and the rulebook's agency names."""
    agencies = [a for a in console.rulebook.agencies if a.code != console.rulebook.fallback]
    tickets = listing["tickets"]
    return {"listing": listing, "now": now, "csrf": csrf, "agencies": agencies,
            "names": {a.code: a.name for a in console.rulebook.agencies},
            "categories": {r.id: r.category for a in console.rulebook.agencies for r in a.rules
                           if r.category},
            "fresh": [t for t in tickets if not t.get("rejections")],
            "bounced": [t for t in tickets if t.get("rejections")]}


async def show_queue(request: Request, page: int, *, errors: list[dict[str, str]]) -> Response:
    found = open_page(request, PAGE)
    if isinstance(found, Response):
        return found
    console, session = found
    assert session.token is not None
    try:
        listing = await console.backends.inbox(session.token, _params(page))
    except SignedOut:
        return signed_out(request, console)
    pages = max(1, -(-listing["total"] // QUEUE_PAGE_SIZE))
    return console.render(request, session, "triage.html", {
        **_context(console, listing, utc_now(), session.csrf), "errors": errors, "page": page,
        "pages": pages, "live_url": f"/triage/live?{urlencode({'page': page})}"},
        status_code=400 if errors else 200)
