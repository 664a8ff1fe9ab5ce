"""Routing decisions on a small hand-made rulebook, and the coverage of the default rulebook."""

from pathlib import Path
from typing import Any

import pytest

from services.router.domain import TITLE_WEIGHT, contains, mask_contacts, normalise, route
from services.router.rulebook import Rulebook, load_rulebook
from shared.contracts import Priority

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULEBOOK = ROOT / "services" / "router" / "rulebooks" / "kota-bengkulu.yaml"

# The agency codes of the default tenant, as listed in DOMAIN.md.
DOMAIN_CODES = [
    "DINKES", "RSUD", "DISDIKBUD", "PUPR", "PERKIM", "DLH", "DISHUB", "DUKCAPIL", "DINSOS",
    "SATPOLPP", "DAMKAR", "BPBD", "PDAM", "KOMINFO", "DPMPTSP", "DISNAKER", "DISPERINDAG",
    "BAPENDA", "DP3APPKB", "DISPERTAN", "DISPORA", "DISPAR", "INSPEKTORAT", "KELURAHAN", "TRIAGE",
    "EXT_PLN", "EXT_POLRI", "EXT_PROVINSI", "EXT_PUSAT", "EXT_BPJS",
]


def agency(code: str, *rules: dict[str, Any], authority: str = "kota") -> dict[str, Any]:
    return {"code": code, "name": f"Agency {code}", "authority": authority, "rules": list(rules)}


def make_rulebook(min_score: float = 1.0) -> Rulebook:
    return Rulebook.model_validate({
        "tenant": "test", "version": "test-v1", "min_score": min_score,
        "urgent_phrases": ["darurat", "korban jiwa"],
        "agencies": [
            agency("TRIAGE", authority="internal"),
            agency("DLH", {"id": "dlh-sampah", "any": ["sampah", "tumpukan sampah"],
                           "category": "sampah"}),
            agency("PUPR",
                   {"id": "pupr-jalan", "any": ["jalan rusak", "berlubang"], "category": "jalan"},
                   {"id": "pupr-drainase", "any": ["drainase", "got mampet"], "category": "drainase"}),
            agency("DISHUB", {"id": "dishub-pju", "any": ["lampu jalan"], "none": ["listrik rumah"]}),
            agency("EXT_PLN", {"id": "pln-listrik", "any": ["listrik"]}, authority="bumn"),
            agency("DISDIKBUD", {"id": "dik-pungli", "all": ["pungutan", "sekolah"], "weight": 2.0,
                                 "priority": "high", "category": "pungli"}),
            agency("DAMKAR", {"id": "damkar-api", "any": ["kebakaran"], "priority": "urgent"}),
        ],
    })


RULEBOOK = make_rulebook()


# --- normalise -----------------------------------------------------------------------------

def test_normalise_lowercases_and_pads() -> None:
    assert normalise("Jalan RUSAK") == " jalan rusak "


def test_normalise_folds_accents() -> None:
    assert normalise("Café Élite naïve") == " cafe elite naive "


def test_normalise_turns_punctuation_into_single_spaces() -> None:
    assert normalise("  got-mampet!!  di,jl.  Sudirman\n(RT 03) ") == " got mampet di jl sudirman rt 03 "


def test_normalise_of_empty_text_is_only_padding() -> None:
    assert normalise("") == "  "
    assert normalise("?!") == "  "


def test_contains_matches_whole_words_only() -> None:
    text = normalise("Ada sampahnya di selokan")
    assert not contains(text, "sampah")
    assert contains(text, "SELOKAN")
    assert contains(normalise("tumpukan sampah, bau!"), "tumpukan  Sampah")


# --- route ---------------------------------------------------------------------------------

def test_highest_score_wins() -> None:
    decision = route(RULEBOOK, "Jalan rusak dan berlubang, juga ada sampah di pinggirnya")
    assert decision.agency.code == "PUPR"
    assert decision.category == "jalan"
    assert decision.priority is Priority.NORMAL
    assert [c.agency for c in decision.explanation.candidates] == ["PUPR", "DLH"]
    # "jalan rusak" (two words: 1.5) + "berlubang" (1.0) beats "sampah" (1.0)
    assert decision.explanation.score == 2.5
    assert decision.explanation.candidates[1].score == 1.0


def test_scores_add_up_across_rules_of_one_agency() -> None:
    decision = route(RULEBOOK, "Jalan berlubang dan got mampet di depan rumah saya")
    assert decision.agency.code == "PUPR"
    assert decision.explanation.rule_ids == ["pupr-jalan", "pupr-drainase"]
    assert decision.explanation.score == 2.5


