"""``GET /v1/tickets``: a page of the open tickets a caller may see, due first (the agency
workspace's inbox). Officers and agency heads see their agency, the triage desk its queue, a
supervisor every agency (or one, with ``agency``). Filters: status, clock state, category,
kelurahan, and a search in the tracking number, title and text. Rows of the triage desk's
queue also carry what the desk decides from: the routing explanation (the router's top
candidates and their evidence), the agencies that rejected the ticket and each rejection.
``review=true``: the decisions the router's second opinion disputed, whichever agency holds
them, that the desk has not settled yet (services/sla/review.py), with the same rows."""

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Protocol, TypedDict

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from services.sla.review import awaits_review
from shared.auth import access_of
from shared.contracts import utc_now
from shared.mongo import Document
from shared.permissions import TRIAGE_QUEUE, Scope

OPEN_STATUSES = ("assigned", "acknowledged", "responded", "needs_info", "rejected")
# What a row of the inbox carries: enough to show and order it, never the reporter.
SUMMARY_FIELDS = ("agency", "agency_name", "status", "priority", "category", "channel", "title",
                  "text", "location", "submitted_at", "assigned_at", "due_next_at",
                  "due_soon_at", "deadlines", "anonymous", "confidential", "assignee",
                  "reports")
# Read for the triage queue's rows only: the other inboxes stay small.
TRIAGE_FIELDS = ("routing", "rejected_by", "history")
REJECTION_FIELDS = ("at", "agency", "actor", "reason", "suggested_agency")


class DueState(StrEnum):
    ON_TIME = "on_time"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    PAUSED = "paused"


class TicketPage(BaseModel):
    total: int = Field(description="Tickets matching the filters, on every page (at most the "
                                   "deployment's count cap: see total_capped).")
    total_capped: bool = Field(False, description="More tickets match than `total` says.")
    page: int
    per_page: int
    tickets: list[dict[str, Any]] = Field(description="Due first; each without the reporter.")


def inbox_query(*, tenant: str, agency: str | None, status: str | None, due: DueState | None,
                category: str | None, kelurahan: str | None, q: str | None,
                now: datetime, assignee: str | None = None, review: bool = False) -> Document:
    """The filter on the inbox read model (``inbox_entry``) for a page of the inbox (pure,
    for unit tests): always within the caller's tenant, whatever else is asked."""
    query: Document = {"tenant": tenant}
    if status:
        query["status"] = status
    if agency is not None:
        query["agency"] = agency
    if assignee is not None:
        query["assignee"] = assignee
    if review:
        query["review"] = True
    if category:
        query["category"] = category
    if kelurahan:
        query["kelurahan"] = kelurahan
    if q:
        query["search"] = {"$regex": search_pattern(q)}
    if due is DueState.PAUSED:
        query["status"] = "needs_info"
    elif due is not None:
        query["status"] = {"$in": [s for s in OPEN_STATUSES if s != "needs_info"]
                           if not status else [status]}
        query.update(_due_condition(due, now.timestamp()))
    return query


def search_pattern(q: str) -> str:
    """``q`` as a literal pattern on the entry's lowercased ``search``: case is folded when
    the entry is written, because NX-27017 cannot hand a regex with the ``i`` option (or one
    over an array) to its SQL (explain shows no condition): it matches those document by
    document, 7-10 times slower than a plain pattern over 10,000 entries."""
    return _REGEX_SPECIAL.sub(r"\\\g<0>", q.strip().lower())


_REGEX_SPECIAL = re.compile(r"[\\.^$*+?()\[\]{}|]")
# Between the fields in ``search`` (the ASCII unit separator, which complaint texts do not
# use), so that a search does not match across the end of the title into the text.
SEARCH_SEPARATOR = "\x1f"


