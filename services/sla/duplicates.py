"""Duplicates: the same problem reported again (a pothole reported twenty times) is linked to
the open ticket that has it, not opened as new work. Pure decisions; the store finds the
candidates (``duplicate_store``), the flows link (``Sla.open_tickets``).

A complaint is a duplicate of an open ticket of the same tenant, agency and category whose
coordinates lie within the category's ``metres`` and whose submission lies within its
``hours`` (the rulebook's ``duplicates``; the router puts the window in ``ticket.routed``).
The nearest such ticket is the primary (then the earliest). A duplicate gets no clocks and no
ladder; its citizen follows the primary; the primary counts its reports.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from services.router.places import haversine_metres
from shared.contracts import DuplicateWindow, TicketRouted

_METRES_PER_DEGREE = 111_320.0


class DuplicateLink(TypedDict):
    """One duplicate in the SLA's ``duplicates`` collection (keyed by its own ticket id)."""

    _id: str
    tenant: str
    primary: str
    agency: str
    category: str
    metres: float
    submitted_at: datetime
    linked_at: datetime
    reason: str


class Report(TypedDict):
    """A duplicate as the primary ticket lists it (``duplicates``): never who reported it."""

    ticket_id: str
    metres: float
    submitted_at: datetime
    linked_at: datetime


@dataclass(frozen=True)
class Probe:
    """What a new complaint is compared by."""

    tenant: str
    agency: str
    category: str
    lat: float
    lon: float
    submitted_at: datetime
    window: DuplicateWindow


def probe_of(tenant: str, routed: TicketRouted) -> Probe | None:
    """The comparison for a first assignment that asks for one, else None."""
    location, window = routed.location, routed.duplicates
    if (window is None or routed.assignment != 1 or routed.category is None or location is None
            or location.lat is None or location.lon is None or routed.linked_to is not None):
        return None
    return Probe(tenant, routed.agency, routed.category, location.lat, location.lon,
                 routed.submitted_at, window)


def search_box(probe: Probe) -> dict[str, tuple[float, float]]:
    """Latitude and longitude ranges that hold every point within the window's metres: the
    store's coarse filter, refined by ``nearest_primary``."""
    dlat = probe.window.metres / _METRES_PER_DEGREE
    dlon = probe.window.metres / (_METRES_PER_DEGREE * max(math.cos(math.radians(probe.lat)), 0.01))
    return {"lat": (probe.lat - dlat, probe.lat + dlat), "lon": (probe.lon - dlon, probe.lon + dlon)}


def time_range(probe: Probe) -> tuple[datetime, datetime]:
    reach = timedelta(hours=probe.window.hours)
    return probe.submitted_at - reach, probe.submitted_at + reach


def nearest_primary(probe: Probe, ticket_id: str,
                    candidates: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], float] | None:
    """The open ticket this complaint duplicates, with its distance in metres; None if none
    lies within the window (the candidates may come from a coarse query)."""
    low, high = time_range(probe)
    best: tuple[float, datetime, Mapping[str, Any]] | None = None
    for ticket in candidates:
        location = ticket.get("location") or {}
        lat, lon = location.get("lat"), location.get("lon")
        submitted = ticket.get("submitted_at")
        if ticket.get("_id") == ticket_id or lat is None or lon is None or submitted is None:
            continue
        if ticket.get("category") != probe.category or ticket.get("agency") != probe.agency:
            continue
        if not low <= _aware(submitted, probe.submitted_at) <= high:
            continue
        metres = haversine_metres(probe.lat, probe.lon, float(lat), float(lon))
        if metres > probe.window.metres:
            continue
        key = (metres, _aware(submitted, probe.submitted_at), ticket)
        if best is None or key[:2] < best[:2]:
            best = key
    return None if best is None else (best[2], best[0])


def link(ticket_id: str, probe: Probe, primary: Mapping[str, Any], metres: float,
         now: datetime) -> DuplicateLink:
    primary_submitted = _aware(primary["submitted_at"], probe.submitted_at)
    hours = (probe.submitted_at - primary_submitted).total_seconds() / 3600
    when = f"{hours:.1f} h after it" if hours >= 0 else f"{-hours:.1f} h before it"
    reason = (f"duplicate of {primary['_id']}: {metres:.0f} m from it, same agency "
              f"{probe.agency} and category {probe.category!r}, submitted {when} (window "
              f"{probe.window.metres:.0f} m, {probe.window.hours:g} h); linked, not opened as new work")
    return DuplicateLink(_id=ticket_id, tenant=probe.tenant, primary=str(primary["_id"]),
                         agency=probe.agency, category=probe.category, metres=round(metres, 1),
                         submitted_at=probe.submitted_at, linked_at=now, reason=reason)


def with_report(ticket: Mapping[str, Any], duplicate: DuplicateLink) -> dict[str, Any] | None:
    """The primary ticket counting one more report, or None when it counts this one already."""
    listed: list[Report] = list(ticket.get("duplicates") or [])
    if any(r["ticket_id"] == duplicate["_id"] for r in listed):
        return None
    listed.append(Report(ticket_id=duplicate["_id"], metres=duplicate["metres"],
                         submitted_at=duplicate["submitted_at"], linked_at=duplicate["linked_at"]))
    return {**ticket, "duplicates": listed, "reports": 1 + len(listed),
            "version": int(ticket["version"]) + 1}


def _aware(instant: datetime, like: datetime) -> datetime:
    """Stored dates come back naive (UTC) from MongoDB; compare them as aware ones."""
    if instant.tzinfo is None and like.tzinfo is not None:
        return instant.replace(tzinfo=like.tzinfo)
    return instant
