"""`disposisi rules suggest`'s new conditions: when the desk keeps moving complaints of one
kelurahan (or kecamatan, or channel) to one agency the rules did not choose, a new rule of that
agency conditioned on the place is proposed with its support and its effect on every labelled
set; it fires only there, and `apply-suggestion` writes it into the rulebook file."""

from pathlib import Path

import pytest
import yaml

from services.router.domain import route
from services.router.labels import Example
from services.router.rulebook import Rulebook, load_rulebook
from services.router.rulebook_patch import SuggestionError, apply_suggestions
from services.router.suggest import applied, as_patch, change_of
from services.router.suggest_conditions import condition_suggestions, place_groups, suggest_all
from shared.contracts import Channel, Location
from tests.unit.test_desk_suggest import DEV, RULEBOOK, TREES

# In Padang Jati the city park's own crew clears rubbish: the desk sends it to PERKIM.
PARK_RUBBISH = ["Sampah menumpuk di pinggir lapangan, belum diangkut petugas",
                "Sampah plastik berserakan sejak acara minggu lalu",
                "Banyak sampah daun dan botol di dekat air mancur"]
PADANG_JATI = Location(kelurahan="Padang Jati")
# A labelled set whose rubbish complaints name more than "sampah" (DEV's second one does not),
# and where "sampah" is common in DLH's complaints: no phrase alone moves the park's to PERKIM.
SOLID = [*(e for e in DEV if e.id != "d2"),
         Example(id="d5", text="Sampah di TPS pasar dibakar warga tiap malam", agency="DLH")]


def at(texts: list[str], agency: str, location: Location | None, start: int = 0) -> list[Example]:
    return [Example(id=f"T-{start + n}", text=t, agency=agency, location=location,
                    channel=Channel.WEB, source="desk", routed="DLH")
            for n, t in enumerate(texts)]


@pytest.fixture
def rulebook(tmp_path: Path) -> Rulebook:
    path = tmp_path / "rulebook.yaml"
    path.write_text(RULEBOOK)
    return load_rulebook(path)


def test_corrections_sharing_a_kelurahan_propose_a_rule_conditioned_on_it(rulebook: Rulebook) -> None:
    desk = at(PARK_RUBBISH, "PERKIM", PADANG_JATI)
    assert all(route(rulebook, e.text, location=e.location).agency.code == "DLH" for e in desk)
    [found] = condition_suggestions(rulebook, desk, {"dev": SOLID}, min_support=3)
    change = found.change
    assert (change.kind, change.agency, change.new_rule) == ("add_condition", "PERKIM", True)
    assert change.when == {"kelurahan": ["Padang Jati"]} and change.phrases == ("sampah",)
    assert change.rule == "perkim.desk-kelurahan-padang-jati"
    assert [e.id for e in found.support] == ["T-0", "T-1", "T-2"]
    assert "from kelurahan Padang Jati to PERKIM that the rules sent to DLH" in found.why
    assert found.effect["desk"][0].accuracy == 0.0 and found.effect["desk"][1].accuracy == 1.0
    assert found.effect["dev"][0] == found.effect["dev"][1] and found.harmless
    changed = applied(rulebook, [change])
    fourth = "Sampah di taman belum diangkut"
    assert route(changed, fourth, location=PADANG_JATI).agency.code == "PERKIM"
    assert route(changed, fourth, location=Location(kelurahan="Kebun Tebeng")).agency.code != "PERKIM"
    assert route(changed, fourth).agency.code != "PERKIM"  # the rule fires in Padang Jati only
    elsewhere = "Sampah di TPS belum diangkut"
    assert route(changed, elsewhere, location=Location(kelurahan="Kebun Tebeng")).agency.code == "DLH"


def test_a_condition_that_weakens_a_phrase_elsewhere_starts_unapplied(rulebook: Rulebook) -> None:
    # A second agency using "sampah" makes it rarer evidence everywhere (the rulebook's IDF):
    # DEV's "Tumpukan sampah di pinggir jalan" no longer reaches DLH, and the effect says so.
    [found] = condition_suggestions(rulebook, at(PARK_RUBBISH, "PERKIM", PADANG_JATI), {"dev": DEV},
                                    min_support=3)
    before, after = found.effect["dev"]
    assert after.accuracy < before.accuracy and after.triage_rate > before.triage_rate
    assert not found.harmless and as_patch(found, 1)["apply"] is False


