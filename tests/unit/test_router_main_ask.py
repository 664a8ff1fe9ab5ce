"""The main ask (which institution a complaint is about, against what it merely mentions) and
implied urgency: on a small hand-made rulebook for the mechanics, and on the default rulebook
for the complaints of issue 13."""

from pathlib import Path
from typing import Any

import pytest

from services.router.domain import route
from services.router.rulebook import Rulebook, load_rulebook
from shared.contracts import Priority

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULEBOOK = ROOT / "services" / "router" / "rulebooks" / "kota-bengkulu.yaml"


def agency(code: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "name": f"Agency {code}", "authority": "kota", "rules": list(rules)}


def make_rulebook(**main_ask: Any) -> Rulebook:
    cues = {"verbs": {"refused": ["ditolak"], "asked to pay": ["disuruh bayar"],
                      "did not come": ["tidak datang"]},
            "agent_cues": ["di", "oleh"], "held_cues": ["pemegang", "pakai"],
            "emphasis_cues": ["yang paling"], **main_ask}
    return Rulebook.model_validate({
        "tenant": "test", "version": "test-v1",
        "thresholds": {"min_score": 0.5, "min_margin": 0.1},
        "main_ask": cues,
        "signals": [
            {"id": "urgent.medis", "effect": "urgent", "label": "medical emergency",
             "any": ["pendarahan", "kejang"]},
            {"id": "raise.rentan", "effect": "raise", "any": ["lansia"]},
            {"id": "high.kekerasan", "effect": "high", "label": "violence", "any": ["dipukuli"]},
        ],
        "agencies": [
            agency("TRIAGE"),
            agency("RSUD", {"id": "rsud", "any": ["rsud"]},
                   {"id": "rsud.pasien", "any": ["pasien"], "weight": 0.5, "ask": False}),
            agency("BPJS", {"id": "bpjs", "any": ["kis", "bpjs"], "weight": 1.2}),
            agency("KEL", {"id": "kel", "any": ["sktm"], "weight": 1.2}),
            agency("DINKES", {"id": "dinkes", "any": ["puskesmas"]},
                     {"id": "dinkes.sekolah", "any": ["sekolah"]}),
            agency("DIK", {"id": "dik", "any": ["sekolah", "guru"]}),
        ],
    })


@pytest.fixture(scope="module")
def rulebook() -> Rulebook:
    return make_rulebook()


def test_the_agent_of_a_complaint_verb_wins_a_close_call(rulebook: Rulebook) -> None:
    # without the main ask the card mentioned (weight 1.2) beats the hospital that refused
    plain = route(make_rulebook(verbs={}), "di rsud ditolak padahal kis aktif")
    assert plain.agency.code == "BPJS"
    decision = route(rulebook, "di rsud ditolak padahal kis aktif")
    assert decision.agency.code == "RSUD"
    assert "main ask: RSUD refused (di rsud ditolak)" in decision.explanation.reason


def test_a_verb_before_its_agent_cue_is_read_across_a_few_words(rulebook: Rulebook) -> None:
    decision = route(rulebook, "sktm saya ditolak masuk kamar di rsud")
    assert decision.agency.code == "RSUD"
    assert "main ask: RSUD refused (ditolak … di rsud)" in decision.explanation.reason


def test_a_held_document_weighs_less_and_is_never_the_ask(rulebook: Rulebook) -> None:
    held = route(rulebook, "saya pemegang sktm ditolak di rsud")
    named = route(rulebook, "saya urus sktm ditolak di rsud")
    kel = {c.agency: c.score for c in named.explanation.candidates}["KEL"]
    kel_held = {c.agency: c.score for c in held.explanation.candidates}["KEL"]
    assert kel_held == pytest.approx(kel / 2)
    assert held.agency.code == "RSUD"


def test_a_verb_that_is_another_agencys_phrase_scores_for_the_ask_only() -> None:
    data = make_rulebook().model_dump()
    data["agencies"][2]["rules"][0]["any"].append("disuruh bayar")  # BPJS lists the verb
    rulebook = Rulebook.model_validate(data)
    decision = route(rulebook, "pakai bpjs tapi di puskesmas disuruh bayar")
    assert decision.agency.code == "DINKES"
    without_verb = route(rulebook, "pakai bpjs tapi di puskesmas")
    scores = {c.agency: c.score for c in decision.explanation.candidates}
    assert scores["BPJS"] == {c.agency: c.score for c in without_verb.explanation.candidates}["BPJS"]


def test_who_is_concerned_is_not_the_ask() -> None:
    concerned = route(make_rulebook(), "pasien ditolak")
    assert concerned.agency.code == "RSUD"
    assert "main ask" not in concerned.explanation.reason
    data = make_rulebook().model_dump()
    data["agencies"][1]["rules"][1]["ask"] = True
    assert "main ask: RSUD refused" in route(Rulebook.model_validate(data),
                                             "pasien ditolak").explanation.reason


