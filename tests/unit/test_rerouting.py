"""Re-routing decisions: rejected agencies are never chosen again, a valid suggestion is taken,
two bounces go to the triage desk, and the triage desk's manual choice is recorded."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.router.rerouting import reroute, valid_suggestion
from services.router.rulebook import Rulebook, load_rulebook
from shared.contracts import Channel, Priority, RerouteRequest, RoutingExplanation, TicketRouted
from tests.unit.support import write_yaml

RULEBOOK = {
    "tenant": "test", "fallback": "TRIAGE",
    "agencies": [
        {"code": "TRIAGE", "name": "Meja Pengaduan", "authority": "internal",
         "supervisors": {"agency_head": "Kabag Organisasi"}},
        {"code": "DLH", "name": "Dinas Lingkungan Hidup", "authority": "kota",
         "rules": [{"id": "dlh.sampah", "any": ["sampah", "tps"]}]},
        {"code": "PUPR", "name": "Dinas PUPR", "authority": "kota",
         "rules": [{"id": "pupr.drainase", "any": ["drainase", "got", "selokan"]}]},
        {"code": "PERKIM", "name": "Dinas Perkim", "authority": "kota",
         "rules": [{"id": "perkim.lampu", "any": ["lampu jalan"]}]},
    ],
}
TEXT = "Sampah menyumbat selokan di depan rumah, airnya meluap ke jalan"


@pytest.fixture
def rulebook(tmp_path: Path) -> Rulebook:
    return load_rulebook(write_yaml(tmp_path, RULEBOOK, "rulebook.yaml"))


def ticket(agency: str, rejected_by: list[str], **extra: Any) -> TicketRouted:
    return TicketRouted(
        agency=agency, agency_name=agency, authority="kota", priority=Priority.HIGH,
        routing=RoutingExplanation(rulebook_version="old"), channel=Channel.WHATSAPP,
        text=TEXT, submitted_at=datetime(2026, 11, 27, 3, tzinfo=UTC), assignment=1,
        rejected_by=rejected_by, **extra)


def rejection(agency: str, rejected_by: list[str], suggested: str | None = None) -> RerouteRequest:
    return RerouteRequest(ticket=ticket(agency, rejected_by), cause="rejected", actor="petugas",
                          reason="bukan tupoksi kami", suggested_agency=suggested)


def test_the_rejecting_agency_is_never_chosen_again(rulebook: Rulebook) -> None:
    outcome = reroute(rulebook, rejection("DLH", ["DLH"]), max_bounces=2)
    assert outcome.decision.agency.code == "PUPR"
    assert not outcome.bounced_out
    assert "DLH rejected it (bukan tupoksi kami)" in outcome.decision.explanation.reason
    assert "DLH" not in [c.agency for c in outcome.decision.explanation.candidates]


def test_the_ticket_keeps_its_priority_when_rerouted(rulebook: Rulebook) -> None:
    assert reroute(rulebook, rejection("DLH", ["DLH"]), max_bounces=2).decision.priority is Priority.HIGH


def test_a_valid_suggestion_is_preferred_over_the_rules(rulebook: Rulebook) -> None:
    outcome = reroute(rulebook, rejection("DLH", ["DLH"], suggested="perkim"), max_bounces=2)
    assert outcome.decision.agency.code == "PERKIM"
    assert "suggested PERKIM" in outcome.decision.explanation.reason
    assert "rulebook's choice was PUPR" in outcome.decision.explanation.reason


@pytest.mark.parametrize("suggested", ["DINSOS", "DLH", "TRIAGE", ""])
def test_an_invalid_suggestion_is_ignored(rulebook: Rulebook, suggested: str) -> None:
    assert valid_suggestion(rulebook, suggested, frozenset({"DLH"})) is None
    outcome = reroute(rulebook, rejection("DLH", ["DLH"], suggested=suggested or None), max_bounces=2)
    assert outcome.decision.agency.code == "PUPR"


def test_when_every_matching_agency_rejected_the_triage_desk_decides(rulebook: Rulebook) -> None:
    outcome = reroute(rulebook, rejection("PUPR", ["PUPR"]), max_bounces=3)
    assert outcome.decision.agency.code == "DLH"
    outcome = reroute(rulebook, rejection("DLH", ["PUPR", "DLH"]), max_bounces=3)
    assert outcome.decision.agency.code == "TRIAGE"
    assert not outcome.bounced_out


def test_after_two_bounces_the_triage_desk_takes_it(rulebook: Rulebook) -> None:
    outcome = reroute(rulebook, rejection("PUPR", ["DLH", "PUPR"], suggested="PERKIM"), max_bounces=2)
    assert outcome.decision.agency.code == "TRIAGE"
    assert outcome.bounced_out
    assert outcome.decision.explanation.reason.startswith("rejected by 2 agencies (DLH, PUPR)")


def test_the_triage_desk_can_assign_by_hand_even_a_rejecting_agency(rulebook: Rulebook) -> None:
    request = RerouteRequest(ticket=ticket("TRIAGE", ["DLH", "PUPR"]), cause="manual",
                             actor="admin.rina", reason="saluran tersumbat sampah: DLH angkut",
                             agency="DLH")
    outcome = reroute(rulebook, request, max_bounces=2)
    assert outcome.decision.agency.code == "DLH"
    assert not outcome.bounced_out
    explanation = outcome.decision.explanation
    assert explanation.reason == "assigned by hand by admin.rina: saluran tersumbat sampah: DLH angkut"
    assert explanation.rulebook_version == rulebook.version
    assert explanation.confidence == 1.0


def test_a_manual_choice_the_rulebook_no_longer_knows_goes_to_triage(rulebook: Rulebook) -> None:
    request = RerouteRequest(ticket=ticket("TRIAGE", []), cause="manual", actor="admin",
                             reason="x", agency="DISHUB")
    outcome = reroute(rulebook, request, max_bounces=2)
    assert outcome.decision.agency.code == "TRIAGE"
    assert "DISHUB, which the rulebook does not know" in outcome.decision.explanation.reason
