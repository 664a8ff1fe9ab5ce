"""`disposisi rules suggest` from a terminal: a patch file from desk examples given as a file,
the rulebook untouched, a new condition reviewed and applied; a store it cannot reach is named
(without its password) and exit 2."""

import json
from pathlib import Path

import pytest
import yaml

from services.cli import main
from services.router.desk_cli import default_sets
from services.router.domain import route
from services.router.rulebook import load_rulebook
from shared.contracts import Location
from tests.unit.test_desk_conditions import PARK_RUBBISH, SOLID
from tests.unit.test_desk_suggest import DEV, RULEBOOK, TREES


def test_suggest_writes_a_patch_and_leaves_the_rulebook(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rulebook, desk, dev = tmp_path / "rulebook.yaml", tmp_path / "desk.jsonl", tmp_path / "dev.jsonl"
    rulebook.write_text(RULEBOOK)
    desk.write_text("".join(json.dumps({"id": f"T-{n}", "text": t, "agency": "PERKIM"}) + "\n"
                            for n, t in enumerate(TREES)))
    dev.write_text("".join(json.dumps({"id": e.id, "text": e.text, "agency": e.agency}) + "\n"
                           for e in DEV))
    out = tmp_path / "suggestion.yaml"
    assert main(["rules", "suggest", "--rulebook", str(rulebook), "--desk-file", str(desk),
                 "--labelled", str(dev), "--output", str(out)]) == 0
    assert "1 suggestion(s) from 3 desk example(s)" in capsys.readouterr().err
    text = out.read_text()
    assert text.startswith("# Rulebook changes suggested by `disposisi rules suggest`")
    patch = yaml.safe_load(text)
    assert patch["desk_examples"] == 3 and patch["suggestions"][0]["phrases"] == ["pohon tumbang"]
    assert patch["combined_effect"]["desk"]["after"]["accuracy"] == 1.0
    assert rulebook.read_text() == RULEBOOK


def test_an_unreachable_store_is_named_without_its_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rulebook = tmp_path / "rulebook.yaml"
    rulebook.write_text(RULEBOOK)
    monkeypatch.setenv("DISPOSISI_MONGODB_URL",
                       "mongodb://desk:s3cret@127.0.0.1:1/?directConnection=true")
    monkeypatch.setenv("DISPOSISI_MONGODB_TIMEOUT_MS", "200")
    assert main(["rules", "suggest", "--rulebook", str(rulebook), "--labelled", str(rulebook)]) == 2
    error = capsys.readouterr().err
    assert "cannot read the desk's examples from the store" in error and "s3cret" not in error


def test_a_condition_is_suggested_reviewed_and_applied_from_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rulebook, desk, dev = tmp_path / "rulebook.yaml", tmp_path / "desk.jsonl", tmp_path / "dev.jsonl"
    rulebook.write_text(RULEBOOK)
    desk.write_text("".join(json.dumps({"id": f"T-{n}", "text": t, "agency": "PERKIM", "channel": "web",
                                        "location": {"kelurahan": "Padang Jati"}}) + "\n"
                            for n, t in enumerate(PARK_RUBBISH)))
    dev.write_text("".join(json.dumps({"id": e.id, "text": e.text, "agency": e.agency}) + "\n"
                           for e in SOLID))
    out = tmp_path / "suggestion.yaml"
    assert main(["rules", "suggest", "--rulebook", str(rulebook), "--desk-file", str(desk),
                 "--labelled", str(dev), "--output", str(out)]) == 0
    [entry] = yaml.safe_load(out.read_text())["suggestions"]
    assert (entry["change"], entry["agency"], entry["when"], entry["apply"]) == (
        "add_condition", "PERKIM", {"kelurahan": ["Padang Jati"]}, True)
    assert entry["effect"]["dev.jsonl"]["before"] == entry["effect"]["dev.jsonl"]["after"]
    assert [s["id"] for s in entry["support"]] == ["T-0", "T-1", "T-2"]
    capsys.readouterr()
    assert main(["rules", "apply-suggestion", str(out), "--rulebook", str(rulebook)]) == 0
    assert "applied S1" in capsys.readouterr().out
    book = load_rulebook(rulebook)
    fourth = "Sampah di taman belum diangkut"
    assert route(book, fourth, location=Location(kelurahan="Padang Jati")).agency.code == "PERKIM"
    assert route(book, "Sampah di TPS belum diangkut").agency.code == "DLH"


def test_suggestions_are_not_measured_on_a_blind_set_by_default(tmp_path: Path) -> None:
    data = tmp_path / "tests" / "data"
    data.mkdir(parents=True)
    for name in ("routing-dev.jsonl", "routing-blind5.jsonl", "routing-dev4.jsonl", "other.jsonl"):
        (data / name).write_text("")
    assert [p.name for p in default_sets(tmp_path)] == ["routing-dev.jsonl", "routing-dev4.jsonl"]
