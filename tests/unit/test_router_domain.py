"""Routing decisions on a small hand-made rulebook, and the authority traps of the default one."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.domain import mask_contacts, route
from services.router.engine import compiled
from services.router.rulebook import Rulebook, load_rulebook
from shared.contracts import Channel, Location, Priority

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


def make_rulebook(**thresholds: float) -> Rulebook:
    return Rulebook.model_validate({
        "tenant": "test", "version": "test-v1",
        "thresholds": {"min_score": 0.5, "min_margin": 0.1, **thresholds},
        "signals": [
            {"id": "urgent.darurat", "effect": "urgent", "any": ["darurat", "korban jiwa"]},
            {"id": "raise.rentan", "effect": "raise", "any": ["lansia", "ibu hamil"]},
        ],
        "lexicon": {"slang": {"jl": "jalan", "gk": "tidak"}, "negations": ["tidak ada"],
                    "denials": ["bukan"], "landmark_cues": ["depan", "dekat"],
                    "landmark_nouns": ["kantor"]},
        "gazetteer": {
            "kecamatan": {"Ratu Agung": ["Sawah Lebar"], "Teluk Segara": ["Pasar Melintang"]},
            "roads": {"provinsi": ["Adam Malik"], "nasional": ["Lintas Barat"],
                      "kota": ["Pariwisata"]},
        },
        "agencies": [
            agency("TRIAGE", authority="internal"),
            agency("DLH", {"id": "dlh-sampah", "any": ["sampah", "tumpukan sampah"],
                           "category": "sampah"}),
            agency("PUPR",
                   {"id": "pupr-jalan", "any": ["jalan rusak", "berlubang"], "category": "jalan",
                    "none": ["@jalan_provinsi", "@jalan_nasional"]},
                   {"id": "pupr-drainase", "any": ["drainase", "got tersumbat"],
                    "category": "drainase"}),
            agency("DISHUB", {"id": "dishub-pju", "any": ["lampu jalan", "polisi tidur"]}),
            agency("EXT_POLRI", {"id": "polri", "any": ["polisi", "pencurian"]}, authority="pusat"),
            agency("DISDIKBUD", {"id": "dik-pungutan", "weight": 2.0, "priority": "high",
                                 "category": "pungli", "none": ["sma"],
                                 "require": [["pungutan", "uang komite"], ["sekolah", "smp"]]}),
            agency("EXT_PROVINSI",
                   {"id": "prov-sma", "any": ["sma"], "weight": 2.0},
                   {"id": "prov-jalan", "all": ["@jalan_provinsi"], "any": ["rusak", "berlubang"]},
                   authority="provinsi"),
            agency("EXT_PUSAT", {"id": "pusat-jalan", "all": ["@jalan_nasional"],
                                 "any": ["rusak", "berlubang"]}, authority="pusat"),
            agency("DISPERTAN", {"id": "tani", "any": ["sawah", "pupuk"]}),
            agency("DAMKAR", {"id": "damkar-api", "any": ["kebakaran"], "priority": "urgent"}),
            agency("DISPAR", {"id": "dispar", "any": ["pariwisata"]}),
            agency("DISNAKER", {"id": "naker-gaji", "all": ["gaji"], "any": ["telat"],
                                "none": ["guru"]}),
            agency("GURU", {"id": "guru", "any": ["guru honorer"]}),
            agency("BPN", {"id": "bpn", "any": ["pertanahan"]}, authority="pusat"),
            agency("PESISIR",
                   {"id": "pesisir-lokasi", "any": ["abrasi"],
                    "when": {"kecamatan": ["Teluk Segara"]}},
                   {"id": "pesisir-telepon", "any": ["abrasi"],
                    "when": {"channel": ["call_centre"]}}),
        ],
    })


RULEBOOK = make_rulebook()


def codes(decision: Any) -> list[str]:
    return [c.agency for c in decision.explanation.candidates]


# --- scoring -------------------------------------------------------------------------------

def test_highest_score_wins() -> None:
    decision = route(RULEBOOK, "Jalan rusak dan berlubang, juga ada sampah di pinggirnya")
    assert decision.agency.code == "PUPR"
    assert decision.category == "jalan"
    assert decision.priority is Priority.NORMAL
    assert codes(decision) == ["PUPR", "DLH"]
    pupr, dlh = decision.explanation.candidates
    assert pupr.score > dlh.score > 0
    assert decision.explanation.score == pupr.score


def test_longer_phrases_weigh_more() -> None:
    longer = route(RULEBOOK, "ada tumpukan sampah").explanation
    shorter = route(RULEBOOK, "ada sampah").explanation
    assert longer.matched_terms == ["tumpukan sampah"]  # "sampah" inside it does not count again
    assert longer.score > shorter.score


def test_phrases_many_agencies_share_weigh_less() -> None:
    rulebook = Rulebook.model_validate({"tenant": "t", "agencies": [
        agency("TRIAGE", authority="internal"),
        agency("DISHUB", {"id": "a", "any": ["parkir", "angkot"]}),
        agency("BAPENDA", {"id": "b", "any": ["parkir"]}),
        agency("SATPOLPP", {"id": "c", "any": ["parkir"]}),
    ]})
    shared = route(rulebook, "parkir").explanation.candidates[0].score
    unique = route(rulebook, "angkot").explanation.candidates[0].score
    assert shared < unique


def test_a_phrase_counts_once_however_often_it_is_repeated() -> None:
    once = route(RULEBOOK, "drainase").explanation.score
    assert route(RULEBOOK, "drainase drainase, DRAINASE!").explanation.score == once


def test_title_phrase_counts_more() -> None:
    text = "Ada sampah dan drainase di gang kami"
    untitled = route(RULEBOOK, text)
    scores = {c.agency: c.score for c in untitled.explanation.candidates}
    assert scores["DLH"] == scores["PUPR"]
    titled = route(RULEBOOK, text, title="Drainase")
    assert titled.agency.code == "PUPR"
    assert titled.explanation.score == pytest.approx(1.5 * scores["PUPR"], abs=0.002)


def test_phrase_only_in_title_still_counts() -> None:
    decision = route(RULEBOOK, "Sudah tiga minggu tidak diangkut petugas", title="Sampah")
    assert decision.agency.code == "DLH"


def test_none_phrase_vetoes_the_rule() -> None:
    smp = route(RULEBOOK, "Ada pungutan uang komite di SMP anak saya")
    assert smp.agency.code == "DISDIKBUD"
    sma = route(RULEBOOK, "Ada pungutan uang komite di SMA anak saya")
    assert sma.agency.code == "EXT_PROVINSI"
    assert "DISDIKBUD" not in codes(sma)


def test_every_required_group_is_needed() -> None:
    partial = route(RULEBOOK, "Ada pungutan liar di pasar malam")
    assert partial.agency.code == "TRIAGE"
    assert partial.explanation.candidates == []
    full = route(RULEBOOK, "uang komite di sekolah memberatkan")
    assert full.agency.code == "DISDIKBUD"
    assert full.explanation.matched_terms == ["uang komite", "sekolah"]  # strongest first
    assert full.priority is Priority.HIGH  # raised by the rule
    assert full.category == "pungli"


def test_a_phrase_inside_a_longer_one_does_not_count() -> None:
    decision = route(RULEBOOK, "polisi tidur di gang kami terlalu tinggi")
    assert decision.agency.code == "DISHUB"
    assert codes(decision) == ["DISHUB"]  # not "polisi" for EXT_POLRI
    assert route(RULEBOOK, "lapor polisi soal pencurian").agency.code == "EXT_POLRI"


def test_an_earlier_phrase_claims_the_words_it_shares() -> None:
    decision = route(RULEBOOK, "lampu jalan rusak di depan rumah")
    assert decision.agency.code == "DISHUB"
    assert codes(decision) == ["DISHUB"]  # a broken lamp, not a "jalan rusak"


def test_a_denied_phrase_does_not_count() -> None:
    decision = route(RULEBOOK, "ini soal sampah, bukan drainase")
    assert decision.agency.code == "DLH"
    assert codes(decision) == ["DLH"]


def test_a_landmark_is_where_not_what() -> None:
    decision = route(RULEBOOK, "sampah menumpuk di depan SMA")
    assert decision.agency.code == "DLH"
    assert codes(decision) == ["DLH"]
    assert codes(route(RULEBOOK, "jalan rusak dekat kantor pertanahan")) == ["PUPR"]
    assert route(RULEBOOK, "pungutan uang komite di SMP dekat SMA").agency.code == "DISDIKBUD"


def test_a_veto_sees_its_phrase_inside_a_longer_one() -> None:
    assert route(RULEBOOK, "gaji karyawan toko telat").agency.code == "DISNAKER"
    decision = route(RULEBOOK, "gaji guru honorer telat")
    assert decision.agency.code == "GURU"
    assert "DISNAKER" not in codes(decision)


def test_conditions_spread_over_the_text_score_like_one_phrase() -> None:
    def score(rule: dict[str, Any]) -> float:
        rulebook = Rulebook.model_validate({"tenant": "t", "agencies": [
            agency("TRIAGE", authority="internal"), agency("X", {"id": "x", **rule})]})
        return route(rulebook, "petugas minta uang").explanation.score

    separate = score({"any": ["petugas", "minta", "uang"]})
    spread = score({"require": [["petugas"], ["minta"], ["uang"]]})
    assert 0 < spread < separate


def test_category_comes_from_the_strongest_rule() -> None:
    rules = [{"id": "jalan", "any": ["aspal"], "category": "jalan"},
             {"id": "trotoar", "any": ["trotoar"], "category": "trotoar"},
             {"id": "drainase", "any": ["got mampet parah"], "category": "drainase"}]
    for ordered in (rules, rules[::-1]):
        rulebook = Rulebook.model_validate({"tenant": "test", "agencies": [
            agency("TRIAGE", authority="internal"), agency("PUPR", *ordered)]})
        decision = route(rulebook, "Aspal dan trotoar rusak, got mampet parah")
        assert decision.agency.code == "PUPR"
        assert decision.category == "drainase", [r["id"] for r in ordered]


# --- text handling through the rules ------------------------------------------------------------

def test_slang_in_text_meets_standard_phrases() -> None:
    decision = route(RULEBOOK, "jl rusak parah")
    assert decision.agency.code == "PUPR"
    assert decision.explanation.matched_terms == ["jalan rusak"]


def test_stems_find_affixed_words_but_count_less() -> None:
    affixed = route(RULEBOOK, "sampahnya dibiarkan")
    assert affixed.agency.code == "DLH"
    assert affixed.explanation.score < route(RULEBOOK, "sampah dibiarkan").explanation.score


def test_stems_never_widen_a_phrase_to_its_root() -> None:
    assert route(RULEBOOK, "urusan di kantor pertanahan").agency.code == "BPN"
    assert route(RULEBOOK, "tanah kosong di belakang rumah").explanation.candidates == []


def test_the_possessive_goes_from_words_the_stemmer_does_not_know() -> None:
    decision = route(RULEBOOK, "smpnya minta uang komite di sekolah")
    assert decision.agency.code == "DISDIKBUD"


def test_a_small_typo_still_routes_and_is_explained() -> None:
    decision = route(RULEBOOK, "drainasse depan rumah")
    assert decision.agency.code == "PUPR"
    assert "'drainasse' as 'drainase'" in decision.explanation.reason


def test_routing_is_case_and_accent_insensitive() -> None:
    assert route(RULEBOOK, "SAMPÄH menumpuk").agency.code == "DLH"


# --- places and roads -----------------------------------------------------------------------

def test_place_names_are_addresses_not_topics() -> None:
    address = route(RULEBOOK, "banyak sampah di Sawah Lebar")
    assert address.agency.code == "DLH"
    assert "DISPERTAN" not in codes(address)
    assert route(RULEBOOK, "sawah petani kering").agency.code == "DISPERTAN"


@pytest.mark.parametrize(("text", "expected"), [
    ("Jl. Adam Malik berlubang", "EXT_PROVINSI"),
    ("jalan lintas barat berlubang", "EXT_PUSAT"),
    ("jalan di gang kami berlubang", "PUPR"),
])
def test_road_status_decides_whose_pothole_it_is(text: str, expected: str) -> None:
    decision = route(RULEBOOK, text)
    assert decision.agency.code == expected
    assert decision.agency.code == "PUPR" or "PUPR" not in codes(decision)


def test_road_names_are_addresses() -> None:
    decision = route(RULEBOOK, "lampu jalan di Jl. Pariwisata mati")
    assert decision.agency.code == "DISHUB"
    assert "DISPAR" not in codes(decision)
    assert route(RULEBOOK, "promosi pariwisata kurang").agency.code == "DISPAR"


def test_location_conditions() -> None:
    assert route(RULEBOOK, "abrasi makin parah").agency.code == "TRIAGE"
    by_kecamatan = Location(kecamatan="Teluk Segara")
    assert route(RULEBOOK, "abrasi", location=by_kecamatan).agency.code == "PESISIR"
    by_kelurahan = Location(kelurahan="pasar melintang")  # the gazetteer knows its kecamatan
    assert route(RULEBOOK, "abrasi", location=by_kelurahan).agency.code == "PESISIR"
    elsewhere = Location(kecamatan="Ratu Agung")
    assert route(RULEBOOK, "abrasi", location=elsewhere).agency.code == "TRIAGE"
    assert route(RULEBOOK, "abrasi di Pasar Melintang").agency.code == "PESISIR"


def test_channel_conditions() -> None:
    assert route(RULEBOOK, "abrasi", channel=Channel.CALL_CENTRE).agency.code == "PESISIR"
    assert route(RULEBOOK, "abrasi", channel=Channel.WEB).agency.code == "TRIAGE"


# --- triage, exclusion, confidence -----------------------------------------------------------------

def test_exclusion_never_chooses_an_agency_that_rejected() -> None:
    text = "Jalan rusak dan berlubang, juga ada sampah"
    decision = route(RULEBOOK, text, exclude=frozenset({"PUPR"}))
    assert decision.agency.code == "DLH"
    assert codes(decision) == ["DLH"]
    assert "excluded PUPR" in decision.explanation.reason
    nothing_left = route(RULEBOOK, "sampah", exclude=frozenset({"DLH"}))
    assert nothing_left.agency.code == "TRIAGE"


def test_a_close_call_goes_to_triage_with_the_candidates() -> None:
    decision = route(RULEBOOK, "sampah dan drainase")
    assert decision.agency.code == "TRIAGE"
    assert decision.category is None
    assert sorted(codes(decision)) == ["DLH", "PUPR"]
    assert decision.explanation.reason.startswith("too close to call")
    assert decision.explanation.confidence < 0.1


def test_below_min_score_goes_to_fallback_with_candidates() -> None:
    decision = route(make_rulebook(min_score=5.0), "Ada sampah di depan rumah")
    assert decision.agency.code == "TRIAGE"
    assert [(c.agency, c.rule_ids) for c in decision.explanation.candidates] == \
        [("DLH", ["dlh-sampah"])]
    assert "is below 5.0" in decision.explanation.reason
    assert decision.explanation.rulebook_version == "test-v1"


def test_below_min_confidence_goes_to_fallback() -> None:
    decision = route(make_rulebook(min_confidence=0.99), "Ada sampah di depan rumah")
    assert decision.agency.code == "TRIAGE"
    assert decision.explanation.reason.startswith("confidence")


def test_no_match_goes_to_fallback() -> None:
    decision = route(RULEBOOK, "Saya ingin bertanya tentang jadwal kegiatan wali kota")
    assert decision.agency.code == "TRIAGE"
    assert decision.explanation.candidates == []
    assert decision.explanation.reason.startswith("no rule matched")
    assert decision.explanation.confidence == 0.0


def test_confidence_grows_with_the_lead_and_the_evidence() -> None:
    alone = route(RULEBOOK, "jalan rusak berlubang").explanation.confidence
    contested = route(RULEBOOK, "jalan rusak berlubang, ada sampah").explanation.confidence
    weak = route(RULEBOOK, "berlubang").explanation.confidence
    assert 0 < contested < alone <= 1
    assert 0 < weak < alone


@pytest.mark.parametrize("text", [
    "sampah", "jalan rusak sampah lampu jalan polisi", "pungutan sekolah kebakaran darurat",
    "tidak ada apa-apa di sini", "drainase drainase drainase",
])
def test_confidence_always_within_unit_interval(text: str) -> None:
    confidence = route(RULEBOOK, text, title=text).explanation.confidence
    assert 0.0 <= confidence <= 1.0


# --- priority --------------------------------------------------------------------------------

def test_rule_priority_urgent_without_signal() -> None:
    decision = route(RULEBOOK, "Terjadi kebakaran gudang di belakang pasar")
    assert decision.agency.code == "DAMKAR"
    assert decision.priority is Priority.URGENT


def test_urgent_signal_sets_priority_urgent() -> None:
    decision = route(RULEBOOK, "Darurat! Tumpukan sampah longsor ke rumah warga")
    assert decision.agency.code == "DLH"
    assert decision.priority is Priority.URGENT
    assert decision.explanation.rule_ids == ["dlh-sampah"]  # rules of the winner only
    assert "(urgent.darurat)" in decision.explanation.reason
    assert "darurat" in decision.explanation.matched_terms


def test_negated_signal_does_not_count() -> None:
    decision = route(RULEBOOK, "Sampah longsor, untung tidak ada korban jiwa")
    assert decision.priority is Priority.NORMAL
    assert "korban jiwa" not in decision.explanation.matched_terms


def test_vulnerable_people_raise_priority_one_level() -> None:
    assert route(RULEBOOK, "sampah depan rumah lansia").priority is Priority.HIGH
    school = route(RULEBOOK, "uang komite di sekolah, ibu hamil pun ditagih")
    assert school.priority is Priority.URGENT  # the rule's high, raised once


def test_urgent_signal_in_fallback_is_kept() -> None:
    decision = route(RULEBOOK, "Ada korban jiwa, mohon segera ditangani")
    assert decision.agency.code == "TRIAGE"
    assert decision.priority is Priority.URGENT
    assert decision.explanation.matched_terms == ["korban jiwa"]
    assert decision.explanation.rule_ids == []
    assert "urgent by 'korban jiwa' (urgent.darurat)" in decision.explanation.reason


# --- explanation and compilation ---------------------------------------------------------------

def test_explanation_is_complete() -> None:
    text = "Jalan rusak, got tersumbat, ada sampah, lampu jalan mati, dan uang komite di sekolah"
    explanation = route(RULEBOOK, text).explanation
    assert explanation.rulebook_version == "test-v1"
    assert explanation.rule_ids == ["dik-pungutan"]
    assert explanation.matched_terms == ["uang komite", "sekolah"]
    assert [c.agency for c in explanation.candidates] == ["DISDIKBUD", "PUPR", "DISHUB"]
    assert explanation.candidates[1].rule_ids == ["pupr-jalan", "pupr-drainase"]
    scores = [c.score for c in explanation.candidates]
    assert scores == sorted(scores, reverse=True)
    assert "DISDIKBUD" in explanation.reason and "'uang komite'" in explanation.reason
    assert "ahead of PUPR" in explanation.reason


def test_external_authority_is_named_in_the_reason() -> None:
    reason = route(RULEBOOK, "SMA negeri").explanation.reason
    assert "not the city's authority (provinsi)" in reason


def test_the_rulebook_compiles_once_per_object() -> None:
    rulebook = make_rulebook()
    assert compiled(rulebook) is compiled(rulebook)
    reloaded = make_rulebook()
    assert compiled(reloaded) is not compiled(rulebook)
    assert compiled(rulebook.model_copy()) is not compiled(rulebook)


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

@pytest.fixture(scope="module")
def default() -> Rulebook:
    return load_rulebook(DEFAULT_RULEBOOK)


def test_domain_code_list_is_complete() -> None:
    assert len(DOMAIN_CODES) == 30
    assert len(set(DOMAIN_CODES)) == 30


def test_default_rulebook_defines_every_domain_agency(default: Rulebook) -> None:
    assert sorted(set(DOMAIN_CODES) - set(default.codes)) == []
    assert default.fallback == "TRIAGE"
    assert default.version


def test_default_rulebook_has_rules_for_every_agency_but_triage(default: Rulebook) -> None:
    without_rules = sorted(a.code for a in default.agencies if not a.rules and a.code != "TRIAGE")
    assert without_rules == []


@pytest.mark.parametrize(("text", "expected"), [
    ("Pungutan uang komite di SMA Negeri 5 memberatkan", "EXT_PROVINSI"),
    ("Pungutan uang komite di SMP Negeri 2 memberatkan", "DISDIKBUD"),
    ("anak saya tidak diterima di SMAN 2 padahal dekat", "EXT_PROVINSI"),
    ("anak saya tidak diterima di SDN 12 padahal dekat", "DISDIKBUD"),
    ("jalan nasional ke arah kepahiang banyak lubang", "EXT_PUSAT"),
    ("Jl. Adam Malik berlubang besar di depan SPBU", "EXT_PROVINSI"),
    ("jalan di gang kami berlubang-lubang", "PUPR"),
    ("bayar pajak motor di samsat antrinya lama", "EXT_PROVINSI"),
    ("PBB rumah saya naik tiga kali lipat", "BAPENDA"),
    ("listrik di rumah padam dari pagi", "EXT_PLN"),
    ("lampu jalan di gang kami mati", "DISHUB"),
    ("sertifikat tanah di BPN tidak selesai", "EXT_PUSAT"),
    ("antrean haji di kemenag lama sekali", "EXT_PUSAT"),
    ("bikin paspor di imigrasi susah", "EXT_PUSAT"),
    ("motor saya dicuri di depan rumah", "EXT_POLRI"),
    ("ada yang jual sabu di gang sebelah", "EXT_POLRI"),
    ("perpanjang SIM dipersulit", "EXT_POLRI"),
    ("klaim bpjs ketenagakerjaan saya ditolak", "EXT_BPJS"),
    ("kartu BPJS kesehatan saya nonaktif", "EXT_BPJS"),
    ("pelayanan di RSUD Harapan dan Doa lambat", "RSUD"),
    ("pasien IGD di RSUD M. Yunus menunggu lama", "EXT_PROVINSI"),
    ("antrean di RS Bhayangkara lama sekali", "EXT_POLRI"),
    ("UKT kuliah di UNIB naik terus", "EXT_PUSAT"),
    ("pungutan di MTsN 2 kota bengkulu", "EXT_PUSAT"),
    ("sampah menumpuk di depan SMA Negeri 2", "DLH"),
    ("jalan berlubang depan kantor samsat", "PUPR"),
    ("pohon tumbang di depan kantor imigrasi menutup jalan", "DLH"),
    ("polisi tidur di gang terlalu tinggi", "DISHUB"),
    ("sampah numpuk di Sawah Lebar bauuu", "DLH"),
    ("berobat di RSUD Harapan dan Doa (bukan RS provinsi), obatnya sering kosong", "RSUD"),
    ("lampu jalan rusak di depan gang", "DISHUB"),
    ("penerangan jalan umum di Jl. Pariwisata padam semua", "DISHUB"),
    ("guru honorer sdn di tempat kami gajinya telat 3 bln", "DISDIKBUD"),
    ("gaji karyawan toko telat 3 bulan", "DISNAKER"),
    ("tanah kosong di belakang rumah jadi tempat buang sampah", "DLH"),
])
def test_default_rulebook_authority_traps(default: Rulebook, text: str, expected: str) -> None:
    decision = route(default, text)
    assert decision.agency.code == expected, decision.explanation.reason


@pytest.mark.parametrize(("text", "expected"), [
    ("lampunya jln depan rmh sy mati2 trs, udh lapor rt gk ada tindakan", "DISHUB"),
    ("sampahhh dimana2 bauuu bgt, truknya gak dateng2", "DLH"),
    ("aspalnya udah pada ngelupas, jalannya bolong-bolong", "PUPR"),
    ("airnya gak ngalir2 dari subuh, tolong pdam", "PDAM"),
    ("listriknya byarpet trus dr kmrn, kulkas sy rusak", "EXT_PLN"),
    ("ektp sy blm jd2 udh 8 bln", "DUKCAPIL"),
    ("bansosnya gak pernah sampe ke kami padahal kami miskin", "DINSOS"),
    ("motor sy dicolong di parkiran pasar", "EXT_POLRI"),
    ("wifinya taman kota gak bisa konek", "KOMINFO"),
    ("puskesmaz dekat rmh sy tutup trs", "DINKES"),
])
def test_default_rulebook_reads_informal_writing(default: Rulebook, text: str,
                                                  expected: str) -> None:
    decision = route(default, text)
    assert decision.agency.code == expected, decision.explanation.reason


@pytest.mark.parametrize(("text", "priority"), [
    ("tolong ada kebakaran rumah di gang mawar", Priority.URGENT),
    ("banjir setinggi dada, ada warga terjebak di rumah", Priority.URGENT),
    ("keadaan darurat, pohon tumbang menimpa rumah", Priority.URGENT),
    ("pelayanan di instalasi gawat darurat rsud lambat", Priority.HIGH),  # IGD, not an emergency
    ("ibu saya lansia tidak dapat bansos", Priority.HIGH),
    ("sampah belum diangkut", Priority.NORMAL),
])
def test_default_rulebook_priorities(default: Rulebook, text: str, priority: Priority) -> None:
    assert route(default, text).priority is priority


# --- any text at all ---------------------------------------------------------------------------

WORDS = ["sampah", "jalan", "rusak", "lampu", "bukan", "tidak ada", "darurat", "Sawah Lebar",
         "Jl. Adam Malik", "SMA", "uang komite", "sekolah", "lansia", "bauuu", "lubang-lubang",
         "drainasse", "polisi tidur", "abrasi", "x", "2", "-", "!!", "é"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS) | st.text(max_size=12), max_size=25),
       st.sets(st.sampled_from(["DLH", "PUPR", "DISHUB", "EXT_PROVINSI"])))
def test_any_text_gets_a_well_formed_decision(words: list[str], rejected: set[str]) -> None:
    decision = route(RULEBOOK, " ".join(words), exclude=frozenset(rejected))
    explanation = decision.explanation
    assert decision.agency.code not in rejected
    assert 0.0 <= explanation.confidence <= 1.0
    assert len(explanation.candidates) <= 3
    assert not {c.agency for c in explanation.candidates} & rejected
    if decision.agency.code == "TRIAGE":
        assert decision.category is None and explanation.rule_ids == []
    else:
        assert explanation.candidates[0].agency == decision.agency.code
        assert explanation.rule_ids and explanation.matched_terms
