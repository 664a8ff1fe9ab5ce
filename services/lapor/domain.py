"""SP4N-LAPOR! in Disposisi's terms, and back: pure decisions, no I/O.

In: one row of the LAPOR! admin console's export (a report the national system dispositioned
to the city) becomes a complaint submission for intake (``channel=lapor``, ``external_id`` =
the LAPOR! id, so a re-import is the same complaint). Only the columns below are read; any
other column (the reporter's name, phone, e-mail, NIK...) is ignored, never read: the citizen
is answered through LAPOR!, so their identity never needs to enter Disposisi.

Out: each public step of a LAPOR! ticket (``ticket.changed``) becomes a status update in
LAPOR!'s words, with the agency's message to the citizen as the reply (tanggapan)."""

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypedDict
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, ValidationError

from shared.contracts import (
    ATTACHMENTS_MAX,
    NAME_MAX,
    TEXT_MAX,
    TITLE_MAX,
    ComplaintSubmission,
    PublicStep,
    TicketChanged,
    derived_event_id,
)

JAKARTA = ZoneInfo("Asia/Jakarta")

# The export's column -> the report's field. JSON uses the same names as keys.
COLUMNS: dict[str, str] = {
    "id_laporan": "lapor_id",
    "nomor_tracking": "tracking_number",
    "kategori": "category",
    "judul": "title",
    "isi_laporan": "text",
    "tanggal_laporan": "reported_at",
    "lampiran": "attachments",
    "anonim": "anonymous",
    "rahasia": "confidential",
    "lokasi": "address",
    "kecamatan": "kecamatan",
    "kelurahan": "kelurahan",
    "lat": "lat",
    "lon": "lon",
    "instansi": "instansi",
}
FIELD_COLUMNS = {field: column for column, field in COLUMNS.items()}
REQUIRED_COLUMNS = ("id_laporan", "isi_laporan")

_YES = frozenset({"ya", "y", "true", "1", "yes"})
_NO = frozenset({"tidak", "t", "false", "0", "no", ""})


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded in _YES:
            return True
        if folded in _NO:
            return False
        raise ValueError("expected ya/tidak (or true/false, 1/0)")
    return False if value is None else value


def _urls(value: Any) -> Any:
    # In a CSV cell the URLs are separated by spaces, commas, semicolons or new lines.
    if isinstance(value, str):
        return [u for u in re.split(r"[\s,;]+", value) if u]
    return [] if value is None else value


_DAY_FIRST = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y %H:%M:%S",
              "%d-%m-%Y %H:%M", "%d-%m-%Y")


def _when(value: Any) -> Any:
    """ISO 8601, or the console's day-first dates; without a zone, WIB (Asia/Jakarta)."""
    if not isinstance(value, str) or not value.strip():
        return None if isinstance(value, str) else value
    text = value.strip()
    found = _parse_iso(text) or next((d for d in (_parse(text, f) for f in _DAY_FIRST) if d), None)
    if found is None:
        raise ValueError("expected a date as YYYY-MM-DD[THH:MM] or DD/MM/YYYY [HH:MM]")
    return found if found.tzinfo else found.replace(tzinfo=JAKARTA)


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _parse(text: str, layout: str) -> datetime | None:
    try:
        return datetime.strptime(text, layout)
    except ValueError:
        return None


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Optional = BeforeValidator(_blank_is_none)


class LaporReport(BaseModel):
    """One report dispositioned to the city, as the export gives it."""

    model_config = ConfigDict(str_strip_whitespace=True)

    row: int = Field(0, description="Its place in the file (1 for the first report).")
    lapor_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$")
    tracking_number: Annotated[str | None, Optional] = Field(None, max_length=64)
    category: Annotated[str | None, Optional] = Field(None, max_length=NAME_MAX)
    title: Annotated[str | None, Optional] = Field(None, max_length=TITLE_MAX)
    text: str = Field(min_length=10, max_length=TEXT_MAX)
    reported_at: Annotated[datetime | None, BeforeValidator(_when)] = None
    attachments: Annotated[list[HttpUrl], BeforeValidator(_urls)] = Field(
        default_factory=list, max_length=ATTACHMENTS_MAX)
    anonymous: Annotated[bool, BeforeValidator(_flag)] = False
    confidential: Annotated[bool, BeforeValidator(_flag)] = False
    address: Annotated[str | None, Optional] = Field(None, max_length=300)
    kecamatan: Annotated[str | None, Optional] = Field(None, max_length=100)
    kelurahan: Annotated[str | None, Optional] = Field(None, max_length=100)
    lat: Annotated[float | None, Optional] = Field(None, ge=-90, le=90)
    lon: Annotated[float | None, Optional] = Field(None, ge=-180, le=180)
    instansi: Annotated[str | None, Optional] = Field(None, max_length=NAME_MAX)

    def submission(self) -> ComplaintSubmission:
        """The complaint for intake; ValidationError when intake's own rules refuse it."""
        place = {"address": self.address, "kecamatan": self.kecamatan,
                 "kelurahan": self.kelurahan, "lat": self.lat, "lon": self.lon}
        return ComplaintSubmission.model_validate({
            "channel": "lapor", "external_id": self.lapor_id, "text": self.text,
            "title": self.title, "category": self.category,
            "location": place if any(v is not None for v in place.values()) else None,
            "anonymous": self.anonymous, "confidential": self.confidential,
            "attachments": [str(u) for u in self.attachments]})


