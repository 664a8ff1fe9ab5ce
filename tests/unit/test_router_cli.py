"""`disposisi route` and `disposisi rules check`, run through the console entry point on small
hand-made rulebooks, so that every expected answer follows from rules written in the test."""

import io
import json
from pathlib import Path
from typing import Any

import pytest

from services.cli import main
from services.router.rulebook import load_rulebook
from tests.unit.support import write_yaml

Capture = pytest.CaptureFixture[str]


def agency(code: str, *rules: dict[str, Any], authority: str = "kota") -> dict[str, Any]:
    return {"code": code, "name": f"Dinas {code}", "authority": authority, "rules": list(rules)}


def rulebook_data(*extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "tenant": "uji", "fallback": "TRIAGE", "min_score": 1.0, "urgent_phrases": ["kebakaran"],
        "agencies": [
            agency("TRIAGE", authority="internal"),
            agency("DLH", {"id": "dlh.sampah", "any": ["sampah", "tps"], "category": "Sampah"}),
            agency("PUPR", {"id": "pupr.jalan", "any": ["jalan berlubang", "drainase"],
                            "category": "Jalan"}),
            agency("EXT_PLN", {"id": "pln.listrik", "any": ["listrik padam", "token listrik"]},
                   authority="bumn"),
            *extra,
        ],
    }


