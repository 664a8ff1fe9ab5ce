"""Urgency told by situations (issue 13): a symptom and a now cue in one breath (``near``), an
emergency told as over (over cues, no now cue) and the agency that answers an emergency
(``responder``), on a small hand-made rulebook and through the pure helpers."""

from typing import Any

import pytest

from services.router.domain import route
from services.router.engine import together
from services.router.evidence import Found, Readings
from services.router.rulebook import Rulebook
from shared.contracts import Priority


def agency(code: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "name": f"Agency {code}", "authority": "kota", "rules": list(rules)}


def make_rulebook(responder_weight: float = 1.0, **changes: Any) -> Rulebook:
    content: dict[str, Any] = {
        "tenant": "test", "version": "test-v1",
        "thresholds": {"min_score": 0.5, "min_margin": 0.1, "responder_weight": responder_weight},
        "signals": [
            {"id": "urgent.api", "effect": "urgent", "label": "fire", "responder": "DAMKAR",
             "any": ["kebakaran"]},
            {"id": "urgent.napas", "effect": "urgent", "label": "breathing trouble now",
             "near": 4, "require": [["sesak"], ["dari tadi", "sekarang"]]},
        ],
        "lexicon": {"over_cues": ["minggu lalu", "sudah dipadamkan"],
                    "now_cues": ["sekarang", "dari tadi"]},
        "agencies": [
            agency("TRIAGE"),
            agency("DAMKAR", {"id": "damkar", "any": ["pemadam"]}),
            agency("DINKES", {"id": "dinkes", "any": ["puskesmas"]}),
            agency("KELURAHAN", {"id": "kelurahan", "any": ["surat keterangan"]}),
        ],
    }
    content.update(changes)
    return Rulebook.model_validate(content)


RULEBOOK = make_rulebook()


# --- near: a symptom and a now cue in one breath --------------------------------------------

def test_a_symptom_beside_a_now_cue_is_urgent() -> None:
    decision = route(RULEBOOK, "Ibu saya sesak dari tadi, puskesmas tidak menjawab")
    assert decision.agency.code == "DINKES"
    assert decision.priority is Priority.URGENT
    assert "urgent.napas" in decision.explanation.reason


def test_a_symptom_far_from_the_now_cue_is_not() -> None:
    text = ("Dua tahun lalu ibu saya sesak karena debu pabrik dan berobat ke puskesmas; "
            "sekarang saya tanya jadwal imunisasi")
    decision = route(RULEBOOK, text)
    assert decision.agency.code == "DINKES"
    assert decision.priority is Priority.NORMAL


def test_together_needs_every_group_within_the_distance() -> None:
    # phrase ids 0 (symptom) and 1 (now cue) at token starts; a negated one does not count
    readings = Readings(set(), [(0, 2, 2, True, 1.0, False), (1, 9, 9, True, 1.0, False),
                                (1, 4, 4, True, 1.0, True)], {}, set(), set())
    groups = [frozenset({0}), frozenset({1})]
    assert not together(groups, readings, near=4)
    assert together(groups, readings, near=7)
    nearer = Readings(set(), [*readings.scoring, (1, 5, 5, True, 1.0, False)], {}, set(), set())
    assert together(groups, nearer, near=4)
    assert not together([frozenset({0}), frozenset({2})], nearer, near=12)


# --- over: a report of an emergency that is over --------------------------------------------

def test_an_emergency_told_as_over_is_high_not_urgent() -> None:
    text = ("Minggu lalu rumah saya kebakaran dan sudah dipadamkan petugas pemadam. Saya minta "
            "surat keterangan kebakaran.")
    decision = route(RULEBOOK, text)
    assert decision.priority is Priority.HIGH
    assert "not urgent (told as over: 'minggu lalu') by 'kebakaran'" in decision.explanation.reason


def test_a_now_cue_keeps_it_urgent() -> None:
    text = "Minggu lalu sudah dipadamkan, sekarang kebakaran lagi di gudang yang sama"
    assert route(RULEBOOK, text).priority is Priority.URGENT


