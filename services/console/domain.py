"""What the console's pages show, decided without I/O: clock states as traffic lights, dates
in the tenant's timezone, ages and statuses in plain Indonesian, the citizen's status steps."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.console.i18n import N_
from shared.permissions import Scope, rule_for

STATUS_LABELS = {
    "received": N_("Diterima"), "assigned": N_("Baru"), "acknowledged": N_("Sedang ditangani"),
    "responded": N_("Sudah dijawab"), "needs_info": N_("Menunggu informasi pelapor"),
    "rejected": N_("Dialihkan"), "resolved": N_("Selesai"),
}
PRIORITY_LABELS = {"low": N_("Rendah"), "normal": N_("Biasa"), "high": N_("Tinggi"),
                   "urgent": N_("Mendesak")}
ACTION_LABELS = {
    "assigned": N_("Didisposisikan"), "rerouted": N_("Dialihkan ke instansi lain"),
    "acknowledged": N_("Diterima petugas"), "responded": N_("Dijawab"),
    "resolved": N_("Diselesaikan"),
    "rejected": N_("Ditolak (bukan tupoksi)"), "needs_info": N_("Meminta informasi pelapor"),
    "citizen_replied": N_("Pelapor menjawab"), "note": N_("Catatan internal"),
    "reprioritised": N_("Prioritas diubah"), "picked_up": N_("Diambil petugas"),
    "review_accepted": N_("Keputusan aturan diterima meja triase"),
}
MONTHS = (N_("Januari"), N_("Februari"), N_("Maret"), N_("April"), N_("Mei"), N_("Juni"),
          N_("Juli"), N_("Agustus"), N_("September"), N_("Oktober"), N_("November"),
          N_("Desember"))
ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA",
              "Asia/Jayapura": "WIT"}


@dataclass(frozen=True)
class ClockState:
    """A traffic light: ``key`` for styles and filters, ``label`` for people."""

    key: str
    label: str


ON_TIME = ClockState("on_time", N_("Tepat waktu"))
DUE_SOON = ClockState("due_soon", N_("Segera jatuh tempo"))
OVERDUE = ClockState("overdue", N_("Terlambat"))
PAUSED = ClockState("paused", N_("Dijeda"))
CLOSED = ClockState("closed", N_("Selesai"))
CLOCK_STATES = (ON_TIME, DUE_SOON, OVERDUE, PAUSED)


def parse_instant(value: Any) -> datetime | None:
    """An instant from the APIs' JSON (ISO 8601; a naive one is UTC, as the services store)."""
    if not value:
        return None
    instant = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return instant if instant.tzinfo else instant.replace(tzinfo=ZoneInfo("UTC"))


def clock_state(ticket: dict[str, Any], now: datetime) -> ClockState:
    """The agency's next deadline as a traffic light: paused while waiting for the citizen,
    overdue past it, due soon past the share of its span the SLA service marks."""
    if ticket.get("status") == "needs_info":
        return PAUSED
    if ticket.get("status") == "resolved":
        return CLOSED
    due = parse_instant(ticket.get("due_next_at"))
    soon = parse_instant(ticket.get("due_soon_at"))
    if due is None:
        return ON_TIME
    if now > due:
        return OVERDUE
    if soon is not None and now >= soon:
        return DUE_SOON
    return ON_TIME


def _as_is(message: str) -> str:
    return message


def _no_plural(singular: str, plural: str, n: int) -> str:
    return singular  # Indonesian: "1 hari", "3 hari"


def local_time(value: Any, timezone: str, gettext: Callable[[str], str] = _as_is) -> str:
    """``30 November 2026 14.05 WIB``: a date as people in the tenant read it (the month's
    name through ``gettext``), always in the tenant's timezone whatever the language."""
    instant = parse_instant(value)
    if instant is None:
        return "—"
    local = instant.astimezone(ZoneInfo(timezone))
    zone = ZONE_NAMES.get(timezone, local.tzname() or timezone)
    return f"{local.day} {gettext(MONTHS[local.month - 1])} {local.year} {local:%H.%M} {zone}"


