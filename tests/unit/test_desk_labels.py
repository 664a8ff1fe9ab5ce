"""Labelled examples from the desk: which reroute requests are examples (a person named the
agency), what they keep (text, place, the corrected decision; never the reporter), and which
one counts when a ticket was corrected twice."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.router.labels import (
    LabelledSetError,
    desk_examples,
    for_training,
    label_of,
    latest_per_ticket,
    read_labelled,
)
from services.router.rulebook import Rulebook, load_rulebook
from shared.contracts import (
    Candidate,
    Channel,
    Envelope,
    EventType,
    Location,
    Priority,
    Reporter,
    RerouteRequest,
    RoutingExplanation,
    TicketRouted,
)
from tests.unit.support import write_yaml

RULEBOOK = {
    "tenant": "kota-bengkulu", "fallback": "TRIAGE",
    "agencies": [
        {"code": "TRIAGE", "name": "Meja Pengaduan", "authority": "internal"},
        {"code": "DLH", "name": "Dinas Lingkungan Hidup", "authority": "kota",
         "rules": [{"id": "dlh.sampah", "any": ["sampah"]}]},
        {"code": "PERKIM", "name": "Dinas Perkim", "authority": "kota",
         "rules": [{"id": "perkim.taman", "any": ["taman kota"]}]},
    ],
}
CLOSE_CALL = RoutingExplanation(
    rulebook_version="v1", confidence=0.1, reason="too close to call",
    candidates=[Candidate(agency="DLH", score=1.2, rule_ids=["dlh.sampah"])])


@pytest.fixture
def rulebook(tmp_path: Path) -> Rulebook:
    return load_rulebook(write_yaml(tmp_path, RULEBOOK, "rulebook.yaml"))


def requested(cause: str, *, held_by: str = "TRIAGE", event_id: str = "evt-1", assignment: int = 1,
              rejected_by: tuple[str, ...] = (), **extra: Any) -> Envelope[RerouteRequest]:
    ticket = TicketRouted(
        agency=held_by, agency_name=held_by, authority="kota", priority=Priority.NORMAL,
        routing=CLOSE_CALL, channel=Channel.WHATSAPP, text="Pohon tumbang di taman",
        title="Pohon", location=Location(kecamatan="Ratu Samban", address="Jl. Suprapto"),
        reporter=Reporter(name="Budi Santoso", phone="+6281234567890"),
        submitted_at=datetime(2026, 11, 27, 3, tzinfo=UTC), assignment=assignment,
        rejected_by=list(rejected_by))
    request = RerouteRequest(ticket=ticket, cause=cause,
                             actor="meja.triase (triage)", reason="by hand", **extra)
    return Envelope[RerouteRequest](id=event_id, type=EventType.REROUTE_REQUESTED,
                                    tenant="kota-bengkulu", ticket_id="T-1", data=request)


def test_a_desk_assignment_is_an_example_with_the_decision_it_corrected(rulebook: Rulebook) -> None:
    doc = label_of(rulebook, requested("manual", agency="PERKIM"), max_bounces=2)
    assert doc is not None
    assert (doc["_id"], doc["kind"], doc["agency"], doc["assignment"]) == ("evt-1", "desk", "PERKIM", 2)
    assert doc["routed"]["agency"] == "TRIAGE" and doc["routed"]["confidence"] == 0.1
    assert doc["routed"]["candidates"][0]["agency"] == "DLH"
    assert doc["text"] == "Pohon tumbang di taman" and doc["location"] == {
        "kecamatan": "Ratu Samban", "address": "Jl. Suprapto"}
    assert doc["corrected_by"] == "meja.triase (triage)"
    stored = repr(doc)
    assert "Budi" not in stored and "6281234567890" not in stored and "reporter" not in stored


def test_a_reroute_by_hand_and_a_taken_suggestion_are_examples(rulebook: Rulebook) -> None:
    moved = label_of(rulebook, requested("manual", held_by="DLH", agency="PERKIM"),
                     max_bounces=2)
    assert moved is not None and (moved["kind"], moved["agency"]) == ("reroute", "PERKIM")
    suggested = label_of(rulebook, requested("rejected", held_by="DLH", suggested_agency="perkim",
                                             rejected_by=("DLH",)), max_bounces=2)
    assert suggested is not None and (suggested["kind"], suggested["agency"]) == ("suggestion", "PERKIM")
    assert suggested["corrected_by"] is None


@pytest.mark.parametrize(("cause", "extra", "rejected_by"), [
    ("rejected", {"suggested_agency": None}, ("DLH",)),  # nobody named the agency
    ("rejected", {"suggested_agency": "NOPE"}, ("DLH",)),  # not an agency
    ("rejected", {"suggested_agency": "DLH"}, ("DLH",)),  # the rejecting agency itself
    ("rejected", {"suggested_agency": "PERKIM"}, ("DLH", "PUPR")),  # bounced out: desk decides
    ("manual", {"agency": "TRIAGE"}, ()),  # back to the desk is not an answer
    ("manual", {"agency": "GONE"}, ()),  # no longer in the rulebook
])
def test_requests_that_name_no_usable_agency_are_not_examples(
        rulebook: Rulebook, cause: str, extra: dict[str, Any], rejected_by: tuple[str, ...]) -> None:
    assert label_of(rulebook, requested(cause, held_by="DLH", rejected_by=rejected_by, **extra),
                    max_bounces=2) is None


def test_the_last_correction_of_a_ticket_is_its_label(rulebook: Rulebook) -> None:
    first = label_of(rulebook, requested("manual", held_by="TRIAGE", agency="DLH"), max_bounces=2)
    second = label_of(rulebook, requested("manual", held_by="DLH", event_id="evt-2", assignment=2,
                                          agency="PERKIM"), max_bounces=2)
    assert first is not None and second is not None
    [latest] = latest_per_ticket([second, first])
    assert latest["_id"] == "evt-2"
    [example] = desk_examples([first, second])
    assert (example.agency, example.routed, example.source) == ("PERKIM", "DLH", "desk")


def test_labelled_sets_read_agency_or_expect_and_holdouts_are_never_training(tmp_path: Path) -> None:
    dev = tmp_path / "routing-dev.jsonl"
    dev.write_text('{"id": "a", "text": "Sampah", "agency": "DLH"}\n\n'
                   '{"id": "b", "text": "Taman kota", "expect": "PERKIM"}\n')
    assert [(e.id, e.agency) for e in for_training(dev)] == [("a", "DLH"), ("b", "PERKIM")]
    holdout = tmp_path / "routing-holdout.jsonl"
    holdout.write_text(dev.read_text())
    with pytest.raises(LabelledSetError, match="holdout or blind set is for evaluation"):
        for_training(holdout)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "text": "Rahasia Budi 0812"}\n')
    with pytest.raises(LabelledSetError, match=r"broken.jsonl:1: KeyError: missing field 'expect'") as error:
        read_labelled(broken)
    assert "Budi" not in str(error.value)