def test_title_phrase_counts_more() -> None:
    text = "Ada sampah dan drainase tersumbat di gang kami"
    untitled = route(RULEBOOK, text)
    assert untitled.agency.code == "DLH"  # a tie is broken by agency code
    assert {c.agency: c.score for c in untitled.explanation.candidates} == {"DLH": 1.0, "PUPR": 1.0}
    titled = route(RULEBOOK, text, title="Drainase")
    assert titled.agency.code == "PUPR"
    assert {c.agency: c.score for c in titled.explanation.candidates} == \
        {"PUPR": TITLE_WEIGHT, "DLH": 1.0}


def test_phrase_only_in_title_still_counts() -> None:
    decision = route(RULEBOOK, "Sudah tiga minggu tidak diangkut petugas", title="Sampah")
    assert decision.agency.code == "DLH"
    assert decision.explanation.score == TITLE_WEIGHT


def test_none_phrase_vetoes_the_rule() -> None:
    vetoed = route(RULEBOOK, "Lampu jalan mati dan listrik rumah padam")
    assert vetoed.agency.code == "EXT_PLN"
    assert all("dishub-pju" not in c.rule_ids for c in vetoed.explanation.candidates)
    allowed = route(RULEBOOK, "Lampu jalan mati sejak minggu lalu")
    assert allowed.agency.code == "DISHUB"
    assert allowed.explanation.rule_ids == ["dishub-pju"]


def test_all_phrases_are_required() -> None:
    partial = route(RULEBOOK, "Ada pungutan liar di pasar malam")
    assert partial.agency.code == "TRIAGE"
    assert partial.explanation.candidates == []
    full = route(RULEBOOK, "Ada pungutan untuk seragam di sekolah anak saya")
    assert full.agency.code == "DISDIKBUD"
    assert full.explanation.matched_terms == ["pungutan", "sekolah"]
    assert full.explanation.score == 4.0  # weight 2 x two one-word phrases
    assert full.priority is Priority.HIGH  # raised by the rule
    assert full.category == "pungli"


def test_category_comes_from_the_strongest_rule() -> None:
    # Two weak rules followed by a stronger one: the strongest rule's category must win,
    # whatever the order of the rules in the file.
    rules = [{"id": "jalan", "any": ["aspal"], "category": "jalan"},
             {"id": "trotoar", "any": ["trotoar"], "category": "trotoar"},
             {"id": "drainase", "any": ["got mampet parah"], "category": "drainase"}]
    for ordered in (rules, rules[::-1]):
        rulebook = Rulebook.model_validate({
            "tenant": "test", "agencies": [agency("TRIAGE", authority="internal"), agency("PUPR", *ordered)],
        })
        decision = route(rulebook, "Aspal dan trotoar rusak, got mampet parah")
        assert decision.agency.code == "PUPR"
        assert decision.category == "drainase", [r["id"] for r in ordered]


def test_rule_priority_urgent_without_urgent_phrase() -> None:
    decision = route(RULEBOOK, "Terjadi kebakaran gudang di belakang pasar")
    assert decision.agency.code == "DAMKAR"
    assert decision.priority is Priority.URGENT


def test_below_min_score_goes_to_fallback_with_candidates() -> None:
    rulebook = make_rulebook(min_score=2.0)
    decision = route(rulebook, "Ada sampah di depan rumah, mohon diangkut")
    assert decision.agency.code == "TRIAGE"
    assert decision.category is None
    assert decision.priority is Priority.NORMAL
    assert [(c.agency, c.score, c.rule_ids) for c in decision.explanation.candidates] == \
        [("DLH", 1.0, ["dlh-sampah"])]
    assert "below 2.0" in decision.explanation.reason
    assert decision.explanation.rulebook_version == "test-v1"


def test_no_match_goes_to_fallback() -> None:
    decision = route(RULEBOOK, "Saya ingin bertanya tentang jadwal kegiatan wali kota")
    assert decision.agency.code == "TRIAGE"
    assert decision.explanation.candidates == []
    assert decision.explanation.reason.startswith("no rule matched")
    assert decision.explanation.confidence == 0.0


def test_urgent_phrase_sets_priority_urgent() -> None:
    decision = route(RULEBOOK, "Darurat! Tumpukan sampah longsor ke rumah warga")
    assert decision.agency.code == "DLH"
    assert decision.priority is Priority.URGENT
    assert "darurat" in decision.explanation.matched_terms
    assert "tumpukan sampah" in decision.explanation.matched_terms


