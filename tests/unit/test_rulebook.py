"""load_rulebook: a broken rulebook is refused with the file, the path and the problem."""

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
    return refusal(load_rulebook, RulebookError, path)


def test_valid_rulebook_loads(tmp_path: Path) -> None:
    rulebook = load_rulebook(write(tmp_path, content()))
    assert isinstance(rulebook, Rulebook)
    assert rulebook.codes == ["TRIAGE", "DLH"]
    assert rulebook.agency("DLH").rules[0].any == ["sampah"]
    assert rulebook.min_score == 1.0


def test_missing_file(tmp_path: Path) -> None:
    message = refused(tmp_path / "nope.yaml")
    assert "cannot read" in message


def test_directory_is_unreadable(tmp_path: Path) -> None:
    assert "cannot read" in refused(tmp_path)


def test_invalid_yaml(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "tenant: test\nagencies: [unclosed\n"))
    assert "not valid YAML" in message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    assert "expected a mapping" in refused(write(tmp_path, text))


def test_unknown_fallback(tmp_path: Path) -> None:
    message = refused(write(tmp_path, content(fallback="MEJA_ADUAN")))
    assert "fallback agency 'MEJA_ADUAN' is not defined" in message


def test_duplicate_agency_codes(tmp_path: Path) -> None:
    data = content()
    data["agencies"].append({"code": "DLH", "name": "Again", "authority": "kota"})
    assert "agency codes defined twice: DLH" in refused(write(tmp_path, data))


def test_duplicate_rule_ids(tmp_path: Path) -> None:
    data = content()
    data["agencies"].append({"code": "PUPR", "name": "PUPR", "authority": "kota",
                             "rules": [{"id": "dlh-sampah", "any": ["jalan rusak"]}]})
    assert "rule ids used twice: dlh-sampah" in refused(write(tmp_path, data))


def test_rule_without_phrases(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["rules"] = [{"id": "kosong", "none": ["x"]}]
    message = refused(write(tmp_path, data))
    assert "agencies.1.rules.0" in message
    assert "rule 'kosong' needs 'any' or 'all' phrases" in message


@pytest.mark.parametrize("code", ["dlh", "1DLH", "DLH-2", ""])
def test_bad_agency_code_pattern(tmp_path: Path, code: str) -> None:
    data = content()
    data["agencies"][1]["code"] = code
    message = refused(write(tmp_path, data))
    assert "agencies.1.code" in message
    assert "pattern" in message


def test_unknown_field_is_named(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["rules"][0]["ani"] = ["typo"]
    message = refused(write(tmp_path, data))
    assert "agencies.1.rules.0.ani" in message


def test_unknown_authority_is_named(tmp_path: Path) -> None:
    data = content()
    data["agencies"][1]["authority"] = "desa"
    assert "agencies.1.authority" in refused(write(tmp_path, data))


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
