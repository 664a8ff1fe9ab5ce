"""The third development set (tests/data/routing-dev3.jsonl): 172 complaints written blind to the
rulebook and to the other sets for issue 13 (two-institution complaints, emergencies told by
symptoms, vulnerable people), tuned on since 2026-12-01 (rules3 session), so its figures flatter
the rulebook; a fresh blind set is the fair measure.

The default rulebook is held at the floors below, set a little under what was measured, so a
rulebook or engine change that makes these complaints route worse fails here. Measure with
``disposisi route --jsonl tests/data/routing-dev3.jsonl --expect agency --report-only``.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from services.router.cli import RouteRequest, decide
from services.router.rulebook import Rulebook, load_rulebook
from shared.contracts import Priority
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEV3_SET = ROOT / "tests" / "data" / "routing-dev3.jsonl"
TRIAGE = "TRIAGE"

# Measured on 2026-12-01 after tuning: agency 0.936 (161/172), TRIAGE rate 0.041 (7/172),
# confidently wrong 0.041 (7/172), missed urgent 0.000 (0/40), wrong urgent 0.030 (4/132).
# Before tuning (blind): 0.808, 0.099, 0.110, 0.450 (18/40) and 0.023 (3/132).
ACCURACY_FLOOR = 0.92
TRIAGE_RATE_CEILING = 0.06
CONFIDENTLY_WRONG_CEILING = 0.06
MISSED_URGENT_CEILING = 0.03
WRONG_URGENT_CEILING = 0.05  # a wrong urgent is cheap, but urgent must still mean something

REQUEST_FIELDS = ("id", "text", "title", "location", "channel")


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


ROWS = _read(DEV3_SET)


@pytest.fixture(scope="module")
def answers() -> dict[str, tuple[str, str]]:
    """Row id -> (agency code, priority) the default rulebook gives."""
    rulebook: Rulebook = load_rulebook(Settings().rulebook)
    out = {}
    for row in ROWS:
        request = RouteRequest.model_validate({k: row[k] for k in REQUEST_FIELDS if k in row})
        decision = decide(rulebook, request)
        out[row["id"]] = (decision.agency.code, decision.priority.value)
    return out


def test_rows_have_an_id_a_text_and_labels() -> None:
    assert len(ROWS) == 172
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    assert all(r.get("text") and r.get("agency") and r.get("priority") for r in ROWS)


def test_agency_accuracy_stays_above_the_floor(answers: dict[str, tuple[str, str]]) -> None:
    misses = [f"{r['id']}: {r['agency']} -> {answers[r['id']][0]}" for r in ROWS
              if answers[r["id"]][0] != r["agency"]]
    assert 1 - len(misses) / len(ROWS) >= ACCURACY_FLOOR, misses


def test_few_complaints_go_to_the_desk(answers: dict[str, tuple[str, str]]) -> None:
    triaged = [r["id"] for r in ROWS if answers[r["id"]][0] == TRIAGE]
    assert len(triaged) / len(ROWS) <= TRIAGE_RATE_CEILING, triaged


def test_few_confident_decisions_are_wrong(answers: dict[str, tuple[str, str]]) -> None:
    wrong = [r["id"] for r in ROWS
             if answers[r["id"]][0] not in (TRIAGE, r["agency"])]
    assert len(wrong) / len(ROWS) <= CONFIDENTLY_WRONG_CEILING, wrong


def test_urgent_complaints_are_rarely_missed(answers: dict[str, tuple[str, str]]) -> None:
    urgent = [r for r in ROWS if r["priority"] == Priority.URGENT.value]
    missed = [r["id"] for r in urgent if answers[r["id"]][1] != Priority.URGENT.value]
    assert len(missed) / len(urgent) <= MISSED_URGENT_CEILING, missed


def test_urgent_stays_rare_for_the_rest(answers: dict[str, tuple[str, str]]) -> None:
    others = [r for r in ROWS if r["priority"] != Priority.URGENT.value]
    raised = [r["id"] for r in others if answers[r["id"]][1] == Priority.URGENT.value]
    assert len(raised) / len(others) <= WRONG_URGENT_CEILING, raised