def test_told_over_is_the_first_over_cue_without_a_now_cue() -> None:
    found = Found([], set(), set(), set(), set(), [])
    assert found.told_over() is None
    found.over_cues.extend([(7, 8), (2, 3)])
    assert found.told_over() == (2, 3)
    found.now_cues.append((5, 5))
    assert found.told_over() is None


# --- responder: who answers an emergency ----------------------------------------------------

def test_an_emergency_names_its_responder_in_the_explanation() -> None:
    decision = route(RULEBOOK, "Rumah tetangga kebakaran, apinya besar")
    assert decision.agency.code == "DAMKAR"
    assert "signal:urgent.api" in decision.explanation.rule_ids
    assert "who answers this emergency (fire, urgent.api)" in decision.explanation.reason


def test_a_responder_does_not_outweigh_a_strong_named_agency() -> None:
    text = "kebakaran kecil di dapur puskesmas, puskesmas tutup, pelayanan puskesmas terhenti"
    decision = route(make_rulebook(responder_weight=0.3), text)
    assert decision.agency.code == "DINKES"


def test_an_emergency_told_as_over_names_no_responder() -> None:
    text = "Minggu lalu rumah saya kebakaran, alhamdulillah sudah dipadamkan"
    decision = route(RULEBOOK, text)
    assert all(not c.startswith("signal:") for c in decision.explanation.rule_ids)


def test_responder_weight_zero_keeps_signals_out_of_routing() -> None:
    decision = route(make_rulebook(responder_weight=0.0), "Rumah tetangga kebakaran")
    assert decision.agency.code == "TRIAGE"


def test_a_responder_must_be_an_agency() -> None:
    signal = {"id": "urgent.x", "effect": "urgent", "any": ["x"], "responder": "NOBODY"}
    with pytest.raises(ValueError, match="signal responders are not agencies: NOBODY"):
        make_rulebook(signals=[signal])


def test_a_responder_already_named_by_phrases_gains_half() -> None:
    text = "Rumah tetangga kebakaran, pemadam belum datang"
    with_phrase = route(RULEBOOK, text)
    without = route(make_rulebook(responder_weight=0.0), text)
    assert with_phrase.agency.code == without.agency.code == "DAMKAR"
    assert "signal:urgent.api" in with_phrase.explanation.rule_ids
    assert with_phrase.explanation.score == pytest.approx(without.explanation.score + 0.5)


# --- aside: an institution named only as where the reporter goes next or works --------------

def school_rulebook(aside: list[str]) -> Rulebook:
    return Rulebook.model_validate({
        "tenant": "test", "version": "test-v1",
        "thresholds": {"min_score": 0.5, "min_margin": 0.1},
        "main_ask": {"aside_cues": aside, "held_cues": ["pemegang"]},
        "agencies": [
            agency("TRIAGE"),
            agency("DISDIKBUD", {"id": "smp", "any": ["smp", "ijazah ditahan"], "none": ["smk"]}),
            agency("EXT_PROVINSI", {"id": "smk", "any": ["smk"]}),
        ],
    })


def test_a_school_named_as_the_next_step_vetoes_nothing() -> None:
    text = "Ijazah ditahan SMP karena uang komite, anak saya mau daftar ke SMK jadi terhambat"
    assert route(school_rulebook([]), text).agency.code == "EXT_PROVINSI"
    decision = route(school_rulebook(["mau daftar ke"]), text)
    assert decision.agency.code == "DISDIKBUD"
    assert "named aside, where the reporter goes next or works (vetoes nothing): 'smk'" in (
        decision.explanation.reason)


def test_a_school_complained_of_still_vetoes() -> None:
    text = "Ijazah ditahan SMK, padahal waktu SMP tidak pernah"
    assert route(school_rulebook(["mau daftar ke"]), text).agency.code == "EXT_PROVINSI"


def test_set_aside_reads_one_or_two_words_after_the_cue() -> None:
    found = Found([], set(), set(), set(), set(), [])
    found.aside_ends.add(3)
    assert found.set_aside(4)
    assert found.set_aside(5)
    assert not found.set_aside(6)
    assert not found.set_aside(3)
