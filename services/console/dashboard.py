"""The supervisor's dashboard (``/dashboard``): live escalations, newest first, with an
acknowledge button; compliance per agency for a period as a table and an inline SVG chart
over the policy's zones; the backlog by age; a drill-down from an agency to its overdue
tickets; CSV exports of the compliance table and the drill-down list. Everything is read from
the SLA API with the person's own token (``/v1/escalations``, ``/v1/reports/compliance``,
``/v1/tickets``), so an agency head sees its own agency only, as the API decides."""

import csv
import io
from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from services.console.chart import METRICS, compliance_chart
from services.console.domain import (
    may_open,
    parse_instant,
    period_days,
    scope_for,
    seconds_late,
)
from services.console.flows import SignedOut, Unanswered
from services.console.guard import open_page, open_stream, signed_out
from services.console.live import live_events
from services.console.session import CSRF_FIELD, Session, check_csrf
from shared.contracts import utc_now
from shared.logs import get_logger
from shared.permissions import Scope

if TYPE_CHECKING:
    from services.console.api import Console

log = get_logger(__name__)
CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]
PAGE = "dashboard"
ESCALATIONS_SHOWN = 50
FAILED_DELIVERIES_SHOWN = 20
DRILL_PAGE_SIZE = 50
CSV_MAX_PAGES = 100  # 100 pages of 100: an agency with more overdue tickets needs a real export


def dashboard_routes(router: APIRouter) -> None:
    @router.get("/dashboard")
    async def dashboard(request: Request, first: Annotated[str, Query(alias="from", max_length=10)] = "",
                        last: Annotated[str, Query(alias="to", max_length=10)] = "") -> Response:
        found = open_page(request, PAGE)
        if isinstance(found, Response):
            return found
        console, session = found
        role = (session.user or {}).get("role")
        start, end = period_days(first, last, _today(console.settings.timezone))
        period = {"from": start.isoformat(), "to": end.isoformat()}
        token = session.token
        assert token is not None
        may_report = may_open(role, "compliance")
        try:
            escalations = await _panel("escalations", console.backends.escalations(
                token, _escalation_params()))
            report = await _panel("compliance", console.backends.compliance(
                token, _report_params(period))) if may_report else None
            failed = await console.backends.failed_deliveries(token, FAILED_DELIVERIES_SHOWN)
        except SignedOut:
            return signed_out(request, console)
        charts = [compliance_chart(report["rows"], report["zones"], m) for m in METRICS] \
            if report else []
        return console.render(request, session, "dashboard.html", {
            "escalations": None if escalations is None else escalations["escalations"],
            "may_ack": may_open(role, "acknowledge"), "failed_deliveries": failed,
            "report": report, "report_unanswered": may_report and report is None,
            "charts": charts, "period": period,
            "csv_url": f"/dashboard/compliance.csv?{urlencode(period)}",
            "may_drill": may_open(role, "tickets")})

    @router.get("/dashboard/live")
    async def dashboard_live(request: Request) -> Response:
        """Server-sent events: the escalation list again whenever one fires or is
        acknowledged."""
        found = open_stream(request, PAGE)
        if isinstance(found, Response):
            return found
        console, session = found
        assert session.token is not None
        token, csrf = session.token, session.csrf
        may_ack = may_open((session.user or {}).get("role"), "acknowledge")
        rows = console.templates.get_template("_escalations.html")

        async def fetch() -> dict[str, Any] | None:
            return await console.backends.escalations(token, _escalation_params())

        def render(page: dict[str, Any], now: datetime) -> dict[str, str]:
            return {"escalations": rows.render(escalations=page["escalations"], now=now,
                                               csrf=csrf, may_ack=may_ack)}

        return EventSourceResponse(live_events(request, fetch, render,
                                               console.settings.console_live_poll_seconds))

    @router.post("/dashboard/escalations/{escalation_id}/acknowledge")
    async def acknowledge(request: Request, escalation_id: str, csrf: CsrfField = "") -> Response:
        found = open_page(request, PAGE, "acknowledge")
        if isinstance(found, Response):
            return found
        console, session = found
        check_csrf(session, csrf)
        assert session.token is not None
        try:
            answer = await console.backends.acknowledge(session.token, escalation_id[:200])
        except SignedOut:
            return signed_out(request, console)
        session.flash = ("Eskalasi diterima; pemberitahuan ulang untuk langkah ini dihentikan."
                         if answer.ok else
                         f"Eskalasi tidak dapat diterima: {answer.body.get('detail', answer.status)}")
        return console.redirect(request, session, "/dashboard#eskalasi")

    @router.get("/dashboard/compliance.csv")
    async def compliance_csv(request: Request,
                             first: Annotated[str, Query(alias="from", max_length=10)] = "",
                             last: Annotated[str, Query(alias="to", max_length=10)] = "") -> Response:
        found = open_page(request, PAGE, "compliance")
        if isinstance(found, Response):
            return found
        console, session = found
        start, end = period_days(first, last, _today(console.settings.timezone))
        assert session.token is not None
        try:
            reply = await console.backends.compliance_csv(session.token, _report_params(
                {"from": start.isoformat(), "to": end.isoformat()}))
        except SignedOut:
            return signed_out(request, console)
        return Response(reply.content, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": reply.headers.get("content-disposition",
                                                     'attachment; filename="compliance.csv"')})

    _ = (dashboard, dashboard_live, acknowledge, compliance_csv)
    _drill_down_routes(router)


