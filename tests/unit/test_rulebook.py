"""load_rulebook: a broken rulebook is refused with the file, the line, the path and the problem."""

import re
from pathlib import Path
from typing import Any

import pytest

from services.router.rulebook import Rulebook, RulebookError, load_rulebook
from tests.unit.support import refusal, write_yaml


def content(**overrides: Any) -> dict[str, Any]:
    return {
        "tenant": "test",
        "fallback": "TRIAGE",
        "agencies": [
            {"code": "TRIAGE", "name": "Admin koordinator", "authority": "internal"},
            {"code": "DLH", "name": "Dinas Lingkungan Hidup", "authority": "kota",
             "rules": [{"id": "dlh-sampah", "any": ["sampah"]}]},
        ],
        **overrides,
    }


def write(tmp_path: Path, data: Any, name: str = "rules.yaml") -> Path:
    return write_yaml(tmp_path, data, name)


def refused(path: Path) -> str:
    """Errors found before validation: 'file: problem'."""
    return refusal(load_rulebook, RulebookError, path)


def invalid(path: Path) -> str:
    """Validation errors: 'file:line: path: problem'."""
    with pytest.raises(RulebookError) as caught:
        load_rulebook(path)
    message = str(caught.value)
    assert re.match(rf"{re.escape(str(path))}:\d+: ", message), message
    return message


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_valid_rulebook_loads(tmp_path: Path) -> None:
    rulebook = load_rulebook(write(tmp_path, content()))
    assert isinstance(rulebook, Rulebook)
    assert rulebook.codes == ["TRIAGE", "DLH"]
    assert rulebook.agency("DLH").rules[0].any == ["sampah"]
    assert rulebook.limits.min_score == 1.0


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in refused(tmp_path / "nope.yaml")


def test_directory_is_unreadable(tmp_path: Path) -> None:
    assert "cannot read" in refused(tmp_path)


def test_invalid_yaml(tmp_path: Path) -> None:
    assert "not valid YAML" in refused(write(tmp_path, "tenant: test\nagencies: [unclosed\n"))


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    assert "expected a mapping" in refused(write(tmp_path, text))


