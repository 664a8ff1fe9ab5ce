"""`disposisi rules suggest`'s logic: phrases frequent in the desk's corrections to one agency
and rare elsewhere, added to a plain rule or a new one; vetoes for a rule that confidently took
what the desk moved; every change measured on every labelled set; and applying a reviewed
patch to the rulebook file (comments kept, idempotent, `apply: false` respected, refused when
the result would not load)."""

from pathlib import Path

import pytest
import yaml

from services.router.domain import route
from services.router.labels import Example
from services.router.rulebook import Rulebook, load_rulebook
from services.router.rulebook_patch import SuggestionError, apply_suggestions
from services.router.suggest import applied, as_patch, suggest

RULEBOOK = """\
# The test city's rulebook: comments must survive an applied suggestion.
tenant: kota-bengkulu
fallback: TRIAGE
agencies:
  - {code: TRIAGE, name: Meja Pengaduan, authority: internal}
  - code: DLH
    name: Dinas Lingkungan Hidup
    authority: kota
    rules:
      - {id: dlh.sampah, any: [sampah, tps], category: Sampah}  # rubbish
  - code: DINKES
    name: Dinas Kesehatan
    authority: kota
    rules:
      - {id: dinkes.layanan, any: [puskesmas, demam berdarah], category: Kesehatan}
  - code: PERKIM
    name: Dinas Perumahan dan Kawasan Permukiman
    authority: kota
    rules:
      - id: perkim.taman
        any: [taman kota]
        category: Taman
"""
TREES = ["Pohon tumbang menutup jalan di depan sekolah, tolong dipotong",
         "Ada pohon tumbang menimpa pagar rumah warga sejak kemarin",
         "Dahan besar patah dan pohon tumbang ke arah kabel, mohon segera"]
MEDICAL_WASTE = ["Sampah medis dari klinik dibuang di lahan kosong, ada jarum suntik",
                 "Limbah medis bekas infus dan jarum suntik dibuang bersama sampah",
                 "Sampah medis berserakan dekat sekolah, jarum suntik terlihat anak-anak"]


@pytest.fixture
def rulebook_file(tmp_path: Path) -> Path:
    path = tmp_path / "rulebook.yaml"
    path.write_text(RULEBOOK)
    return path


@pytest.fixture
def rulebook(rulebook_file: Path) -> Rulebook:
    return load_rulebook(rulebook_file)


def desk(texts: list[str], agency: str, routed: str = "TRIAGE") -> list[Example]:
    return [Example(id=f"T-{n}", text=t, agency=agency, source="desk", routed=routed)
            for n, t in enumerate(texts)]


DEV = [Example(id="d1", text="Sampah di TPS belum diangkut seminggu", agency="DLH"),
       Example(id="d2", text="Tumpukan sampah di pinggir jalan dekat sekolah", agency="DLH"),
       Example(id="d3", text="Puskesmas tutup sebelum jam dua belas", agency="DINKES"),
       Example(id="d4", text="Taman kota rusak, bangku patah", agency="PERKIM")]


def test_phrases_common_in_the_corrections_and_rare_elsewhere_are_proposed(rulebook: Rulebook) -> None:
    assert all(route(rulebook, t).agency.code == "TRIAGE" for t in TREES)
    [found] = suggest(rulebook, desk(TREES, "PERKIM"), {"dev": DEV}, min_support=3)
    change = found.change
    assert (change.kind, change.agency, change.rule, change.new_rule) == (
        "add_phrases", "PERKIM", "perkim.taman", False)
    assert change.phrases == ("pohon tumbang",)  # "sekolah" is in DLH's complaints; "di" says nothing
    assert [e.id for e in found.support] == ["T-0", "T-1", "T-2"]
    desk_before, desk_after = found.effect["desk"]
    assert (desk_before.accuracy, desk_before.triage_rate) == (0.0, 1.0)
    assert (desk_after.accuracy, desk_after.triage_rate) == (1.0, 0.0)
    assert found.effect["dev"][0] == found.effect["dev"][1] and found.harmless
    fourth = "Pohon tumbang lagi di Jl. Hibrida, menghalangi angkot"
    assert route(applied(rulebook, [change]), fourth).agency.code == "PERKIM"


def test_too_little_support_proposes_nothing(rulebook: Rulebook) -> None:
    assert suggest(rulebook, desk(TREES, "PERKIM"), {"dev": DEV}, min_support=4) == []
    assert suggest(rulebook, desk(TREES[:2], "PERKIM"), {"dev": DEV}, min_support=3) == []


