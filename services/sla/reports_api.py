"""HTTP: ``GET /v1/reports/compliance``, the compliance report as JSON or CSV.

The app provides a ``ReportSource`` as ``app.state.report_source`` (the SLA app's wiring).
An agency head sees the ``by=agency`` report cut to its own agency (its row is the totals);
a supervisor sees the whole tenant.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pymongo.asynchronous.collection import AsyncCollection

from services.sla.read_model_store import ReportCounters
from services.sla.report_store import load_report_inputs
from services.sla.reports import (
    ComplianceReport,
    ComplianceZones,
    GroupBy,
    ReportPeriod,
    compliance_report,
    report_csv,
)
from shared.auth import access_of
from shared.contracts import utc_now
from shared.mongo import Document
from shared.permissions import Scope

DEFAULT_DAYS = 30
MAX_DAYS = 366  # a year and a leap day: longer periods belong to an export, not a request


@dataclass(frozen=True)
class ReportSource:
    """What the report route reads: the SLA store's collections, the policy's zones and the
    tenant timezone in which ``from`` and ``to`` dates are days."""

    tickets: AsyncCollection[Document]
    escalations: AsyncCollection[Document]
    zones: ComplianceZones
    timezone: str
    tenant: str | None = None  # whose tickets; None only where one tenant's are stored
    # The read model the report answers from; without it, computed from every ticket of the
    # period (the reference computation, slow for large stores).
    counters: ReportCounters | None = None


def _source(request: Request) -> ReportSource:
    """The caller's tenant's tickets, zones and timezone."""
    sources: dict[str, ReportSource] | None = getattr(request.app.state, "report_sources", None)
    if sources is None:
        source: ReportSource = request.app.state.report_source
        return source
    return sources[access_of(request).tenant]


def _bad_query(field: str, problem: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", field), "msg": problem, "type": "value_error"}])


def report_period(first: date | None, after_last: date | None, *, timezone: str,
                  today: date) -> ReportPeriod:
    """[from, to) as instants: local midnights in the tenant's timezone. Without dates, the
    last 30 days including today."""
    end_day = after_last or today + timedelta(days=1)
    start_day = first or end_day - timedelta(days=DEFAULT_DAYS)
    if start_day >= end_day:
        raise _bad_query("from", f"from ({start_day}) must be before to ({end_day}); "
                         "`to` is the first day not included")
    if (end_day - start_day).days > MAX_DAYS:
        raise _bad_query("to", f"period of {(end_day - start_day).days} days; at most {MAX_DAYS}")
    zone = ZoneInfo(timezone)
    return ReportPeriod(start=datetime.combine(start_day, time(0), tzinfo=zone).astimezone(UTC),
                        end=datetime.combine(end_day, time(0), tzinfo=zone).astimezone(UTC))


def own_agency_report(report: ComplianceReport, agency: str) -> ComplianceReport:
    """The report as one agency's head sees it: its row only, which is also the totals."""
    mine = [row for row in report.rows if row.group == agency]
    totals = mine[0] if mine else compliance_report(
        [], [], period=report.period, now=report.generated_at, by=report.by,
        zones=report.zones).totals
    return report.model_copy(update={"rows": mine,
                                     "totals": totals.model_copy(update={"group": report.totals.group})})


async def compute_report(source: ReportSource, period: ReportPeriod, now: datetime,
                         by: GroupBy) -> ComplianceReport:
    if source.counters is not None:
        return await source.counters.report(source.tickets, tenant=source.tenant, period=period,
                                            now=now, by=by, timezone=source.timezone,
                                            zones=source.zones)
    inputs = await load_report_inputs(source.tickets, source.escalations, period,
                                      tenant=source.tenant)
    return compliance_report(inputs.tickets, inputs.escalations, period=period, now=now, by=by,
                             zones=source.zones)


def build_reports_router() -> APIRouter:
    router = APIRouter(prefix="/v1/reports", tags=["reports"])

    @router.get("/compliance", response_model=ComplianceReport, responses={
        200: {"content": {"text/csv": {}}, "description": "The report (JSON, or CSV with format=csv)"},
        403: {"description": "An agency head asked for other than by=agency"},
        422: {"description": "Bad dates, `from` not before `to`, unknown `by` or `format`"}})
    async def get_compliance_report(
        request: Request,
        first: Annotated[date | None, Query(alias="from", description="First day (YYYY-MM-DD).")] = None,
        after_last: Annotated[date | None, Query(
            alias="to", description="First day NOT included (YYYY-MM-DD); default tomorrow.")] = None,
        by: Annotated[GroupBy, Query(description="One row per agency, category or channel.")] = "agency",
        format: Annotated[Literal["json", "csv"], Query()] = "json",
    ) -> Response | ComplianceReport:
        """Per group: tickets received, responded/resolved on time %, median and p90 working
        hours to first response, escalations per level, rejections, re-routes, quick
        re-pauses, open backlog by age, and a traffic-light zone; then the totals.

        Answered from the compliance read model: counters that each resolved ticket and each
        fired escalation add to once, plus the open tickets from a snapshot refreshed every
        30 s (tickets opened, re-assigned or resolved since are taken as they are now). The median and p90
        come from a histogram of working hours (fixed buckets: quarter hours up to 2 h, then
        half hours, hours, 4 h and days up to 30 days), interpolated inside the bucket, so
        they are approximate within one bucket's width; every other figure is exact."""
        access = access_of(request)
        own_agency = access.principal.agency if access.scope is Scope.AGENCY and access.principal else None
        if access.scope is Scope.AGENCY and (by != "agency" or own_agency is None):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "an agency head sees the by=agency report of its own agency")
        source = _source(request)
        now = utc_now()
        period = report_period(first, after_last, timezone=source.timezone,
                               today=now.astimezone(ZoneInfo(source.timezone)).date())
        report = await compute_report(source, period, now, by)
        if own_agency is not None:
            report = own_agency_report(report, own_agency)
        if format == "csv":
            zone = ZoneInfo(source.timezone)
            name = (f"compliance-{by}-{period.start.astimezone(zone).date()}"
                    f"-{period.end.astimezone(zone).date()}.csv")
            return Response(report_csv(report), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return report

    _ = get_compliance_report
    return router
