"""The connector's flows: reports in (through intake's API, as the ``lapor`` channel), status
changes and replies out (from the events, through a ``LaporExchange``).

Import is idempotent by LAPOR! id: intake dedupes ``ext:lapor:<id>`` and answers
``duplicate``, so a file imported twice (or a run stopped half-way and re-run) creates no
ticket twice. Export is at least once: updates are marked exported only after the exchange
took them; each carries a stable ``id_pembaruan`` for a repeat to be recognised."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol
from uuid import uuid4

import httpx

from services.lapor.domain import LaporReport, Parsed, ReportDoc, RowError, updates_of
from services.lapor.exchange import LaporExchange
from services.lapor.store import LaporStore, report_key
from shared.contracts import Channel, Complaint, ComplaintSubmission, Envelope, TicketChanged, utc_now

log = logging.getLogger(__name__)

Outcome = Literal["new", "already imported", "would import", "rejected"]


@dataclass(frozen=True)
class RowResult:
    row: int
    lapor_id: str | None
    outcome: Outcome
    ticket_id: str | None = None
    reason: str | None = None


@dataclass
class ImportSummary:
    rows: list[RowResult] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    def lines(self) -> list[str]:
        """The summary as printed: per row its id and outcome, never its content."""
        out = [f"row {r.row} ({r.lapor_id or 'no valid id'}): {r.outcome}"
               f"{' ' + r.ticket_id if r.ticket_id else ''}{': ' + r.reason if r.reason else ''}"
               for r in self.rows]
        out.append(f"{self.count('new')} new, {self.count('already imported')} already imported, "
                   f"{self.count('would import')} to import (dry run), "
                   f"{self.count('rejected')} rejected")
        return out


class Refused(Exception):
    """Intake did not take a submission; the reason names no content."""


@dataclass(frozen=True)
class Accepted:
    ticket_id: str
    duplicate: bool


class Intake(Protocol):
    async def submit(self, submission: ComplaintSubmission) -> Accepted: ...


@dataclass
class IntakeClient:
    """Intake's ``POST /v1/complaints`` with the ``lapor`` channel's API key."""

    http: httpx.AsyncClient
    base_url: str
    api_key: str

    async def submit(self, submission: ComplaintSubmission) -> Accepted:
        try:
            answer = await self.http.post(
                f"{self.base_url.rstrip('/')}/v1/complaints",
                headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
                content=submission.model_dump_json(exclude_none=True))
        except httpx.HTTPError as error:
            raise Refused(f"intake not reached: {type(error).__name__}") from None
        if answer.status_code == 409:
            raise Refused("imported before with other content (LAPOR! id reused); not changed")
        if answer.status_code in (401, 403):
            raise Refused(f"intake refused the API key (HTTP {answer.status_code}): use a key "
                          "of channel lapor of this tenant")
        if answer.status_code != 202:
            raise Refused(f"intake refused it (HTTP {answer.status_code})")
        body = answer.json()
        return Accepted(ticket_id=str(body["ticket_id"]), duplicate=bool(body["duplicate"]))


@dataclass
class Importer:
    store: LaporStore
    intake: Intake
    tenant: str

    async def run(self, rows: Sequence[Parsed], *, dry_run: bool = False) -> ImportSummary:
        summary = ImportSummary()
        known = await self.store.known_ids(
            self.tenant, [r.lapor_id for r in rows if isinstance(r, LaporReport)])
        seen: set[str] = set()
        for parsed in rows:
            summary.rows.append(await self._one(parsed, known, seen, dry_run=dry_run))
        return summary

    async def _one(self, parsed: Parsed, known: set[str], seen: set[str], *,
                   dry_run: bool) -> RowResult:
        if isinstance(parsed, RowError):
            return RowResult(parsed.row, parsed.lapor_id, "rejected", reason=parsed.reason)
        number = parsed.row
        if dry_run:
            if parsed.lapor_id in seen:
                return RowResult(number, parsed.lapor_id, "already imported",
                                 reason="an earlier row of this file")
            seen.add(parsed.lapor_id)
            outcome: Outcome = "already imported" if parsed.lapor_id in known else "would import"
            return RowResult(number, parsed.lapor_id, outcome)
        try:
            accepted = await self.intake.submit(parsed.submission())
        except Refused as refused:
            log.warning("LAPOR! report %s not imported: %s", parsed.lapor_id, refused)
            return RowResult(number, parsed.lapor_id, "rejected", reason=str(refused))
        await self.store.note_report(ReportDoc(
            _id=report_key(self.tenant, accepted.ticket_id), tenant=self.tenant,
            ticket_id=accepted.ticket_id, lapor_id=parsed.lapor_id,
            lapor_tracking_number=parsed.tracking_number, instansi=parsed.instansi))
        outcome = "already imported" if accepted.duplicate else "new"
        return RowResult(number, parsed.lapor_id, outcome, ticket_id=accepted.ticket_id)


@dataclass
class Exporter:
    store: LaporStore
    exchange: LaporExchange
    tenant: str
    batch: int = 10_000

    async def run(self) -> int:
        """Hand the pending updates to the exchange, then mark them exported; returns how
        many. Nothing pending still writes an (empty) file: the admin sees the run happened."""
        pending = await self.store.pending(self.tenant, limit=self.batch)
        self.exchange.send(pending)
        export_id = str(uuid4())
        marked = await self.store.mark_exported([u["_id"] for u in pending], export_id=export_id,
                                                at=utc_now())
        log.info("LAPOR! export %s: %d updates of %s", export_id, marked, self.tenant)
        return len(pending)


@dataclass
class Connector:
    """The event side: learn which tickets are LAPOR!'s, and record their public steps."""

    store: LaporStore

    async def take_received(self, events: Sequence[Envelope[Complaint]]) -> None:
        for event in events:
            complaint = event.data
            if complaint.channel is not Channel.LAPOR or not complaint.external_id:
                continue
            await self.store.note_report(ReportDoc(
                _id=report_key(event.tenant, complaint.ticket_id), tenant=event.tenant,
                ticket_id=complaint.ticket_id, lapor_id=complaint.external_id))

    async def take_changed(self, events: Sequence[Envelope[TicketChanged]]) -> None:
        now = utc_now()
        for event in events:
            ticket_id = str(event.ticket_id)
            report = await self.store.report(event.tenant, ticket_id)
            if report is None:
                continue  # not a LAPOR! report; the next change re-announces the whole history
            added = await self.store.add_updates(updates_of(event.data, report, tenant=event.tenant,
                                                            ticket_id=ticket_id, now=now))
            if added:
                log.info("%d LAPOR! updates of %s recorded", added, ticket_id)
