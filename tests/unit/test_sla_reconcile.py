"""The escalation reconciliation's decisions: what counts as lost, when it is re-announced
again, and when the service is not ready."""

from datetime import UTC, datetime, timedelta

from services.sla.reconcile import Backlog, due_again, lost, readiness_problem

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _doc(notice: str, where: tuple[int, int] | None, **extra: object) -> dict[str, object]:
    log = None if where is None else {"partition": where[0], "offset": where[1]}
    return {"_id": notice, "event": {"id": f"ev-{notice}"}, **({"log": log} if log else {}), **extra}


def test_lost_is_what_the_log_does_not_hold_at_the_acknowledged_place() -> None:
    docs = [_doc("kept", (0, 4)), _doc("gone", (1, 9)), _doc("overwritten", (0, 5)),
            _doc("never-placed", None)]
    held = {(0, 4): "ev-kept", (0, 5): "ev-someone-else"}
    assert [d["_id"] for d in lost(docs, held)] == ["gone", "overwritten", "never-placed"]


def test_a_reannounced_escalation_waits_before_the_next_attempt() -> None:
    docs = [_doc("never", None), _doc("recent", None, reannounced_epoch=995.0),
            _doc("long-ago", None, reannounced_epoch=900.0)]
    assert [d["_id"] for d in due_again(docs, now_epoch=1000.0, after_seconds=60)] == [
        "never", "long-ago"]


def test_not_ready_when_missing_past_the_alarm_or_unchecked() -> None:
    fresh = Backlog(missing=0, oldest_seconds=0.0, checked_at=NOW)
    behind = Backlog(missing=3, oldest_seconds=700.0, checked_at=NOW)
    stale = Backlog(missing=0, oldest_seconds=0.0, checked_at=NOW - timedelta(seconds=601))
    assert readiness_problem(fresh, NOW, alarm_seconds=600) is None
    assert readiness_problem(behind, NOW, alarm_seconds=600) == (
        "3 escalations missing from the log, the oldest fired 700 s ago (alarm at 600 s)")
    assert readiness_problem(stale, NOW, alarm_seconds=600) == (
        "escalations not checked against the log for 601 s")
    assert readiness_problem(None, NOW, alarm_seconds=600) is not None