def test_urgent_phrase_in_fallback_is_kept() -> None:
    decision = route(RULEBOOK, "Ada korban jiwa, mohon segera ditangani")
    assert decision.agency.code == "TRIAGE"
    assert decision.priority is Priority.URGENT
    assert decision.explanation.matched_terms == ["korban jiwa"]


def test_explanation_is_complete() -> None:
    text = "Jalan rusak, got mampet, ada sampah, lampu jalan mati, dan pungutan di sekolah"
    decision = route(RULEBOOK, text)
    explanation = decision.explanation
    assert decision.agency.code == "DISDIKBUD"
    assert explanation.rulebook_version == "test-v1"
    assert explanation.rule_ids == ["dik-pungli"]
    assert explanation.matched_terms == ["pungutan", "sekolah"]
    assert [c.agency for c in explanation.candidates] == ["DISDIKBUD", "PUPR", "DISHUB"]
    assert [c.score for c in explanation.candidates] == [4.0, 3.0, 1.5]
    assert len(explanation.candidates) == 3
    assert explanation.candidates[1].rule_ids == ["pupr-jalan", "pupr-drainase"]
    assert "'pungutan'" in explanation.reason and "DISDIKBUD" in explanation.reason


def test_confidence_is_share_of_total_score() -> None:
    decision = route(RULEBOOK, "Jalan rusak dan berlubang, juga ada sampah di pinggirnya")
    assert 0.0 <= decision.explanation.confidence <= 1.0
    assert decision.explanation.confidence == round(2.5 / 3.5, 3)
    alone = route(RULEBOOK, "Sampah tidak diangkut")
    assert alone.explanation.confidence == 1.0


@pytest.mark.parametrize("text", [
    "sampah", "jalan rusak sampah lampu jalan listrik", "pungutan sekolah kebakaran darurat",
    "tidak ada apa-apa di sini", "drainase drainase drainase",
])
def test_confidence_always_within_unit_interval(text: str) -> None:
    confidence = route(RULEBOOK, text, title=text).explanation.confidence
    assert 0.0 <= confidence <= 1.0


def test_routing_is_case_and_accent_insensitive() -> None:
    assert route(RULEBOOK, "SAMPÄH menumpuk").agency.code == "DLH"


# --- masking ------------------------------------------------------------------------------

@pytest.mark.parametrize("phone", ["0812-3456-7890", "081234567890", "+62 812 3456 7890",
                                   "6281234567890", "(0736) 21234"])
def test_mask_contacts_hides_phone_numbers(phone: str) -> None:
    masked = mask_contacts(f"Hubungi saya di {phone} ya pak.")
    assert masked == "Hubungi saya di [nomor disembunyikan] ya pak."


def test_mask_contacts_hides_emails() -> None:
    masked = mask_contacts("Balas ke budi.santoso+lapor@mail.bengkulu.id, terima kasih")
    assert masked == "Balas ke [email disembunyikan], terima kasih"


def test_mask_contacts_hides_several_contacts() -> None:
    masked = mask_contacts("WA 0812-3456-7890 atau 0821-1111-2222, email a@b.co")
    assert "0812" not in masked and "0821" not in masked and "a@b.co" not in masked
    assert masked.count("[nomor disembunyikan]") == 2
    assert masked.count("[email disembunyikan]") == 1


def test_mask_contacts_keeps_ordinary_numbers() -> None:
    text = "Jalan rusak di RT 03 RW 02 sejak tahun 2025, lubang 2 meter."
    assert mask_contacts(text) == text


# --- the default rulebook ----------------------------------------------------------------------

def test_domain_code_list_is_complete() -> None:
    assert len(DOMAIN_CODES) == 30
    assert len(set(DOMAIN_CODES)) == 30


def test_default_rulebook_defines_every_domain_agency() -> None:
    rulebook = load_rulebook(DEFAULT_RULEBOOK)
    missing = sorted(set(DOMAIN_CODES) - set(rulebook.codes))
    assert missing == []
    assert rulebook.fallback == "TRIAGE"
    assert rulebook.version


def test_default_rulebook_has_rules_for_every_agency_but_triage() -> None:
    rulebook = load_rulebook(DEFAULT_RULEBOOK)
    without_rules = sorted(a.code for a in rulebook.agencies if not a.rules and a.code != "TRIAGE")
    assert without_rules == []
