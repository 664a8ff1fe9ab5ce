"""The development sets written blind to the rulebook for issue 13, then tuned on (so their
figures flatter the rulebook; the blind set, tests/data/routing-blind5.jsonl, is the fair measure
and holds no floor here):

- routing-dev2.jsonl: 172 complaints (two-institution complaints, emergencies told by symptoms),
  tuned on since 2026-12-01;
- routing-dev3.jsonl: 172 complaints written blind to the rulebook and the other sets (also
  vulnerable people), tuned on since 2026-12-01 by the rules3 session;
- routing-dev4.jsonl: 250 complaints written from DOMAIN.md alone (was routing-blind4.jsonl),
  tuned on since 2026-12-01 by the rules5 session;
- routing-dev6.jsonl: 132 complaints written by the rules6 session before its structural
  changes, and used to judge them (tests/data/README-dev6.md);
- routing-train7.jsonl: 312 complaints written from DOMAIN.md before reading the router, a
  training set for the learning loop (tests/data/README-train7.md).

The default rulebook is held at the floors below, set a little under what was measured, so a
rulebook or engine change that makes these complaints route worse fails here. Measure with
``disposisi route --jsonl tests/data/routing-dev4.jsonl --expect agency --report-only``.
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from services.router.cli import RouteRequest, decide
from services.router.rulebook import load_rulebook
from shared.contracts import Priority
from shared.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
TRIAGE = "TRIAGE"
URGENT = Priority.URGENT.value
REQUEST_FIELDS = ("id", "text", "title", "location", "channel")


@dataclass(frozen=True)
class Floors:
    rows: int
    accuracy: float
    triage_rate: float
    confidently_wrong: float
    missed_urgent: float
    wrong_urgent: float = 0.05  # a wrong urgent is cheap, but urgent must still mean something


SETS = {
    # After tuning: agency 0.971 (167/172), TRIAGE 0.047, confidently wrong 0.029, missed urgent
    # 0.023 (1/44), wrong urgent 0.023 (3/128). Before (blind): 0.802, 0.105, 0.140 and 0.500.
    "routing-dev2.jsonl": Floors(172, accuracy=0.95, triage_rate=0.06, confidently_wrong=0.04,
                                 missed_urgent=0.03),
    # After tuning: agency 0.936 (161/172), TRIAGE 0.041, confidently wrong 0.041, missed urgent
    # 0.000 (0/40), wrong urgent 0.030 (4/132). Before (blind): 0.808, 0.099, 0.110, 0.450 and
    # 0.023.
    "routing-dev3.jsonl": Floors(172, accuracy=0.92, triage_rate=0.06, confidently_wrong=0.06,
                                 missed_urgent=0.03),
    # After tuning: agency 0.964 (241/250), TRIAGE 0.008, confidently wrong 0.032, missed urgent
    # 0.048 (3/62), wrong urgent 0.016 (3/188), priority 0.880. Before (blind): 0.820, 0.028,
    # 0.156, 0.371 (23/62), 0.037 (7/188) and 0.772.
    "routing-dev4.jsonl": Floors(250, accuracy=0.94, triage_rate=0.03, confidently_wrong=0.05,
                                 missed_urgent=0.07, wrong_urgent=0.03),
    # Written by the rules6 session before its router changes (structural: situations with now
    # cues, over cues, responders, aside cues; not tuned line by line, though the same session
    # judged its changes on it). After: agency 0.894 (118/132), TRIAGE 0.068, confidently
    # wrong 0.053, missed urgent 0.093 (4/43), wrong urgent 0.011 (1/89), priority 0.818.
    # Before: 0.826, 0.114, 0.076, 0.419 (18/43), 0.045 (4/89) and 0.705.
    "routing-dev6.jsonl": Floors(132, accuracy=0.87, triage_rate=0.08, confidently_wrong=0.07,
                                 missed_urgent=0.12, wrong_urgent=0.03),
    # A TRAINING set (tests/data/README-train7.md): written by the corpus7 session from
    # DOMAIN.md before reading the router, then learnt from (lexicon endings and ke- passives,
    # two phrases; the second opinion trains on it). After: agency 0.859 (268/312), TRIAGE
    # 0.035, confidently wrong 0.122, missed urgent 0.240 (12/50), wrong urgent 0.008 (2/262),
    # priority 0.865. Before: 0.837, 0.055, 0.125, 0.300 (15/50), 0.008 and 0.859.
    "routing-train7.jsonl": Floors(312, accuracy=0.84, triage_rate=0.05, confidently_wrong=0.14,
                                   missed_urgent=0.28, wrong_urgent=0.03),
}


def _read(name: str) -> list[dict[str, Any]]:
    text = (DATA / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@cache
def _answers(name: str) -> dict[str, tuple[str, str]]:
    """Row id -> (agency code, priority) the default rulebook gives."""
    rulebook = load_rulebook(Settings().rulebook)
    out = {}
    for row in _read(name):
        request = RouteRequest.model_validate({k: row[k] for k in REQUEST_FIELDS if k in row})
        decision = decide(rulebook, request)
        out[row["id"]] = (decision.agency.code, decision.priority.value)
    return out


Labelled = tuple[list[dict[str, Any]], Floors, dict[str, tuple[str, str]]]


@pytest.fixture(params=sorted(SETS))
def labelled(request: pytest.FixtureRequest) -> Labelled:
    name: str = request.param
    return _read(name), SETS[name], _answers(name)


def test_rows_have_an_id_a_text_and_labels(labelled: Labelled) -> None:
    rows, floors, _ = labelled
    assert len(rows) == floors.rows
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r.get("text") and r.get("agency") and r.get("priority") for r in rows)


def test_agency_accuracy_stays_above_the_floor(labelled: Labelled) -> None:
    rows, floors, answers = labelled
    misses = [f"{r['id']}: {r['agency']} -> {answers[r['id']][0]}" for r in rows
              if answers[r["id"]][0] != r["agency"]]
    assert 1 - len(misses) / len(rows) >= floors.accuracy, misses


def test_few_complaints_go_to_the_desk(labelled: Labelled) -> None:
    rows, floors, answers = labelled
    triaged = [r["id"] for r in rows if answers[r["id"]][0] == TRIAGE]
    assert len(triaged) / len(rows) <= floors.triage_rate, triaged


def test_few_confident_decisions_are_wrong(labelled: Labelled) -> None:
    rows, floors, answers = labelled
    wrong = [r["id"] for r in rows if answers[r["id"]][0] not in (TRIAGE, r["agency"])]
    assert len(wrong) / len(rows) <= floors.confidently_wrong, wrong


def test_urgent_complaints_are_rarely_missed(labelled: Labelled) -> None:
    rows, floors, answers = labelled
    urgent = [r for r in rows if r["priority"] == URGENT]
    missed = [r["id"] for r in urgent if answers[r["id"]][1] != URGENT]
    assert len(missed) / len(urgent) <= floors.missed_urgent, missed


def test_urgent_stays_rare_for_the_rest(labelled: Labelled) -> None:
    rows, floors, answers = labelled
    others = [r for r in rows if r["priority"] != URGENT]
    raised = [r["id"] for r in others if answers[r["id"]][1] == URGENT]
    assert len(raised) / len(others) <= floors.wrong_urgent, raised