def _due_condition(due: DueState, now: float) -> Document:
    # Epoch numbers, not dates: NX-27017 answers a range on a date by scanning every entry.
    if due is DueState.OVERDUE:
        return {"due_next_epoch": {"$lt": now}}
    if due is DueState.DUE_SOON:
        return {"due_next_epoch": {"$gte": now}, "due_soon_epoch": {"$lte": now}}
    return {"due_soon_epoch": {"$gt": now}}


class InboxEntry(TypedDict):
    """One open ticket in the inbox read model: only what the inbox filters and sorts on.
    The rows themselves are read from ``tickets`` by id, so they are the tickets' own."""

    _id: str
    version: int
    tenant: str | None
    agency: str | None
    status: str
    assignee: str | None
    category: str | None
    kelurahan: str | None
    due_next_epoch: float | None
    due_soon_epoch: float | None
    search: str  # number, title and text, lowercased (see search_pattern)
    review: bool  # a disputed decision the desk has not settled (review.py)


ENTRY_SOURCE_FIELDS = ("version", "tenant", "agency", "status", "assignee", "category",
                       "location", "due_next_at", "due_soon_at", "title", "text",
                       "routing", "assignment", "review_settled")


def inbox_entry(ticket: Document) -> InboxEntry | None:
    """The ticket's inbox entry, or None once it left the inbox (resolved, withdrawn...)."""
    if ticket.get("status") not in OPEN_STATUSES:
        return None
    location = ticket.get("location") or {}
    return InboxEntry(
        _id=ticket["_id"], version=int(ticket.get("version") or 0), tenant=ticket.get("tenant"),
        agency=ticket.get("agency"), status=ticket["status"], assignee=ticket.get("assignee"),
        category=ticket.get("category"), kelurahan=location.get("kelurahan"),
        due_next_epoch=_epoch(ticket.get("due_next_at")),
        due_soon_epoch=_epoch(ticket.get("due_soon_at")),
        search=SEARCH_SEPARATOR.join(
            str(v).lower() for v in (ticket["_id"], ticket.get("title"), ticket.get("text"))
            if v is not None),
        review=awaits_review(ticket))


def _epoch(instant: datetime | None) -> float | None:
    if instant is None:
        return None  # sorts first, as a missing date did
    return (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).timestamp()


def rejections(history: list[Document]) -> list[Document]:
    """A ticket's rejections, oldest first: which agency sent it back, who, why, and where
    it suggested the ticket should go (the triage desk's "bounced" history)."""
    return [{k: entry.get(k) for k in REJECTION_FIELDS} for entry in history
            if entry.get("action") == "rejected"]


def triage_row(doc: Document) -> Document:
    """A triage queue row: the history cut to its rejections."""
    row = {k: v for k, v in doc.items() if k != "history"}
    row["rejections"] = rejections(doc.get("history") or [])
    return row


async def ticket_page(store: "InboxSource", query: Document, *, page: int,
                      per_page: int, count_cap: int, triage: bool = False) -> TicketPage:
    """The page's ids from the read model (its sort walks the due index and stops at the
    page), then those tickets' rows by id."""
    skipped = (page - 1) * per_page
    cursor = store.inbox.find(query, {"_id": 1}).sort(
        [("due_next_epoch", ASCENDING), ("_id", ASCENDING)])
    ids = [doc["_id"] for doc in await cursor.skip(skipped).limit(per_page).to_list(None)]
    if (ids or page == 1) and len(ids) < per_page:  # the last page: the exact count, for nothing
        total, capped = skipped + len(ids), False
    else:
        total, capped = await capped_count(store.inbox, query, count_cap)
    if not ids:  # NX-27017 answers an empty $in by reading every ticket
        return TicketPage(total=total, total_capped=capped, page=page, per_page=per_page,
                          tickets=[])
    projection = dict.fromkeys((*SUMMARY_FIELDS, *(TRIAGE_FIELDS if triage else ())), 1)
    found = {doc["_id"]: doc for doc in
             await store.tickets.find({"_id": {"$in": ids}}, projection).to_list(None)}
    rows = [jsonable_encoder({"ticket_id": doc.pop("_id"), **(triage_row(doc) if triage else doc)})
            for doc in (found[i] for i in ids if i in found)]
    return TicketPage(total=total, total_capped=capped, page=page, per_page=per_page, tickets=rows)