def test_error_names_file_line_and_path(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["rules"].append({"id": "dlh-bau", "any": ["bau"], "weight": 0})
    path = write(tmp_path, data)
    message = invalid(path)
    assert message == (f"{path}:{line_of(path, 'weight: 0')}: agencies[1].rules[1].weight: "
                       "Input should be greater than 0")


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["authority"] = "desa"
    data["agencies"][1]["rules"][0]["weight"] = -1
    path = write(tmp_path, data)
    lines = invalid(path).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:{line_of(path, 'authority: desa')}: agencies[1].authority:")
    assert lines[1].startswith(f"{path}:{line_of(path, 'weight: -1')}: "
                               "agencies[1].rules[0].weight:")


def test_unknown_fallback(tmp_path: Path) -> None:
    message = invalid(write(tmp_path, content(fallback="MEJA_ADUAN")))
    assert "fallback agency 'MEJA_ADUAN' is not defined" in message


def test_duplicate_agency_codes(tmp_path: Path) -> None:
    data = content()
    data["agencies"].append({"code": "DLH", "name": "Again", "authority": "kota"})
    assert "agency codes defined twice: DLH" in invalid(write(tmp_path, data))


def test_duplicate_rule_ids(tmp_path: Path) -> None:
    data = content()
    data["agencies"].append({"code": "PUPR", "name": "PUPR", "authority": "kota",
                             "rules": [{"id": "dlh-sampah", "any": ["jalan rusak"]}]})
    assert "rule ids used twice: dlh-sampah" in invalid(write(tmp_path, data))


def test_rule_without_phrases(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["rules"] = [{"id": "kosong", "none": ["x"]}]
    path = write(tmp_path, data)
    message = invalid(path)
    assert f":{line_of(path, 'id: kosong')}: agencies[1].rules[0]: " in message
    assert "rule 'kosong' needs 'any', 'all' or 'require' phrases" in message


def test_empty_require_group(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["rules"][0]["require"] = [["bau"], []]
    assert "rule 'dlh-sampah' has an empty 'require' group" in invalid(write(tmp_path, data))


def test_unknown_tag(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["rules"][0]["all"] = ["@jalan_desa"]
    assert "unknown tag '@jalan_desa'" in invalid(write(tmp_path, data))


def test_unknown_channel_in_conditions(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["rules"][0]["when"] = {"channel": ["telegram"]}
    assert "agencies[1].rules[0].when.channel[0]" in invalid(write(tmp_path, data))


@pytest.mark.parametrize("code", ["dlh", "1DLH", "DLH-2", ""])
def test_bad_agency_code_pattern(tmp_path: Path, code: str) -> None:
    data = content()
    data["agencies"][1]["code"] = code
    message = invalid(write(tmp_path, data))
    assert "agencies[1].code" in message
    assert "pattern" in message


def test_unknown_field_is_named(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["rules"][0]["ani"] = ["typo"]
    assert "agencies[1].rules[0].ani" in invalid(write(tmp_path, data))


def test_includes_are_loaded_and_hashed(tmp_path: Path) -> None:
    write(tmp_path, {"slang": {"smph": "sampah"}}, "lexicon.yaml")
    write(tmp_path, {"kecamatan": {"Selebar": ["Pagar Dewa"]}}, "places.yaml")
    data = content(include={"lexicon": "lexicon.yaml", "gazetteer": "places.yaml"})
    rulebook = load_rulebook(write(tmp_path, data))
    assert rulebook.lexicon is not None and rulebook.lexicon.slang == {"smph": "sampah"}
    assert rulebook.gazetteer.kecamatan == {"Selebar": ["Pagar Dewa"]}
    assert rulebook.sources == (tmp_path / "rules.yaml", tmp_path / "lexicon.yaml",
                                tmp_path / "places.yaml")
    before = rulebook.version
    write(tmp_path, {"kecamatan": {"Selebar": ["Pagar Dewa", "Betungan"]}}, "places.yaml")
    assert load_rulebook(tmp_path / "rules.yaml").version != before


def test_errors_in_an_include_name_the_included_file(tmp_path: Path) -> None:
    places = write(tmp_path, {"roads": {"desa": ["Danau"]}}, "places.yaml")
    message = invalid_include(write(tmp_path, content(include={"gazetteer": "places.yaml"})))
    assert message.startswith(f"{places}:{line_of(places, 'desa')}: roads.desa")


def test_missing_include(tmp_path: Path) -> None:
    path = write(tmp_path, content(include={"lexicon": "nope.yaml"}))
    with pytest.raises(RulebookError, match=r"nope\.yaml: cannot read"):
        load_rulebook(path)


def invalid_include(path: Path) -> str:
    with pytest.raises(RulebookError) as caught:
        load_rulebook(path)
    return str(caught.value)


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    first = load_rulebook(write(tmp_path, content(), "a.yaml"))
    same = load_rulebook(write(tmp_path, content(), "b.yaml"))
    assert re.fullmatch(r"[0-9a-f]{16}", first.version)
    assert first.version == same.version  # the name of the file does not matter
    changed = content()
    changed["agencies"][1]["rules"][0]["any"] = ["sampah", "tumpukan sampah"]
    assert load_rulebook(write(tmp_path, changed, "c.yaml")).version != first.version


def test_version_in_file_is_overridden(tmp_path: Path) -> None:
    plain = load_rulebook(write(tmp_path, content(), "a.yaml"))
    claimed = load_rulebook(write(tmp_path, content(version="handmade"), "b.yaml"))
    assert claimed.version != "handmade"
    assert re.fullmatch(r"[0-9a-f]{16}", claimed.version)
    assert claimed.version != plain.version


def test_shorthands_of_the_first_format_still_work(tmp_path: Path) -> None:
    rulebook = load_rulebook(write(tmp_path, content(min_score=2.5, urgent_phrases=["api"])))
    assert rulebook.limits.min_score == 2.5
    assert [s.any for s in rulebook.priority_signals] == [["api"]]
