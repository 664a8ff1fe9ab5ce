"""How overlapping phrases are settled: which phrase may hide another, what conditions see,
and how often one stretch of text may score."""

from typing import Any

from services.router.domain import route
from services.router.rulebook import Rulebook


def agency(code: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "name": f"Agency {code}", "authority": "kota", "rules": list(rules)}


def make_rulebook(*agencies: dict[str, Any]) -> Rulebook:
    return Rulebook.model_validate({
        "tenant": "test", "version": "test-v1",
        "thresholds": {"min_score": 0.5, "min_margin": 0.1},
        "lexicon": {"slang": {}, "negations": []},
        "agencies": [agency("TRIAGE"), *agencies],
    })


def codes(decision: Any) -> list[str]:
    return [c.agency for c in decision.explanation.candidates]


# --- only phrases of rules that fire hide others --------------------------------------------

def test_a_phrase_of_a_rule_that_does_not_fire_hides_nothing() -> None:
    rulebook = make_rulebook(
        agency("BAPENDA", {"id": "pbb", "any": ["bayar pbb"]}),
        agency("PLN", {"id": "tagihan", "require": [["sudah bayar"], ["listrik"]]}),
    )
    assert route(rulebook, "Sudah bayar PBB tapi masih ditagih").agency.code == "BAPENDA"
    # ... while a rule that does fire still claims the words it shares
    both = route(rulebook, "sudah bayar pbb dan listrik")
    assert "BAPENDA" not in codes(both)
    assert both.agency.code == "PLN"


def test_what_a_losing_phrase_hid_is_uncovered_again() -> None:
    rulebook = make_rulebook(
        agency("DISHUB", {"id": "lampu", "any": ["lampu jalan"]}),
        agency("PUPR", {"id": "jalan", "any": ["jalan rusak"]}),
        agency("DLH", {"id": "limbah", "any": ["rusak parah"]}),
    )
    # "lampu jalan" hides "jalan rusak", whose rule then fires no more: "rusak parah" counts
    decision = route(rulebook, "lampu jalan rusak parah")
    assert set(codes(decision)) == {"DISHUB", "DLH"}


# --- conditions see every mention ----------------------------------------------------------

def test_a_require_group_sees_a_word_inside_a_longer_phrase() -> None:
    rulebook = make_rulebook(
        agency("RSUD", {"id": "pasien", "any": ["pasien bpjs"]}),
        agency("BPJS", {"id": "iuran", "weight": 2.0,
                        "require": [["bpjs"], ["iuran", "tunggakan"]]}),
    )
    decision = route(rulebook, "pasien bpjs disuruh bayar tunggakan iuran")
    assert set(codes(decision)) == {"RSUD", "BPJS"}


def test_an_all_phrase_inside_a_longer_phrase_still_counts_as_met() -> None:
    rulebook = make_rulebook(
        agency("BAPENDA", {"id": "hotel", "any": ["pajak hotel"]}),
        agency("INSPEKTORAT", {"id": "pajak", "all": ["pajak"], "any": ["dikorupsi"]}),
    )
    decision = route(rulebook, "pajak hotel dikorupsi petugas")
    assert set(codes(decision)) == {"BAPENDA", "INSPEKTORAT"}


def test_a_condition_inside_a_longer_phrase_scores_nothing_itself() -> None:
    """The condition is met, but its words scored for the longer phrase: only the rest of
    the rule's evidence scores."""
    hidden = make_rulebook(
        agency("RSUD", {"id": "pasien", "any": ["pasien bpjs"]}),
        agency("BPJS", {"id": "iuran", "require": [["bpjs"], ["iuran"]]}),
    )
    shown = route(hidden, "bpjs iuran").explanation.score
    inside = route(hidden, "pasien bpjs iuran")
    bpjs_score = next(c.score for c in inside.explanation.candidates if c.agency == "BPJS")
    assert 0 < bpjs_score < shown


# --- a stretch of text scores once per agency -------------------------------------------------

def test_a_phrase_two_rules_of_one_agency_list_scores_once() -> None:
    one_rule = make_rulebook(agency("DLH", {"id": "sampah", "any": ["sampah"]}))
    two_rules = make_rulebook(agency("DLH", {"id": "sampah", "any": ["sampah"]},
                                     {"id": "sampah-lagi", "any": ["sampah"]}))
    once = route(one_rule, "sampah menumpuk").explanation
    twice = route(two_rules, "sampah menumpuk").explanation
    assert twice.rule_ids == ["sampah", "sampah-lagi"]
    assert twice.score == once.score


def test_a_word_scores_once_though_read_as_written_and_through_its_stem() -> None:
    rulebook = make_rulebook(agency("DISHUB", {"id": "tempat", "any": ["parkiran"]},
                                    {"id": "area", "any": ["area parkir"]}))
    written = route(rulebook, "parkiran").explanation.score
    stemmed = route(rulebook, "area parkir").explanation.score
    # "area parkiran": "parkiran" as written, and "area parkir" through the stem of it
    both = route(rulebook, "area parkiran").explanation
    assert both.rule_ids == ["tempat", "area"]
    assert both.score <= max(written, stemmed)


def test_a_condition_and_an_any_phrase_on_the_same_word_score_once() -> None:
    rulebook = make_rulebook(agency("INSPEKTORAT", {"id": "oknum", "any": ["oknum"]},
                                    {"id": "minta", "require": [["oknum"], ["minta"]]}))
    alone = route(rulebook, "oknum").explanation.score
    decision = route(rulebook, "oknum minta").explanation
    minta_only = make_rulebook(agency("INSPEKTORAT", {"id": "minta", "any": ["minta"]}))
    # the rules' scores overlap on "oknum": it counts once (at its best), "minta" on top
    assert decision.rule_ids == ["oknum", "minta"]
    assert decision.score <= alone + route(minta_only, "minta").explanation.score