def test_two_agencies_equally_near_give_no_ask(rulebook: Rulebook) -> None:
    decision = route(rulebook, "guru ditolak puskesmas")
    assert "main ask" not in decision.explanation.reason


def test_an_emphasis_cue_names_the_ask_without_a_verb(rulebook: Rulebook) -> None:
    decision = route(rulebook, "yang paling parah guru, puskesmas juga")
    assert decision.agency.code == "DIK"
    assert "main ask: DIK asked about (yang paling … guru)" in decision.explanation.reason


def test_no_cues_no_main_ask() -> None:
    off = make_rulebook(verbs={}, agent_cues=[], held_cues=[], emphasis_cues=[])
    decision = route(off, "di rsud ditolak, pemegang sktm")
    assert "main ask" not in decision.explanation.reason


def test_priority_reasons_name_the_signal_and_its_label(rulebook: Rulebook) -> None:
    decision = route(rulebook, "pasien pendarahan di rsud tidak datang dokternya")
    assert decision.priority is Priority.URGENT
    assert "urgent by 'pendarahan' (urgent.medis: medical emergency)" in decision.explanation.reason


def test_a_high_signal_sets_at_least_high_without_going_further(rulebook: Rulebook) -> None:
    assert route(rulebook, "anak dipukuli guru di sekolah").priority is Priority.HIGH
    assert route(rulebook, "lansia di rsud dipukuli").priority is Priority.HIGH


# ------------------------------------------------------------------ the default rulebook

@pytest.fixture(scope="module")
def default() -> Rulebook:
    return load_rulebook(DEFAULT_RULEBOOK)


@pytest.mark.parametrize(("text", "code", "priority", "ask"), [
    ("Pasien tidak mampu di RSUD disuruh tebus obat sendiri, padahal pakai KIS",
     "RSUD", Priority.HIGH, "main ask: RSUD asked to pay (di rsud disuruh tebus obat)"),
    ("Bapak saya pemegang SKTM ditolak masuk rawat inap di RSUD, katanya harus bayar uang "
     "muka dulu", "RSUD", Priority.HIGH, "main ask: RSUD refused (ditolak … di rsud)"),
    ("Istri saya pendarahan mau melahirkan, ambulans puskesmas tidak datang padahal sudah "
     "ditelepon berkali-kali", "DINKES", Priority.URGENT,
     "main ask: DINKES did not come (puskesmas tidak datang)"),
])
def test_the_complaints_of_issue_13(default: Rulebook, text: str, code: str,
                                    priority: Priority, ask: str) -> None:
    decision = route(default, text)
    assert (decision.agency.code, decision.priority) == (code, priority)
    assert ask in decision.explanation.reason


def test_the_poor_patient_and_the_emergency_are_explained(default: Rulebook) -> None:
    poor = route(default, "Bapak saya pemegang SKTM ditolak masuk rawat inap di RSUD")
    assert "raise.kartu_miskin_rs: poor patient at the hospital" in poor.explanation.reason
    labour = route(default, "Istri saya pendarahan mau melahirkan, ambulans puskesmas tidak datang")
    assert "urgent by 'pendarahan', 'mau melahirkan' (urgent.medis: medical emergency)" in (
        labour.explanation.reason)


@pytest.mark.parametrize("text", [
    "Anak saya kejang-kejang di rumah, puskesmas tutup",
    "Ada korsleting di rumah tetangga, keluar asap dari atap",
    "Tanggul jebol, air masuk rumah sudah sepinggang",
    "Tetangga memukuli istrinya, terdengar teriakan minta tolong",
    "Bapak saya sesak napas dan tidak sadarkan diri, ambulans belum datang",
])
def test_emergencies_told_by_symptoms_are_urgent(default: Rulebook, text: str) -> None:
    assert route(default, text).priority is Priority.URGENT


@pytest.mark.parametrize("text", [
    "Got depan rumah meluap, airnya masuk rumah tiap hujan",
    "Asap bakar sampah dari belakang pasar tiap sore",
])
def test_chronic_nuisances_are_not_urgent(default: Rulebook, text: str) -> None:
    assert route(default, text).priority is not Priority.URGENT


def test_the_quote_holds_rulebook_words_only(rulebook: Rulebook) -> None:
    # the word between the agent cue and the agency's phrase may be a name: never quoted
    decision = route(rulebook, "saya disuruh bayar oleh budi puskesmas")
    assert "main ask: DINKES asked to pay (disuruh bayar oleh … puskesmas)" in (
        decision.explanation.reason)
    assert "budi" not in decision.explanation.reason
