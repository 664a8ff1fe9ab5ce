"""The routing development set: 300-odd complaints written for this project before its rulebook was
read, labelled with the agency that owns them and the priority they deserve.

Its shape is checked here, and the default rulebook is held above accuracy floors on the whole set
and on its authority traps (rows marked ``"trap": true``: the province, the central government,
PLN, the police or BPJS against the city agency with the similar-sounding duty). The floors sit a
little below what the engine measured when they were set, so a rulebook or engine change that
makes routing worse fails here; raise them when routing gets better. Measure with
``python -m services.cli route --jsonl tests/data/routing-dev.jsonl --expect agency``.
"""

import json
import re
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.router.cli import RouteRequest, decide
from services.router.rulebook import Rulebook, load_rulebook
from shared.contracts import ComplaintSubmission, Priority, describe_errors
from shared.settings import Settings
from tests.unit.test_router_domain import DOMAIN_CODES

ROOT = Path(__file__).resolve().parents[2]
DEV_SET = ROOT / "tests" / "data" / "routing-dev.jsonl"
SMOKE_SET = ROOT / "tests" / "data" / "routing-smoke.jsonl"

# Measured with the routing engine of 2026-11-28 (the keyword scorer before it: 0.842, 0.938,
# 0.789). The engine's authors saw this set's misses, so it flatters them: the blind holdout
# (tests/data/routing-holdout.jsonl) is the fairer figure.
# With the main ask and implied urgency (2026-12-01), on 345 rows of which 42 (dev-304 to dev-345)
# are two-institution complaints and emergencies told by symptoms: 0.986 (340/345), traps 1.00
# (64/64), priority 0.841 (290/345), missed-urgent 0.065 (2/31); on the first 303 rows agency
# 0.990 and priority 0.832 (before: 0.990 and 0.822).
ACCURACY_FLOOR = 0.94  # set when 0.967 (293/303) was measured
TRAP_ACCURACY_FLOOR = 0.95  # set when 0.984 (63/64) was measured
PRIORITY_FLOOR = 0.82  # the labels' priority agrees with the router's
MISSED_URGENT_CEILING = 0.10  # rows labelled urgent that the router does not make urgent

FIELDS = {"id", "title", "text", "location", "channel", "agency", "priority", "trap", "note"}
REQUIRED = {"id", "text", "agency", "priority"}
PRIORITIES = {Priority.NORMAL.value, Priority.HIGH.value, Priority.URGENT.value}
ROWS_PER_CODE = 5


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


ROWS = _read(DEV_SET)


@pytest.fixture(scope="module")
def rulebook() -> Rulebook:
    return load_rulebook(Settings().rulebook)


@pytest.fixture(scope="module")
def answers(rulebook: Rulebook) -> dict[str, tuple[str, str]]:
    """Row id -> (agency code, priority) the router gives, through the CLI's adapter."""
    decisions = {row["id"]: decide(rulebook, RouteRequest.model_validate(row)) for row in ROWS}
    return {row_id: (d.agency.code, d.priority.value) for row_id, d in decisions.items()}


def _problems(row: dict[str, Any]) -> list[str]:
    """What is wrong with one row, each naming the field."""
    problems = [f"unknown field {name!r}" for name in row.keys() - FIELDS]
    problems += [f"missing field {name!r}" for name in REQUIRED - row.keys()]
    if not re.fullmatch(r"dev-\d{3}", str(row.get("id"))):
        problems.append("id: expected dev-NNN")
    if row.get("agency") not in DOMAIN_CODES:
        problems.append(f"agency: {row.get('agency')!r} is not a code of DOMAIN.md")
    if row.get("priority") not in PRIORITIES:
        problems.append(f"priority: {row.get('priority')!r} is not one of {sorted(PRIORITIES)}")
    if row.get("trap", True) is not True:
        problems.append("trap: either true or absent")
    if len(str(row.get("note", ""))) > 120:
        problems.append("note: longer than 120 characters")
    try:  # the row must be something a channel could really submit
        ComplaintSubmission.model_validate({
            "channel": row.get("channel", "web"), "text": row.get("text"), "title": row.get("title"),
            "location": row.get("location")})
    except ValidationError as error:
        problems.append(describe_errors(error.errors()))
    return problems


def test_every_row_is_a_well_formed_complaint() -> None:
    problems = {row.get("id"): p for row in ROWS if (p := _problems(row))}
    assert problems == {}


def test_ids_are_unique() -> None:
    twice = [row_id for row_id, n in Counter(r["id"] for r in ROWS).items() if n > 1]
    assert not twice


def test_every_agency_code_has_enough_rows(rulebook: Rulebook) -> None:
    counts = Counter(r["agency"] for r in ROWS)
    assert set(DOMAIN_CODES) <= set(rulebook.codes)
    assert {code: counts[code] for code in DOMAIN_CODES if counts[code] < ROWS_PER_CODE} == {}


def test_traps_cover_every_outside_authority_and_the_city_side(rulebook: Rulebook) -> None:
    traps = [r for r in ROWS if r.get("trap")]
    outside = {a.code for a in rulebook.agencies if a.authority in ("provinsi", "pusat", "bumn")}
    assert outside <= {r["agency"] for r in traps}
    city_side = [r for r in traps if rulebook.agency(r["agency"]).authority == "kota"]
    assert len(city_side) >= ROWS_PER_CODE, "traps must also hold rows that stay with the city"


def test_rows_are_not_copies_of_the_smoke_set() -> None:
    smoke = [r["text"].lower() for r in _read(SMOKE_SET)]
    close = []
    for row in ROWS:
        matcher = SequenceMatcher(a=row["text"].lower())
        for text in smoke:
            matcher.set_seq2(text)
            if matcher.quick_ratio() >= 0.85 and matcher.ratio() >= 0.85:
                close.append((row["id"], text))
    assert not close


def _misses(rows: list[dict[str, Any]], answers: dict[str, tuple[str, str]]) -> list[str]:
    return [f"{r['id']}: {r['agency']} -> {answers[r['id']][0]}" for r in rows
            if answers[r["id"]][0] != r["agency"]]


def test_default_rulebook_stays_above_the_accuracy_floor(answers: dict[str, tuple[str, str]]) -> None:
    misses = _misses(ROWS, answers)
    assert 1 - len(misses) / len(ROWS) >= ACCURACY_FLOOR, misses


def test_default_rulebook_stays_above_the_trap_floor(answers: dict[str, tuple[str, str]]) -> None:
    traps = [r for r in ROWS if r.get("trap")]
    misses = _misses(traps, answers)
    assert 1 - len(misses) / len(traps) >= TRAP_ACCURACY_FLOOR, misses


def test_priorities_stay_above_the_floor(answers: dict[str, tuple[str, str]]) -> None:
    differ = [f"{r['id']}: {r['priority']} -> {answers[r['id']][1]}" for r in ROWS
              if answers[r["id"]][1] != r["priority"]]
    assert 1 - len(differ) / len(ROWS) >= PRIORITY_FLOOR, differ


def test_urgent_complaints_are_rarely_missed(answers: dict[str, tuple[str, str]]) -> None:
    urgent = [r for r in ROWS if r["priority"] == Priority.URGENT.value]
    missed = [r["id"] for r in urgent if answers[r["id"]][1] != Priority.URGENT.value]
    assert len(missed) / len(urgent) <= MISSED_URGENT_CEILING, missed
