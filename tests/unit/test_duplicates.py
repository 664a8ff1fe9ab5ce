"""Duplicates: which open ticket a new complaint repeats, by category window (pure)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.router.places import haversine_metres
from services.sla.duplicates import link, nearest_primary, probe_of, search_box, with_report
from services.sla.public import duplicate_state
from shared.contracts import (
    DuplicateWindow,
    Location,
    PublicStep,
    RoutingExplanation,
    TicketChanged,
    TicketRouted,
)

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
HERE = (-3.79578, 102.28232)  # Sawah Lebar
WINDOW = DuplicateWindow(metres=50, hours=720)
NORTH_30M = HERE[0] + 30 / 111_320  # 30 m north


def routed(lat: float = HERE[0], lon: float = HERE[1], *, category: str | None = "Jalan rusak",
           window: DuplicateWindow | None = WINDOW, assignment: int = 1,
           at: datetime = T0) -> TicketRouted:
    return TicketRouted(
        agency="PUPR", agency_name="Dinas PUPR", authority="kota", priority="normal",
        category=category, routing=RoutingExplanation(rulebook_version="v"), channel="web",
        text="jalan berlubang", location=Location(lat=lat, lon=lon), submitted_at=at,
        assignment=assignment, duplicates=window)


def ticket(ticket_id: str, lat: float = HERE[0], lon: float = HERE[1], *, hours_before: float = 1,
           category: str = "Jalan rusak", agency: str = "PUPR") -> dict[str, Any]:
    return {"_id": ticket_id, "agency": agency, "category": category, "status": "assigned",
            "location": {"lat": lat, "lon": lon},
            # as MongoDB returns it: naive UTC
            "submitted_at": (T0 - timedelta(hours=hours_before)).replace(tzinfo=None),
            "version": 3}


def test_only_a_first_assignment_with_a_window_and_coordinates_is_compared() -> None:
    assert probe_of("kota-bengkulu", routed()) is not None
    assert probe_of("kota-bengkulu", routed(window=None)) is None
    assert probe_of("kota-bengkulu", routed(assignment=2)) is None
    assert probe_of("kota-bengkulu", routed(category=None)) is None
    no_coordinates = routed().model_copy(update={"location": Location(kelurahan="Jitra")})
    assert probe_of("kota-bengkulu", no_coordinates) is None


def test_a_report_30_m_away_of_the_same_problem_is_a_duplicate() -> None:
    probe = probe_of("kota-bengkulu", routed(NORTH_30M))
    assert probe is not None
    found = nearest_primary(probe, "NEW", [ticket("FIRST")])
    assert found is not None
    primary, metres = found
    assert primary["_id"] == "FIRST"
    assert metres == pytest.approx(30, abs=0.5)


@pytest.mark.parametrize(("candidate", "why"), [
    (ticket("FAR", HERE[0] + 60 / 111_320), "60 m away: beyond 50 m"),
    (ticket("OLD", hours_before=721), "31 days before: beyond 720 h"),
    (ticket("OTHER", category="Sampah"), "another category"),
    (ticket("ELSEWHERE", agency="EXT_PROVINSI"), "another agency"),
    (ticket("NEW"), "the complaint itself (a redelivery)"),
    ({**ticket("NOWHERE"), "location": {"kelurahan": "Jitra"}}, "no coordinates"),
])
def test_outside_the_window_is_new_work(candidate: dict[str, Any], why: str) -> None:
    probe = probe_of("kota-bengkulu", routed())
    assert probe is not None
    assert nearest_primary(probe, "NEW", [candidate]) is None, why


def test_the_nearest_open_ticket_is_the_primary_then_the_earliest() -> None:
    probe = probe_of("kota-bengkulu", routed())
    assert probe is not None
    near, nearer = ticket("A", HERE[0] + 20 / 111_320), ticket("B", HERE[0] + 10 / 111_320)
    found = nearest_primary(probe, "NEW", [near, nearer])
    assert found is not None and found[0]["_id"] == "B"
    early, late = ticket("EARLY", hours_before=5), ticket("LATE", hours_before=1)
    found = nearest_primary(probe, "NEW", [late, early])
    assert found is not None and found[0]["_id"] == "EARLY"


def test_the_search_box_holds_the_whole_circle() -> None:
    probe = probe_of("kota-bengkulu", routed())
    assert probe is not None
    box = search_box(probe)
    assert haversine_metres(HERE[0], HERE[1], box["lat"][1], HERE[1]) == pytest.approx(50, rel=0.01)
    assert haversine_metres(HERE[0], HERE[1], HERE[0], box["lon"][1]) == pytest.approx(50, rel=0.01)


def test_the_link_explains_itself_and_the_primary_counts_each_report_once() -> None:
    probe = probe_of("kota-bengkulu", routed(NORTH_30M))
    assert probe is not None
    first = ticket("FIRST", hours_before=2)
    duplicate = link("NEW", probe, first, 30.2, T0)
    assert duplicate["primary"] == "FIRST"
    assert duplicate["reason"].startswith("duplicate of FIRST: 30 m from it, same agency PUPR")
    assert "submitted 2.0 h after it" in duplicate["reason"]
    counted = with_report(first, duplicate)
    assert counted is not None
    assert (counted["reports"], counted["version"]) == (2, 4)
    assert counted["duplicates"][0]["ticket_id"] == "NEW"
    assert "reporter" not in counted["duplicates"][0]
    assert with_report(counted, duplicate) is None  # a redelivery counts nothing


def test_the_duplicates_citizen_sees_the_primarys_progress_not_its_words() -> None:
    probe = probe_of("kota-bengkulu", routed(NORTH_30M))
    assert probe is not None
    duplicate = link("NEW", probe, ticket("FIRST"), 30.0, T0)
    primary = TicketChanged(
        version=5, status="needs_info", agency="PUPR",
        routing=RoutingExplanation(rulebook_version="v", matched_terms=["lubang di depan rumah pak"],
                                   reason="PUPR by 'lubang di depan rumah pak'"),
        history=[PublicStep(at=T0, action="needs_info", agency="PUPR", note="Pak Budi, fotonya?")],
        replies_applied=["r1"])
    shown = duplicate_state(primary, duplicate)
    assert (shown.version, shown.agency, shown.duplicate_of) == (5, "PUPR", "FIRST")
    assert shown.status == "acknowledged"  # the first citizen's question is not theirs to answer
    assert shown.history[0].note is None and shown.replies_applied == []
    assert shown.routing is not None and shown.routing.matched_terms == []
    assert shown.routing.reason == duplicate["reason"]
    resolved = duplicate_state(primary.model_copy(update={"status": "resolved"}), duplicate)
    assert resolved.status == "resolved"  # closing the primary closes the duplicate's view