@pytest.fixture
def rulebook_path(tmp_path: Path) -> Path:
    return write_yaml(tmp_path, rulebook_data(), "uji.yaml")


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def write_lines(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ route, one complaint

def test_route_explains_the_decision_in_words(capsys: Capture, rulebook_path: Path) -> None:
    status, out, _ = run(capsys, "route", "sampah di TPS belum diangkut, jalan berlubang juga",
                         "--rulebook", str(rulebook_path))
    assert status == 0
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["Agency"].strip() == "DLH - Dinas DLH"
    assert fields["Authority"].strip() == "kota"
    assert fields["Priority"].strip() == "normal"
    assert fields["Category"].strip() == "Sampah"
    assert "'sampah'" in fields["Matched"] and "'tps'" in fields["Matched"]
    assert fields["Rules"].strip() == "dlh.sampah"
    assert fields["Candidates"].strip().startswith("DLH ") and "PUPR " in fields["Candidates"]
    assert load_rulebook(rulebook_path).version in fields["Rulebook"]


def test_route_json_carries_the_explanation(capsys: Capture, rulebook_path: Path) -> None:
    status, out, _ = run(capsys, "route", "ada kebakaran, listrik padam semua", "--json",
                         "--rulebook", str(rulebook_path))
    decision = json.loads(out)
    assert status == 0
    assert (decision["agency"], decision["authority"], decision["priority"]) == ("EXT_PLN", "bumn", "urgent")
    assert decision["explanation"]["rule_ids"] == ["pln.listrik"]
    assert decision["explanation"]["rulebook_version"] == load_rulebook(rulebook_path).version


def test_route_reads_the_title(capsys: Capture, rulebook_path: Path) -> None:
    _, out, _ = run(capsys, "route", "mohon segera ditangani pak", "--title", "Drainase mampet",
                    "--json", "--rulebook", str(rulebook_path))
    assert json.loads(out)["agency"] == "PUPR"


def test_route_without_a_match_goes_to_the_fallback(capsys: Capture,
                                                    rulebook_path: Path) -> None:
    _, out, _ = run(capsys, "route", "terima kasih atas bantuannya", "--json",
                    "--rulebook", str(rulebook_path))
    assert json.loads(out)["agency"] == "TRIAGE"


def test_route_uses_the_settings_rulebook_by_default(capsys: Capture, rulebook_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPOSISI_RULEBOOK", str(rulebook_path))
    _, out, _ = run(capsys, "route", "token listrik tidak masuk", "--json")
    assert json.loads(out)["explanation"]["rulebook_version"] == load_rulebook(rulebook_path).version


@pytest.mark.parametrize("argv, problem", [
    ([], "TEXT or --jsonl"),
    (["sampah", "--jsonl", "-"], "TEXT or --jsonl"),
    (["sampah", "--expect", "agency"], "need --jsonl"),
    (["--jsonl", "-", "--report-only"], "need --expect"),
])
def test_route_refuses_options_that_do_not_fit(capsys: Capture, rulebook_path: Path, argv: list[str],
                                               problem: str) -> None:
    status, out, err = run(capsys, "route", *argv, "--rulebook", str(rulebook_path))
    assert (status, out) == (2, "")
    assert problem in err


def test_route_exclude_never_picks_an_excluded_agency(capsys: Capture, rulebook_path: Path) -> None:
    status, out, _ = run(capsys, "route", "sampah di tps dan drainase mampet", "--exclude", "DLH",
                         "--json", "--rulebook", str(rulebook_path))
    assert status == 0 and json.loads(out)["agency"] == "PUPR"


def test_a_broken_rulebook_is_named(capsys: Capture, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    status, _, err = run(capsys, "route", "sampah", "--rulebook", str(missing))
    assert status == 2
    assert err.startswith(f"disposisi: {missing}: cannot read")


# ------------------------------------------------------------------ route, JSON lines

def test_jsonl_routes_each_line_and_reports_bad_ones(capsys: Capture, tmp_path: Path,
                                                     rulebook_path: Path) -> None:
    source = write_lines(
        tmp_path,
        json.dumps({"id": "a", "text": "sampah numpuk di tps", "channel": "whatsapp",
                    "location": {"kelurahan": "Kebun Tebeng"}}),
        "{not json",
        "",
        json.dumps(["a list"]),
        json.dumps({"id": "d", "title": "no text"}),
        json.dumps({"id": "e", "text": "listrik padam", "channel": "pigeon"}),
        json.dumps({"id": 6, "text": "jalan berlubang di depan rumah", "title": "Jalan"}),
    )
    status, out, err = run(capsys, "route", "--jsonl", str(source), "--rulebook", str(rulebook_path))
    routed = [json.loads(line) for line in out.splitlines()]
    assert status == 1
    assert [(r["id"], r["agency"]) for r in routed] == [("a", "DLH"), (6, "PUPR")]
    assert {"id", "agency", "priority", "confidence", "candidates", "explanation"} <= routed[0].keys()
    assert routed[0]["candidates"][0]["rule_ids"] == ["dlh.sampah"]
    problems = err.splitlines()
    assert [p.split(":")[0:2] for p in problems] == [
        ["disposisi route", " line 2"], ["disposisi route", " line 4"],
        ["disposisi route", " line 5"], ["disposisi route", " line 6"]]
    assert "not valid JSON" in problems[0] and "JSON object" in problems[1]
    assert "text: Field required" in problems[2] and "channel:" in problems[3]


def test_jsonl_reads_stdin(capsys: Capture, monkeypatch: pytest.MonkeyPatch,
                           rulebook_path: Path) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"id": "x", "text": "token listrik error"})))
    status, out, _ = run(capsys, "route", "--jsonl", "-", "--rulebook", str(rulebook_path))
    assert status == 0
    assert json.loads(out)["agency"] == "EXT_PLN"


def test_jsonl_file_that_cannot_be_read(capsys: Capture, tmp_path: Path,
                                        rulebook_path: Path) -> None:
    status, _, err = run(capsys, "route", "--jsonl", str(tmp_path / "absent.jsonl"),
                         "--rulebook", str(rulebook_path))
    assert status == 2
    assert "cannot read" in err and "absent.jsonl" in err


LABELLED = (
    {"id": "1", "text": "sampah di tps", "agency": "DLH", "priority": "normal"},
    {"id": "2", "text": "drainase mampet", "agency": "PUPR", "priority": "normal"},
    {"id": "3", "text": "jalan berlubang dekat tps sampah", "agency": "PUPR", "priority": "normal"},
    {"id": "4", "text": "mohon dibantu pak", "agency": "DLH", "priority": "high"},
)