class InboxSource(Protocol):
    inbox: AsyncCollection[Document]
    tickets: AsyncCollection[Document]


async def capped_count(entries: AsyncCollection[Document], query: Document,
                       cap: int) -> tuple[int, bool]:
    """How many match, counted up to ``cap`` (and whether more do). A full count_documents
    of 10,000 open tickets took 2 s on the embedded store, on every page and every live poll
    (benchmarks/console.py); reading at most cap + 1 ids is bounded whatever the inbox holds."""
    # In the page's order: walking the due index finds a small queue's entries among a large
    # one's, where a scan in storage order would pass every entry stored before them.
    cursor = entries.find(query, {"_id": 1}).sort([("due_next_epoch", ASCENDING), ("_id", ASCENDING)])
    ids = await cursor.limit(cap + 1).to_list(None)
    return min(len(ids), cap), len(ids) > cap


def _agency_in_scope(request: Request, wanted: str | None, *, review: bool = False) -> str | None:
    access = access_of(request)
    if access.scope is Scope.TRIAGE and review:
        return None  # disputed decisions are the desk's to review in every agency
    if access.scope is Scope.TRIAGE:
        return TRIAGE_QUEUE
    if access.scope is Scope.AGENCY:
        assert access.principal is not None
        return access.principal.agency or ""
    return wanted  # the whole tenant: every agency, or the one asked for


def build_inbox_router() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/tickets", response_model=TicketPage)
    async def list_tickets(
        request: Request,
        status: Annotated[str | None, Query(pattern="^[a-z_]{1,20}$")] = None,
        due: DueState | None = None,
        category: Annotated[str | None, Query(max_length=80)] = None,
        kelurahan: Annotated[str | None, Query(max_length=80)] = None,
        q: Annotated[str | None, Query(max_length=100, description="Search in number, title, text.")] = None,
        agency: Annotated[str | None, Query(max_length=40, description="Supervisors only.")] = None,
        mine: Annotated[bool, Query(description="Only the tickets the caller picked up.")] = False,
        review: Annotated[bool, Query(description="Only decisions the second opinion disputed "
                                                  "that the triage desk has not settled.")] = False,
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=100)] = 25,
    ) -> TicketPage:
        """The open tickets the caller may see, the one due first on top. Rows of the
        triage queue (``TRIAGE``) and of the review list (``review=true``) add ``routing``,
        ``rejected_by`` and ``rejections``."""
        in_scope = _agency_in_scope(request, agency, review=review)
        query = inbox_query(tenant=access_of(request).tenant, agency=in_scope, status=status,
                            due=due, category=category, kelurahan=kelurahan, q=q, now=utc_now(),
                            assignee=access_of(request).actor if mine else None, review=review)
        return await ticket_page(request.app.state.sla.store, query, page=page,
                                 per_page=per_page, triage=in_scope == TRIAGE_QUEUE or review,
                                 count_cap=request.app.state.sla.settings.inbox_count_cap)

    _ = list_tickets
    return router


async def ensure_inbox_index(entries: AsyncCollection[Document]) -> None:
    # One single-field index on the sort key: NX-27017 walks it for the sort and stops at the
    # page (a compound index with the sort key last did not spare it a scan).
    # Not agency or status: with an index on an equality it sorts every match instead.
    await entries.create_index([("due_next_epoch", ASCENDING)])
    # The narrow filters: their matches are few, sorting them is cheaper than walking on.
    await entries.create_index([("category", ASCENDING)])
    await entries.create_index([("kelurahan", ASCENDING)])
    await entries.create_index([("review", ASCENDING)])