def test_a_phrase_common_in_other_agencies_complaints_is_not_proposed(rulebook: Rulebook) -> None:
    elsewhere = [Example(id=f"o{n}", text=f"Pohon tumbang ke TPS nomor {n}", agency="DLH")
                 for n in range(3)]
    found = suggest(rulebook, desk(TREES, "PERKIM"), {"dev": DEV + elsewhere}, min_support=3)
    assert all("pohon tumbang" not in s.change.phrases for s in found)


def test_a_rule_that_confidently_took_what_the_desk_moved_gets_a_veto(rulebook: Rulebook) -> None:
    assert all(route(rulebook, t).agency.code == "DLH" for t in MEDICAL_WASTE)
    found = suggest(rulebook, desk(MEDICAL_WASTE, "DINKES", routed="DLH"), {"dev": DEV},
                    min_support=3)
    by_kind = {s.change.kind: s for s in found}
    veto = by_kind["add_veto"].change
    assert (veto.agency, veto.rule) == ("DLH", "dlh.sampah")
    assert veto.phrases in (("jarum suntik",), ("medis",), ("suntik",))
    phrases = by_kind["add_phrases"]
    assert phrases.change.agency == "DINKES" and phrases.effect["desk"][1].accuracy == 1.0
    both = applied(rulebook, [s.change for s in found])
    assert [route(both, t).agency.code for t in MEDICAL_WASTE] == ["DINKES"] * 3
    assert route(both, DEV[0].text).agency.code == "DLH"  # ordinary rubbish still DLH


def test_a_change_that_harms_a_labelled_set_starts_unapplied(rulebook: Rulebook) -> None:
    # The dev set says a fallen tree in the city park is the park's: PERKIM would win anyway;
    # a set claiming fallen trees for DLH loses accuracy once the phrase is added.
    claims = [Example(id="x", text="Pohon tumbang di TPS", agency="DLH")]
    [found] = suggest(rulebook, desk(TREES, "PERKIM"), {"dev": DEV, "other": claims}, min_support=3)
    before, after = found.effect["other"]
    assert after.accuracy < before.accuracy
    assert not found.harmless and as_patch(found, 1)["apply"] is False


def write_patch(tmp_path: Path, rulebook: Rulebook, texts: list[str], agency: str) -> Path:
    found = suggest(rulebook, desk(texts, agency), {"dev": DEV}, min_support=3)
    path = tmp_path / "suggestion.yaml"
    path.write_text(yaml.safe_dump({"suggestions": [as_patch(s, n) for n, s in enumerate(found, 1)]}))
    return path


def test_applying_a_patch_edits_the_file_keeps_comments_and_is_idempotent(
        tmp_path: Path, rulebook_file: Path, rulebook: Rulebook) -> None:
    patch = write_patch(tmp_path, rulebook, TREES, "PERKIM")
    done = apply_suggestions(rulebook_file, patch)
    assert done.applied == ["S1"] and done.version != rulebook.version
    text = rulebook_file.read_text()
    assert "# The test city's rulebook" in text and "# rubbish" in text
    reloaded = load_rulebook(rulebook_file)
    assert reloaded.agency("PERKIM").rules[0].any == ["taman kota", "pohon tumbang"]
    assert route(reloaded, "Pohon tumbang di depan kantor lurah").agency.code == "PERKIM"
    again = apply_suggestions(rulebook_file, patch)
    assert (again.applied, again.unchanged, again.version) == ([], ["S1"], done.version)


def test_an_entry_set_to_false_is_left_out(tmp_path: Path, rulebook_file: Path,
                                           rulebook: Rulebook) -> None:
    patch = write_patch(tmp_path, rulebook, TREES, "PERKIM")
    content = yaml.safe_load(patch.read_text())
    content["suggestions"][0]["apply"] = False
    patch.write_text(yaml.safe_dump(content))
    before = rulebook_file.read_text()
    assert apply_suggestions(rulebook_file, patch).skipped == ["S1"]
    assert rulebook_file.read_text() == before


def test_a_patch_that_breaks_the_rulebook_is_refused_and_the_file_kept(
        tmp_path: Path, rulebook_file: Path) -> None:
    before = rulebook_file.read_text()
    patch = tmp_path / "bad.yaml"
    patch.write_text(yaml.safe_dump({"suggestions": [
        {"id": "S1", "change": "add_phrases", "agency": "PERKIM", "rule": "dlh.sampah",
         "new_rule": True, "phrases": ["pohon"], "weight": 1.0}]}))  # a rule id used twice
    with pytest.raises(SuggestionError, match=r"would not load.*rule ids used twice: dlh\.sampah"):
        apply_suggestions(rulebook_file, patch)
    assert rulebook_file.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".suggested-")] == []
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump({"suggestions": [{"id": "S1", "change": "add_phrases"}]}))
    with pytest.raises(SuggestionError, match=r"suggestions\[0\]: missing field 'phrases'"):
        apply_suggestions(rulebook_file, missing)
