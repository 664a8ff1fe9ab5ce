"""Working time of a clock with pauses: elapsed time and the instant a target is reached."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.sla.clocks import closed_at, instant_at, paused_seconds, working_elapsed
from services.sla.policy import load_policy
from tests.unit.sla_support import POLICY, at

ALWAYS = POLICY.calendar("always")
ROOT = Path(__file__).resolve().parents[2]
WORKING = load_policy(ROOT / "services" / "sla" / "policies" / "default.yaml").calendar("working_hours")
START = at(0)


def test_elapsed_without_pauses_is_the_calendars() -> None:
    assert working_elapsed(ALWAYS, START, at(90)) == 90.0
    assert working_elapsed(ALWAYS, at(90), START) == 0.0


def test_paused_time_is_excluded() -> None:
    pauses = [(at(10), at(30)), (at(50), at(55))]
    assert working_elapsed(ALWAYS, START, at(100), pauses) == 100 - 20 - 5
    assert paused_seconds(ALWAYS, START, at(100), pauses) == 25


def test_a_running_pause_counts_up_to_the_end() -> None:
    assert working_elapsed(ALWAYS, START, at(100), [(at(40), None)]) == 40


def test_pauses_outside_the_clock_are_clipped() -> None:
    pauses = [(at(-50), at(-10)), (at(-5), at(5)), (at(200), at(300))]
    assert working_elapsed(ALWAYS, START, at(100), pauses) == 95


def test_instant_shifts_by_the_pauses_before_it() -> None:
    assert instant_at(ALWAYS, START, 100) == at(100)
    assert instant_at(ALWAYS, START, 100, [(at(10), at(30))]) == at(120)
    # The first pause pushes the target past the start of the second: both count.
    assert instant_at(ALWAYS, START, 100, [(at(10), at(30)), (at(110), at(140))]) == at(150)
    # A pause after the target leaves it alone.
    assert instant_at(ALWAYS, START, 100, [(at(150), at(160))]) == at(100)


def test_instant_is_unknown_while_a_pause_runs_before_it() -> None:
    assert instant_at(ALWAYS, START, 100, [(at(10), None)]) is None
    assert instant_at(ALWAYS, START, 100, [(at(120), None)]) == at(100)
    assert instant_at(ALWAYS, START, 100, closed_at([(at(10), None)], at(40))) == at(130)


def test_instant_and_elapsed_agree_on_working_hours() -> None:
    friday = datetime(2026, 7, 10, 3, 0, tzinfo=UTC)  # 10:00 WIB
    pauses = [(friday + timedelta(hours=2), friday + timedelta(days=3, hours=1))]  # into Monday
    target = WORKING.elapsed(friday, friday + timedelta(days=14)) / 2
    reached = instant_at(WORKING, friday, target, pauses)
    assert reached is not None
    assert working_elapsed(WORKING, friday, reached, pauses) == pytest.approx(target)
    assert reached > instant_at(WORKING, friday, target)  # type: ignore[operator]


def test_a_pause_over_the_weekend_costs_no_working_time() -> None:
    saturday = datetime(2026, 7, 11, 3, 0, tzinfo=UTC)
    sunday = saturday + timedelta(days=1)
    friday = saturday - timedelta(days=1)
    monday = friday + timedelta(days=3)
    assert working_elapsed(WORKING, friday, monday, [(saturday, sunday)]) == \
        WORKING.elapsed(friday, monday)