class RowError(BaseModel):
    """Why a row was not imported: fields named by their column, values never quoted."""

    row: int = Field(description="1 for the first report (the CSV header is not counted).")
    lapor_id: str | None = None
    reason: str


Parsed = LaporReport | RowError


def parse_row(row: int, raw: Mapping[str, Any]) -> Parsed:
    """A row of the export as a report, or the reason it is refused (naming columns)."""
    data = {COLUMNS[k.strip().lower()]: v for k, v in raw.items()
            if isinstance(k, str) and k.strip().lower() in COLUMNS}
    lapor_id = data.get("lapor_id")
    known_id = lapor_id.strip() if isinstance(lapor_id, str) and lapor_id.strip() else None
    try:
        report = LaporReport.model_validate({**data, "row": row})
        report.submission()
    except ValidationError as error:
        return RowError(row=row, lapor_id=_safe_id(known_id), reason=describe(error))
    return report


def _safe_id(lapor_id: str | None) -> str | None:
    # An id only when it looks like one: a misplaced column could put text there.
    return lapor_id if lapor_id and re.fullmatch(r"[A-Za-z0-9._/-]{1,64}", lapor_id) else None


def describe(error: ValidationError) -> str:
    """'column: problem; ...' without the input (pydantic's messages do not quote it)."""
    parts = []
    for item in error.errors():
        loc = [str(p) for p in item.get("loc", ())]
        head = loc[0] if loc else ""
        if head == "location" and len(loc) > 1:
            head = loc[1]
        column = "lokasi" if loc == ["location"] else FIELD_COLUMNS.get(head, head) or "(row)"
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{column}: {message}")
    return "; ".join(dict.fromkeys(parts))


# --- status back to LAPOR! ------------------------------------------------------------------

LaporStatus = Literal["Terdisposisi", "Ditindaklanjuti", "Selesai"]

# Our public steps in LAPOR!'s words: a ticket assigned (again) to an OPD is "dispositioned";
# the OPD's acknowledgement, answer or question is its follow-up (tindak lanjut); resolved is
# done. A citizen's own answer came from the citizen and is not sent back.
STATUS_OF: dict[str, LaporStatus] = {
    "assigned": "Terdisposisi",
    "rerouted": "Terdisposisi",
    "acknowledged": "Ditindaklanjuti",
    "responded": "Ditindaklanjuti",
    "needs_info": "Ditindaklanjuti",
    "resolved": "Selesai",
}


class UpdateDoc(TypedDict):
    """A status change or reply waiting to go to LAPOR! (or gone: ``exported_at``)."""

    _id: str
    tenant: str
    ticket_id: str
    lapor_id: str
    lapor_tracking_number: str | None
    action: str
    status: LaporStatus
    at: datetime
    agency: str | None
    agency_name: str | None
    reply: str | None
    created_at: datetime
    exported_at: datetime | None
    export_id: str | None


class ReportDoc(TypedDict, total=False):
    """A LAPOR! report the connector knows, by ticket (``tenant:ticket_id``)."""

    _id: str
    tenant: str
    ticket_id: str
    lapor_id: str
    lapor_tracking_number: str | None
    instansi: str | None


def update_id(tenant: str, ticket_id: str, step: PublicStep) -> str:
    return derived_event_id("lapor-update", tenant, ticket_id, step.action, step.at.isoformat())


def updates_of(changed: TicketChanged, report: ReportDoc, *, tenant: str, ticket_id: str,
               now: datetime) -> list[UpdateDoc]:
    """One update per public step LAPOR! hears of; a step is the same update however often
    the ticket's history is announced (its id is derived from the step)."""
    found = []
    for step in changed.history:
        status = STATUS_OF.get(step.action)
        if status is None:
            continue
        same_agency = step.agency == changed.agency
        found.append(UpdateDoc(
            _id=update_id(tenant, ticket_id, step), tenant=tenant, ticket_id=ticket_id,
            lapor_id=report["lapor_id"],
            lapor_tracking_number=report.get("lapor_tracking_number"), action=step.action,
            status=status, at=step.at, agency=step.agency,
            agency_name=changed.agency_name if same_agency else None,
            reply=step.note if step.action in ("responded", "needs_info", "resolved") else None,
            created_at=now, exported_at=None, export_id=None))
    return found


# The export file's columns, in order (CSV header; JSON keys).
EXPORT_COLUMNS = ("id_pembaruan", "id_laporan", "nomor_tracking", "nomor_tiket", "status",
                  "tindakan", "waktu", "instansi", "tanggapan")


def export_row(update: UpdateDoc) -> dict[str, str]:
    at = update["at"]
    return {
        "id_pembaruan": update["_id"], "id_laporan": update["lapor_id"],
        "nomor_tracking": update["lapor_tracking_number"] or "",
        "nomor_tiket": update["ticket_id"], "status": update["status"],
        "tindakan": update["action"],
        "waktu": (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(JAKARTA).isoformat(),
        "instansi": update["agency_name"] or update["agency"] or "",
        "tanggapan": update["reply"] or ""}
