"""Intake's reconciliation decisions: which complaints are overdue, which are due for another
publication, and when the backlog makes intake not ready."""

from datetime import UTC, datetime, timedelta

from services.intake.reconcile import Backlog, due_again, overdue, readiness_problem

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def _doc(ticket_id: str, minutes_ago: float, **fields: object) -> dict[str, object]:
    return {"ticket_id": ticket_id, "submitted_at": NOW - timedelta(minutes=minutes_ago), **fields}


def test_overdue_are_those_submitted_before_the_cutoff() -> None:
    docs = [_doc("A", 10), _doc("B", 3), _doc("C", 1)]
    assert [d["ticket_id"] for d in overdue(docs, NOW - timedelta(minutes=2))] == ["A", "B"]


def test_a_complaint_republished_recently_waits_its_turn() -> None:
    epoch = NOW.timestamp()
    docs = [_doc("never", 10), _doc("long ago", 10, republished_epoch=epoch - 300),
            _doc("just now", 10, republished_epoch=epoch - 30)]
    due = due_again(docs, now_epoch=epoch, after_seconds=120)
    assert [d["ticket_id"] for d in due] == ["never", "long ago"]


def test_readiness_fails_only_past_the_alarm_threshold() -> None:
    assert readiness_problem(None, alarm_seconds=600) == "not checked yet"
    assert readiness_problem(Backlog(3, 599.0, NOW), alarm_seconds=600) is None
    assert readiness_problem(Backlog(0, 0.0, NOW), alarm_seconds=600) is None
    problem = readiness_problem(Backlog(3, 900.0, NOW), alarm_seconds=600)
    assert problem == "3 complaints without a ticket, the oldest for 900 s (alarm at 600 s)"
