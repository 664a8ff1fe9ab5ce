"""`rules check` findings about phrases that are place names and rules easy to misread."""

from typing import Any

from services.router.lint import Finding, lint
from services.router.rulebook import Rulebook


def make_rulebook(*rules: dict[str, Any]) -> Rulebook:
    return Rulebook.model_validate({
        "tenant": "test", "min_score": 0.5,
        "gazetteer": {"kecamatan": {"Sungai Serut": ["Jembatan Kecil", "Surabaya"]}},
        "agencies": [
            {"code": "TRIAGE", "name": "Triage", "authority": "internal"},
            {"code": "PUPR", "name": "PUPR", "authority": "kota", "rules": list(rules)},
        ],
    })


def about(findings: list[Finding], rule_id: str, words: str) -> list[Finding]:
    return [f for f in findings if f.subject == rule_id and words in f.message]


def test_a_phrase_that_is_a_place_name_is_flagged() -> None:
    findings = lint(make_rulebook(
        {"id": "jembatan", "any": ["Jembatan  kecil", "jembatan rusak"]},
        {"id": "kecamatan", "require": [["sungai serut"], ["banjir"]]},
    ))
    flagged = about(findings, "jembatan", "place name")
    assert len(flagged) == 1 and flagged[0].severity == "warning"
    assert "'Jembatan  kecil'" in flagged[0].message and "Sungai Serut" in flagged[0].message
    assert about(findings, "kecamatan", "place name (a kecamatan)")


def test_phrases_that_only_contain_a_place_name_are_not_flagged() -> None:
    findings = lint(make_rulebook({"id": "jembatan", "any": ["jembatan kecil rusak"]}))
    assert not about(findings, "jembatan", "place name")


def test_a_rule_with_any_and_require_is_flagged() -> None:
    findings = lint(make_rulebook(
        {"id": "both", "any": ["jalan rusak"], "require": [["aspal"]]},
        {"id": "any-only", "any": ["drainase"]},
        {"id": "require-only", "require": [["got"], ["tersumbat"]]},
        {"id": "any-and-all", "any": ["lubang"], "all": ["jalan"]},
    ))
    flagged = [f.subject for f in findings if "'any' and 'require'" in f.message]
    assert flagged == ["both"]