def _drill_down_routes(router: APIRouter) -> None:
    @router.get("/dashboard/agencies/{agency}")
    async def overdue(request: Request, agency: str,
                      page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
        found = _drill_page(request, agency)
        if isinstance(found, Response):
            return found
        console, session = found
        assert session.token is not None
        try:
            listing = await console.backends.inbox(session.token, _overdue_params(agency, page))
        except SignedOut:
            return signed_out(request, console)
        return console.render(request, session, "overdue.html", {
            "agency": agency, "listing": listing, "page": page,
            "pages": max(1, -(-listing["total"] // DRILL_PAGE_SIZE)),
            "agency_name": {a.code: a.name for a in console.rulebook.agencies}.get(agency, "")})

    @router.get("/dashboard/agencies/{agency}/overdue.csv")
    async def overdue_csv(request: Request, agency: str) -> Response:
        found = _drill_page(request, agency)
        if isinstance(found, Response):
            return found
        console, session = found
        assert session.token is not None
        tickets: list[dict[str, Any]] = []
        try:
            for page in range(1, CSV_MAX_PAGES + 1):
                listing = await console.backends.inbox(
                    session.token, {**_overdue_params(agency, page), "per_page": 100})
                tickets += listing["tickets"]
                if page * 100 >= listing["total"]:
                    break
        except SignedOut:
            return signed_out(request, console)
        day = _today(console.settings.timezone).isoformat()
        return Response(overdue_csv_text(tickets, utc_now(), console.settings.timezone),
                        media_type="text/csv; charset=utf-8", headers={
                            "Content-Disposition":
                                f'attachment; filename="overdue-{agency}-{day}.csv"'})

    _ = (overdue, overdue_csv)


def _drill_page(request: Request, agency: str) -> "tuple[Console, Session] | Response":
    """The dashboard and the ticket list; an agency head only for its own agency (the API
    would quietly list its own agency's tickets under another's name)."""
    found = open_page(request, PAGE, "tickets")
    if isinstance(found, Response):
        return found
    console, session = found
    user = session.user or {}
    if not agency.isupper() or len(agency) > 40 or (
            scope_for(user.get("role"), "tickets") is Scope.AGENCY and user.get("agency") != agency):
        return console.render(request, session, "error.html", {
            "title": "Akses ditolak",
            "message": "Anda hanya dapat melihat tiket instansi Anda sendiri."}, status_code=403)
    return console, session


def overdue_csv_text(tickets: list[dict[str, Any]], now: datetime, timezone: str) -> str:
    """The drill-down list as CSV: no reporter and no complaint text (a file travels)."""
    zone = ZoneInfo(timezone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ticket_id", "agency", "status", "priority", "category", "kelurahan",
                     "submitted_at", "due_next_at", "hours_late"])
    for t in tickets:
        late = seconds_late(t, now)
        writer.writerow([t["ticket_id"], t.get("agency", ""), t.get("status", ""),
                         t.get("priority", ""), _cell(t.get("category") or ""),
                         _cell((t.get("location") or {}).get("kelurahan") or ""),
                         _local_iso(t.get("submitted_at"), zone), _local_iso(t.get("due_next_at"), zone),
                         "" if late is None else round(late / 3600, 1)])
    return out.getvalue()


def _cell(text: str) -> str:
    """A citizen's words as a cell a spreadsheet shows, never runs as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _local_iso(value: Any, zone: ZoneInfo) -> str:
    instant = parse_instant(value)
    return "" if instant is None else instant.astimezone(zone).isoformat(timespec="minutes")


async def _panel(name: str, read: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
    """One panel's data, or None when its service does not answer (the panel says so and the
    rest of the dashboard still shows: right after a start, or with the SLA API restarting or
    slow, the supervisor still sees what can be seen)."""
    try:
        return await read
    except Unanswered as error:
        log.warning("dashboard panel not shown", panel=name, problem=str(error))
        return None


def _today(timezone: str) -> date:
    return utc_now().astimezone(ZoneInfo(timezone)).date()


def _escalation_params() -> dict[str, str | int]:
    return {"limit": ESCALATIONS_SHOWN}


def _report_params(period: dict[str, str]) -> dict[str, str | int]:
    """The API's ``to`` is the first day not included; the page's is the last day shown."""
    after = datetime.fromisoformat(period["to"]).date() + timedelta(days=1)
    return {"by": "agency", "from": period["from"], "to": after.isoformat()}


def _overdue_params(agency: str, page: int) -> dict[str, str | int]:
    return {"agency": agency, "due": "overdue", "page": page, "per_page": DRILL_PAGE_SIZE}

