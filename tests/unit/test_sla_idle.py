"""How long the SLA scheduler sleeps between turns when the last turn found little to do."""

from datetime import UTC, datetime, timedelta

from services.sla.flows import idle_wait

NOW = datetime(2026, 7, 10, 3, 0, tzinfo=UTC)


def test_sleeps_until_the_next_check() -> None:
    assert idle_wait(NOW + timedelta(seconds=0.4), NOW, cap=1.0) == 0.4


def test_never_longer_than_the_interval() -> None:
    assert idle_wait(NOW + timedelta(days=3), NOW, cap=1.0) == 1.0
    assert idle_wait(None, NOW, cap=2.5) == 2.5


def test_an_overdue_check_is_not_a_busy_loop() -> None:
    assert 0 < idle_wait(NOW - timedelta(seconds=5), NOW, cap=1.0) <= 0.01
