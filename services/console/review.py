"""The triage desk's review list (``/triage/review``, "Perlu ditinjau"): open tickets whose
routing decision the router's statistical second opinion strongly disputed, whichever agency
they went to. For each, the rules' decision, the model's agency and probability and the
explanation; the desk keeps the decision (``POST /v1/tickets/{id}/review/accept``: the ticket
leaves the list) or routes it by hand like a TRIAGE ticket (the router stores that as a
labelled example). Read from ``GET /v1/tickets?review=true`` with the person's own token."""

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from services.console.flows import SignedOut
from services.console.guard import open_page, signed_out
from services.console.session import CSRF_FIELD, check_csrf
from shared.contracts import utc_now

if TYPE_CHECKING:
    from services.console.api import Console

CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]
PAGE = "review"
PATH = "/triage/review"
PAGE_SIZE = 50


def review_routes(router: APIRouter) -> None:
    @router.get(PATH)
    async def review(request: Request, page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
        return await show_review(request, page, errors=[])

    @router.post(PATH + "/{ticket_id}/accept")
    async def accept(request: Request, ticket_id: str, csrf: CsrfField = "") -> Response:
        found = open_page(request, PAGE)
        if isinstance(found, Response):
            return found
        console, session = found
        check_csrf(session, csrf)
        assert session.token is not None
        try:
            answer = await console.backends.accept_review(session.token, ticket_id)
        except SignedOut:
            return signed_out(request, console)
        if not answer.ok:
            problem = str(answer.body.get("detail") or answer.status)
            return await show_review(request, 1, errors=[{"field": "", "problem": (
                f"Keputusan tiket {ticket_id} tidak dapat diterima: {problem}")}])
        session.flash = (f"Keputusan aturan untuk tiket {ticket_id} diterima; tiket tetap di "
                         f"{answer.body.get('agency')} dan keluar dari daftar tinjauan.")
        return console.redirect(request, session, PATH)

    _ = (review, accept)


def review_context(console: "Console", listing: dict[str, Any]) -> dict[str, Any]:
    """What the list shows: the tickets, the agencies to move one to (never the desk
    itself) and the rulebook's agency names."""
    return {"listing": listing, "tickets": listing["tickets"],
            "agencies": [a for a in console.rulebook.agencies if a.code != console.rulebook.fallback],
            "names": {a.code: a.name for a in console.rulebook.agencies}}


async def show_review(request: Request, page: int, *, errors: list[dict[str, str]]) -> Response:
    found = open_page(request, PAGE)
    if isinstance(found, Response):
        return found
    console, session = found
    assert session.token is not None
    try:
        listing = await console.backends.inbox(session.token, {
            "review": "true", "page": page, "per_page": PAGE_SIZE})
    except SignedOut:
        return signed_out(request, console)
    pages = max(1, -(-listing["total"] // PAGE_SIZE))
    return console.render(request, session, "triage_review.html", {
        **review_context(console, listing), "now": utc_now(), "errors": errors, "page": page,
        "pages": pages}, status_code=400 if errors else 200)