def age(value: Any, now: datetime, gettext: Callable[[str], str] = _as_is,
        ngettext: Callable[[str, str, int], str] = _no_plural) -> str:
    """How long ago, in the largest whole unit: ``3 hari``, ``5 jam``, ``12 menit``."""
    instant = parse_instant(value)
    if instant is None:
        return "—"
    seconds = max(0, int((now - instant).total_seconds()))
    if seconds >= 86400:
        return ngettext("%(num)d hari", "%(num)d hari", seconds // 86400) % {"num": seconds // 86400}
    if seconds >= 3600:
        return ngettext("%(num)d jam", "%(num)d jam", seconds // 3600) % {"num": seconds // 3600}
    if seconds >= 60:
        return ngettext("%(num)d menit", "%(num)d menit", seconds // 60) % {"num": seconds // 60}
    return gettext("baru saja")


def status_label(status: str | None) -> str:
    return STATUS_LABELS.get(status or "", status or "—")


def priority_label(priority: str | None) -> str:
    return PRIORITY_LABELS.get(priority or "", priority or "—")


def action_label(action: str | None) -> str:
    return ACTION_LABELS.get(action or "", action or "—")


@dataclass(frozen=True)
class Step:
    label: str
    state: str  # done, current, todo


def citizen_steps(status: str) -> list[Step]:
    """Where a complaint is, in four steps a citizen understands; asking for information is
    the current step 'Ditangani' with its own note on the page."""
    order = [N_("Diterima"), N_("Diteruskan ke instansi"), N_("Ditangani"), N_("Selesai")]
    reached = {"received": 0, "assigned": 1, "rejected": 1, "acknowledged": 2, "responded": 2,
               "needs_info": 2, "resolved": 3}.get(status, 0)
    steps = []
    for index, label in enumerate(order):
        state = "done" if index < reached or status == "resolved" else \
            "current" if index == reached else "todo"
        steps.append(Step(label, state))
    return steps


def form_errors(answer: dict[str, Any]) -> list[dict[str, str]]:
    """The APIs' 422 body (``errors: [{field, problem}]``) as the page's error summary; the
    field names are the form's own (``location.kelurahan`` → ``kelurahan``)."""
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, list):
        return [{"field": "", "problem": str(answer.get("detail", "permintaan ditolak"))}]
    return [{"field": str(e.get("field") or "").rsplit(".", 1)[-1],
             "problem": str(e.get("problem", ""))} for e in errors]


# --- who opens which page (the APIs' permission table decides) --------------------------------

# A page opens for the roles that may call the API the page exists for: the triage desk's
# page is for whoever may route a ticket by hand, the dashboard for whoever may read
# escalations. The page's other calls are checked again by the APIs themselves.
PAGE_ENDPOINTS = {
    "triage": ("POST", "/v1/tickets/{ticket_id}/route"),
    "review": ("POST", "/v1/tickets/{ticket_id}/review/accept"),
    "dashboard": ("GET", "/v1/escalations"),
    "acknowledge": ("POST", "/v1/escalations/{escalation_id}/acknowledge"),
    "compliance": ("GET", "/v1/reports/compliance"),
    "tickets": ("GET", "/v1/tickets"),
}


def scope_for(role: str | None, page: str) -> Scope | None:
    """The scope in which ``role`` may use ``page`` (that of its API), or None: refused."""
    method, path = PAGE_ENDPOINTS[page]
    rule = rule_for("sla", method, path)
    return None if rule is None or role is None else rule.get(role)


def may_open(role: str | None, page: str) -> bool:
    return scope_for(role, page) is not None


def home_page(role: str | None) -> str:
    """Where a person lands after signing in: the page of their work."""
    if may_open(role, "triage"):
        return "/triage"
    if role == "supervisor":
        return "/dashboard"
    return "/inbox"


def nav_pages(role: str | None) -> list[tuple[str, str]]:
    """(path, page name key) of the pages in the menu for ``role``."""
    pages = [("/inbox", "inbox")]
    if may_open(role, "triage"):
        pages.append(("/triage", "triage"))
    if may_open(role, "review"):
        pages.append(("/triage/review", "review"))
    if may_open(role, "dashboard"):
        pages.append(("/dashboard", "dashboard"))
    return pages


# --- the supervisor's dashboard ---------------------------------------------------------------

def duration_label(seconds: Any) -> str:
    """``2 hari 3 jam``, ``5 jam 10 menit``, ``45 detik``: how late, in its two largest units."""
    if seconds is None:
        return "—"
    left = max(0, int(float(seconds)))
    parts = []
    for size, unit in ((86400, "hari"), (3600, "jam"), (60, "menit"), (1, "detik")):
        if left >= size:
            parts.append(f"{left // size} {unit}")
            left %= size
        if len(parts) == 2:
            break
    return " ".join(parts) or "0 detik"


def seconds_late(ticket: dict[str, Any], now: datetime) -> float | None:
    """How long past its next deadline a ticket is (calendar time), None when not late."""
    due = parse_instant(ticket.get("due_next_at"))
    return (now - due).total_seconds() if due is not None and now > due else None


def period_days(first: str, last: str, today: date) -> tuple[date, date]:
    """The report's period as the person picks it, both days included: default the last 30
    days up to today; a reversed pair is put in order. Unparsable dates fall back too."""
    try:
        end = date.fromisoformat(last) if last else today
    except ValueError:
        end = today
    try:
        start = date.fromisoformat(first) if first else end - timedelta(days=29)
    except ValueError:
        start = end - timedelta(days=29)
    return (start, end) if start <= end else (end, start)


def page_count(total: int, capped: bool, *, page: int, shown: int, per_page: int) -> int:
    """How many pages to offer. With a capped count (the SLA counted only so far) at least
    the pages it counted, and one past a full page, so "next" stays while there may be more."""
    pages = max(1, -(-total // per_page))
    if not capped:
        return pages
    return max(pages, page + 1 if shown == per_page else page)