def test_a_place_whose_corrections_go_different_ways_proposes_nothing(rulebook: Rulebook) -> None:
    mixed = [*at(PARK_RUBBISH, "PERKIM", PADANG_JATI),
             *at(["Sampah medis dan jarum suntik dibuang di lapangan"], "DINKES", PADANG_JATI, 3)]
    assert place_groups([(e, "DLH") for e in mixed], min_support=3) == []  # 3 of 4 < 80%
    assert condition_suggestions(rulebook, at(PARK_RUBBISH[:2], "PERKIM", PADANG_JATI), {"dev": DEV},
                                 min_support=3) == []


def test_the_narrowest_condition_wins_and_a_channel_is_one_too() -> None:
    place = Location(kelurahan="Padang Jati", kecamatan="Ratu Samban")
    groups = place_groups([(e, "DLH") for e in at(PARK_RUBBISH, "PERKIM", place)], min_support=3)
    assert [(g.key, g.value) for g in groups] == [("kelurahan", "Padang Jati")]
    by_channel = place_groups([(e, "DLH") for e in at(PARK_RUBBISH, "PERKIM", None)], min_support=3)
    assert [(g.key, g.value, g.agency, g.chosen_by_rules) for g in by_channel] == [
        ("channel", "web", "PERKIM", ("DLH",))]


def test_a_condition_is_proposed_only_for_what_no_harmless_phrase_settles(rulebook: Rulebook) -> None:
    found = suggest_all(rulebook, at(PARK_RUBBISH, "PERKIM", PADANG_JATI), {"dev": SOLID},
                        min_support=3)
    assert [s.change.kind for s in found] == ["add_condition"]  # "sampah" is DLH's elsewhere
    trees = at(TREES, "PERKIM", None)  # all on the web channel, but "pohon tumbang" says it
    assert [s.change.kind for s in suggest_all(rulebook, trees, {"dev": DEV}, min_support=3)] == [
        "add_phrases"]
    assert [s.change.kind for s in condition_suggestions(rulebook, trees, {"dev": DEV},
                                                         min_support=3)] == ["add_condition"]


def test_a_conditioned_rule_is_applied_to_the_file_and_routes_there(tmp_path: Path,
                                                                    rulebook: Rulebook) -> None:
    rulebook_file = tmp_path / "rulebook.yaml"
    [found] = condition_suggestions(rulebook, at(PARK_RUBBISH, "PERKIM", PADANG_JATI), {"dev": SOLID},
                                    min_support=3)
    patch = tmp_path / "suggestion.yaml"
    entry = as_patch(found, 1)
    assert entry["when"] == {"kelurahan": ["Padang Jati"]} and entry["apply"] is True
    patch.write_text(yaml.safe_dump({"suggestions": [entry]}))
    done = apply_suggestions(rulebook_file, patch)
    assert done.applied == ["S1"]
    assert "# The test city's rulebook" in rulebook_file.read_text()
    reloaded = load_rulebook(rulebook_file)
    rule = reloaded.agency("PERKIM").rules[-1]
    assert rule.when.kelurahan == ["Padang Jati"] and rule.any == ["sampah"]
    assert route(reloaded, "Sampah di taman belum diangkut", location=PADANG_JATI).agency.code == "PERKIM"
    assert apply_suggestions(rulebook_file, patch).unchanged == ["S1"]


@pytest.mark.parametrize(("when", "problem"), [
    (None, "when: give a mapping"), ({"rt": ["01"]}, "when: unknown condition 'rt'"),
    ({"kelurahan": []}, "when.kelurahan: give a non-empty list")])
def test_a_malformed_condition_is_refused_by_name(when: object, problem: str) -> None:
    entry = {"change": "add_condition", "agency": "PERKIM", "rule": "perkim.x",
             "phrases": ["sampah"], "when": when}
    with pytest.raises(ValueError, match=problem):
        change_of(entry)


def test_a_malformed_condition_in_a_file_names_the_entry(tmp_path: Path) -> None:
    rulebook_file = tmp_path / "rulebook.yaml"
    rulebook_file.write_text(RULEBOOK)
    patch = tmp_path / "bad.yaml"
    patch.write_text(yaml.safe_dump({"suggestions": [{
        "id": "S1", "change": "add_condition", "agency": "PERKIM", "rule": "perkim.x",
        "phrases": ["sampah"], "when": {"kota": ["Bengkulu"]}}]}))
    with pytest.raises(SuggestionError, match=r"suggestions\[0\]: when: unknown condition 'kota'"):
        apply_suggestions(rulebook_file, patch)