def test_expect_reports_accuracy_triage_and_per_agency_table(capsys: Capture,
                                                             tmp_path: Path, rulebook_path: Path) -> None:
    # Routed: 1 -> DLH, 2 -> PUPR, 3 -> PUPR (the longer phrase wins), all right; 4 -> TRIAGE.
    source = write_lines(tmp_path, *map(json.dumps, LABELLED))
    status, out, err = run(capsys, "route", "--jsonl", str(source), "--expect", "agency",
                           "--report-only", "--json", "--rulebook", str(rulebook_path))
    report = json.loads(out)
    assert (status, err) == (0, "")
    assert (report["lines"], report["accuracy"], report["triage_rate"]) == (4, 0.75, 0.25)
    assert report["labels"]["DLH"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert report["labels"]["PUPR"] == {"precision": 1.0, "recall": 1.0, "support": 2}
    assert report["labels"]["TRIAGE"] == {"precision": 0.0, "recall": 0.0, "support": 0}
    assert [m["id"] for m in report["misses"]] == ["4"]


def test_expect_report_goes_to_stderr_after_the_lines(capsys: Capture, tmp_path: Path,
                                                      rulebook_path: Path) -> None:
    source = write_lines(tmp_path, *map(json.dumps, LABELLED))
    status, out, err = run(capsys, "route", "--jsonl", str(source), "--expect", "priority", "--misses",
                           "--rulebook", str(rulebook_path))
    assert status == 0
    assert len([json.loads(line) for line in out.splitlines()]) == len(LABELLED)
    assert "accuracy: 0.750" in err and "triage rate: 0.250" in err
    assert any(line.split() == ["normal", "0.75", "1.00", "3"] for line in err.splitlines())
    assert "  4: high -> normal" in err.splitlines()


def test_report_counts_the_confidently_wrong_confusions_and_urgent_misses_apart(
        capsys: Capture, tmp_path: Path, rulebook_path: Path) -> None:
    lines = [
        {"id": "1", "text": "sampah di tps", "agency": "DLH", "priority": "normal"},
        {"id": "2", "text": "sampah di tps", "agency": "PUPR", "priority": "normal"},  # wrong
        {"id": "3", "text": "tps sampah penuh", "agency": "PUPR", "priority": "urgent"},  # wrong
        {"id": "4", "text": "mohon dibantu pak", "agency": "DLH", "priority": "urgent"},  # triage
        {"id": "5", "text": "kebakaran sampah di tps", "agency": "DLH", "priority": "urgent"},
        {"id": "6", "text": "kebakaran kecil, jalan berlubang", "agency": "PUPR", "priority": "normal"},
    ]
    source = write_lines(tmp_path, *map(json.dumps, lines))
    status, out, _ = run(capsys, "route", "--jsonl", str(source), "--expect", "agency",
                         "--report-only", "--json", "--rulebook", str(rulebook_path))
    report = json.loads(out)
    assert status == 0
    assert (report["confidently_wrong"], report["confidently_wrong_rate"]) == (2, round(2 / 6, 4))
    assert report["confusions"] == [{"expected": "PUPR", "given": "DLH", "lines": 2},
                                    {"expected": "DLH", "given": "TRIAGE", "lines": 1}]
    # urgent labelled: 3 (missed), 4 (missed: the desk keeps it normal), 5 (made urgent)
    assert (report["missed_urgent"], report["labelled_urgent"]) == (2, 3)
    assert report["missed_urgent_rate"] == round(2 / 3, 4)
    # labelled otherwise: 1, 2, 6 ("kebakaran" is a signal phrase: made urgent needlessly)
    assert (report["wrong_urgent"], report["labelled_not_urgent"]) == (1, 3)
    status, out, _ = run(capsys, "route", "--jsonl", str(source), "--expect", "agency",
                         "--report-only", "--rulebook", str(rulebook_path))
    assert "confidently wrong: 0.333 (2 decided, not triaged, and wrong)" in out
    assert "missed urgent: 0.667 (2 of 3 labelled urgent)  wrong urgent: 0.333 (1 of 3" in out
    assert "  PUPR -> DLH: 2" in out.splitlines()


def test_report_without_priority_labels_has_no_urgent_rates(capsys: Capture, tmp_path: Path,
                                                            rulebook_path: Path) -> None:
    source = write_lines(tmp_path, json.dumps({"id": "1", "text": "sampah", "agency": "DLH"}))
    _, out, _ = run(capsys, "route", "--jsonl", str(source), "--expect", "agency",
                    "--report-only", "--json", "--rulebook", str(rulebook_path))
    report = json.loads(out)
    assert "missed_urgent_rate" not in report and report["confusions"] == []


def test_expect_names_lines_without_the_expected_field(capsys: Capture, tmp_path: Path,
                                                       rulebook_path: Path) -> None:
    source = write_lines(tmp_path, json.dumps({"id": "1", "text": "sampah di tps"}),
                         json.dumps({"id": "2", "text": "sampah", "agency": 7}))
    status, _, err = run(capsys, "route", "--jsonl", str(source), "--expect", "agency",
                         "--report-only", "--rulebook", str(rulebook_path))
    assert status == 1
    assert "line 1: agency: missing" in err and "line 2: agency: expected a string" in err


# ------------------------------------------------------------------ rules check

def test_check_passes_a_clean_rulebook(capsys: Capture, rulebook_path: Path) -> None:
    status, out, _ = run(capsys, "rules", "check", "--rulebook", str(rulebook_path))
    assert status == 0
    version = load_rulebook(rulebook_path).version
    assert out.splitlines() == [f"uji version {version}: 0 error(s), 0 warning(s)"]


def check(capsys: Capture, tmp_path: Path, *extra: dict[str, Any]) -> tuple[int, list[str]]:
    path = write_yaml(tmp_path, rulebook_data(*extra), "lint.yaml")
    status, out, _ = run(capsys, "rules", "check", "--rulebook", str(path))
    return status, out.splitlines()[:-1]


def test_check_warns_of_contested_phrases_and_idle_agencies(capsys: Capture,
                                                           tmp_path: Path) -> None:
    status, findings = check(capsys, tmp_path,
                             agency("SATPOLPP", {"id": "pol.sampah", "any": ["Sampah", "buang sampah liar"]}),
                             agency("DISPAR"))
    assert status == 0
    assert "WARNING DISPAR: has no rules: nothing can route to it" in findings
    assert "WARNING 'sampah': claimed by DLH (dlh.sampah); SATPOLPP (pol.sampah)" in findings
    assert not any(f.startswith("WARNING TRIAGE") for f in findings), "the fallback needs no rules"


def test_check_fails_a_rule_that_can_never_win(capsys: Capture, tmp_path: Path) -> None:
    # DISPAR's longer phrase covers both of DLH's, so DLH's rule loses even on its own words.
    rule = {"id": "dispar.pantai", "any": ["sampah tps"]}
    status, findings = check(capsys, tmp_path, agency("DISPAR", rule))
    assert status == 1
    assert "ERROR   dlh.sampah: can never win: its phrases together route to DISPAR, not DLH" in findings


def test_check_fails_a_rule_that_vetoes_itself(capsys: Capture, tmp_path: Path) -> None:
    rule = {"id": "dinsos.pkh", "all": ["pkh"], "any": ["bantuan"], "none": ["PKH"]}
    status, findings = check(capsys, tmp_path, agency("DINSOS", rule))
    assert status == 1
    assert "ERROR   dinsos.pkh: vetoes one of its own 'all' phrases: it never fires" in findings


def test_check_warns_of_weak_rules_and_phrases_that_lose_alone(capsys: Capture,
                                                               tmp_path: Path) -> None:
    status, findings = check(
        capsys, tmp_path,
        agency("DISHUB", {"id": "dishub.kata", "weight": 0.5, "any": ["simpang"]},
               {"id": "dishub.parkir", "any": ["parkir liar", "tps"], "weight": 0.5}))
    assert status == 0
    assert any(f.startswith("WARNING dishub.kata: too weak to win alone") for f in findings)
    assert "WARNING dishub.parkir: 'tps' alone routes to TRIAGE" in findings  # a tie with DLH


@pytest.mark.parametrize("content, problem", [
    ("agencies: [", "not valid YAML"),
    ({**rulebook_data(), "fallback": "MEJA"}, "fallback agency 'MEJA' is not defined"),
])
def test_check_cannot_load(capsys: Capture, tmp_path: Path, content: Any, problem: str) -> None:
    path = write_yaml(tmp_path, content, "bad.yaml")
    status, out, err = run(capsys, "rules", "check", "--rulebook", str(path))
    assert (status, out) == (2, "")
    assert err.startswith(f"disposisi: {path}:") and problem in err


# ------------------------------------------------------------------ the second opinion

OPINION_TRAINING = [
    ("Jalan berlubang menumpuk genangan", "PUPR"), ("Lubang di jalan menumpuk air hujan", "PUPR"),
    ("Jalan berlubang dan aspal menumpuk", "PUPR"), ("Jalan rusak berlubang dalam", "PUPR"),
    ("Sampah di TPS tidak diangkut", "DLH"), ("Truk sampah tidak datang", "DLH"),
    ("Bau sampah dari TPS", "DLH"), ("Sampah dibuang ke sungai", "DLH"),
]
CLOSE_CALL = {"id": "close", "text": "sampah menumpuk di jalan berlubang", "agency": "PUPR"}  # rules: TRIAGE
PLAIN = {"id": "plain", "text": "sampah di tps", "agency": "DLH"}


def test_second_opinion_in_the_report_settles_a_close_call(capsys: Capture, tmp_path: Path) -> None:
    book = write_yaml(tmp_path, {**rulebook_data(), "thresholds": {"min_margin": 0.4}}, "uji.yaml")
    training = tmp_path / "training.jsonl"
    training.write_text("".join(json.dumps({"text": t, "agency": a}) + "\n" for t, a in OPINION_TRAINING))
    source = write_lines(tmp_path, json.dumps(CLOSE_CALL), json.dumps(PLAIN))
    argv = ("route", "--jsonl", str(source), "--expect", "agency", "--report-only", "--json",
            "--rulebook", str(book))
    _, out, _ = run(capsys, *argv)
    assert (json.loads(out)["accuracy"], json.loads(out)["triage_rate"]) == (0.5, 0.5)
    status, out, err = run(capsys, *argv, "--second-opinion", "--training", str(training))
    report = json.loads(out)
    assert status == 0 and "trained on 8 examples from training.jsonl" in err
    assert (report["accuracy"], report["triage_rate"]) == (1.0, 0.0)
    assert report["second_opinion"]["decided"] == 1


def test_second_opinion_is_never_measured_on_its_training_file(capsys: Capture, tmp_path: Path,
                                                               rulebook_path: Path) -> None:
    source = write_lines(tmp_path, json.dumps(PLAIN), json.dumps({**PLAIN, "text": "jalan berlubang",
                                                                  "agency": "PUPR"}))
    status, out, err = run(capsys, "route", "--jsonl", str(source), "--expect", "agency",
                           "--second-opinion", "--training", str(source), "--rulebook", str(rulebook_path))
    assert (status, out) == (2, "")
    assert "is a training file of the second opinion" in err
    status, _, err = run(capsys, "route", "sampah", "--training", str(source),
                         "--rulebook", str(rulebook_path))
    assert status == 2 and "--training needs --second-opinion" in err


def test_second_opinion_is_never_measured_on_a_copy_of_its_training_file(
        capsys: Capture, tmp_path: Path, rulebook_path: Path) -> None:
    # train7 is packaged as a copy of tests/data/routing-train7.jsonl: same lines, other path.
    source = write_lines(tmp_path, json.dumps(PLAIN), json.dumps({**PLAIN, "text": "jalan berlubang",
                                                                  "agency": "PUPR"}))
    copy = tmp_path / "packaged" / "training.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(source.read_bytes())
    status, out, err = run(capsys, "route", "--jsonl", str(source), "--expect", "agency",
                           "--second-opinion", "--training", str(copy), "--rulebook", str(rulebook_path))
    assert (status, out) == (2, "")
    assert "is a training file of the second opinion" in err
