"""Acknowledging an escalation stops its step's re-notifications (and only that step's), holds
across a re-target, lapses with a new lateness of the update clock or a new assignment, and
is audited from the acknowledgement alone."""

from datetime import datetime
from typing import Any

from services.sla.domain import Ticket, escalations_due, mark_fired, reassign
from services.sla.escalations import AckDoc, ack_fields, ack_record, acknowledge_step, escalation_view
from services.sla.ladder import Notice
from shared.audit import Actor, AuditAction
from tests.unit.sla_support import POLICY, TICKET_ID, act, at, routed, step, ticket

SUPERVISOR = Actor(name="inspektorat", role="supervisor", kind="person")


def fire(current: Ticket, when: float) -> tuple[Ticket, list[Notice]]:
    notices = escalations_due(current, POLICY, at(when), late_after_seconds=5.0,
                              supervisors=lambda _: {})
    return mark_fired(current, notices, POLICY, at(when)), notices


def stored(notice: Notice) -> dict[str, Any]:
    """The escalation document as the scheduler stores it (the fields the ack reads)."""
    e = notice.escalation
    return {"_id": notice.id, "ticket_id": TICKET_ID, "agency": e.agency,
            "assignment": e.assignment, "clock": e.clock, "level": e.level, "repeat": e.repeat,
            "event": {"tenant": "kota-bengkulu", "data": e.model_dump(mode="json")}}


def ack_of(notice: Notice, when: float) -> AckDoc:
    return ack_fields(stored(notice), tenant="kota-bengkulu", actor=SUPERVISOR,
                      request_id="req-1", now=at(when))


def acknowledged(current: Ticket, notice: Notice, when: float) -> Ticket:
    changed = acknowledge_step(current, ack_of(notice, when), POLICY, at(when))
    assert changed is not None
    return changed


def renotifying_level_2(until: float = 111) -> tuple[Ticket, Notice]:
    current, _ = fire(ticket(), 61)
    current, [notice] = fire(current, until)
    assert (notice.escalation.level, notice.escalation.repeat) == (2, 0)
    return current, notice


def repeats(current: Ticket, clock: str, level: int, start: float, end: float) -> list[int]:
    """The repeat numbers a step fires between ``start`` and ``end`` (a turn every second)."""
    fired: list[int] = []
    for second in range(int(start), int(end)):
        current, notices = fire(current, second)
        fired += [n.escalation.repeat for n in notices
                  if (n.escalation.clock, n.escalation.level) == (clock, level)]
    return fired


def test_without_acknowledgement_the_step_renotifies() -> None:
    current, _ = renotifying_level_2()
    assert repeats(current, "response", 2, 112, 200) == [1, 2]


def test_an_acknowledged_step_renotifies_no_more_but_higher_levels_still_fire() -> None:
    current, notice = renotifying_level_2()
    quiet = acknowledged(current, notice, 115)
    assert step(quiet, "response", 2)["next_at"] is None
    assert step(quiet, "response", 2)["acknowledged"] == {
        "escalation_id": f"{TICKET_ID}:a1:response:2:0", "by": "inspektorat (supervisor)",
        "at": at(115)}
    assert repeats(quiet, "response", 2, 116, 200) == []
    assert repeats(quiet, "response", 3, 116, 200) == [0]  # after breach + 50 s: still climbs


def test_acknowledging_again_changes_nothing() -> None:
    current, notice = renotifying_level_2()
    once = acknowledged(current, notice, 115)
    assert acknowledge_step(once, ack_of(notice, 130), POLICY, at(130)) is None


def test_an_acknowledgement_of_an_earlier_assignment_leaves_the_new_one_alone() -> None:
    current, notice = renotifying_level_2()
    moved = reassign(current, routed("PUPR", assignment=2), POLICY, assigned_at=at(112), now=at(112))
    assert moved is not None
    assert acknowledge_step(moved, ack_of(notice, 115), POLICY, at(115)) is None


def test_the_acknowledgement_holds_across_a_re_target() -> None:
    current, notice = renotifying_level_2()
    quiet = acknowledged(current, notice, 115)
    retargeted = act(quiet, "reprioritised", 116, priority="high")
    assert step(retargeted, "response", 2)["acknowledged"] is not None
    assert repeats(retargeted, "response", 2, 117, 200) == []


def test_a_new_lateness_of_the_update_clock_is_not_covered() -> None:
    replied = act(ticket(), "responded", 30)
    current, [notice] = fire(replied, 231)
    quiet = acknowledged(current, notice, 232)
    again = act(quiet, "responded", 240)  # the clock restarts: a new lateness
    assert step(again, "update", 1).get("acknowledged") is None
    _, notices = fire(again, 441)
    assert [n.escalation.clock for n in notices] == ["update"]


def test_the_audit_record_names_the_supervisor_and_the_step() -> None:
    _, notice = renotifying_level_2()
    record = ack_record(ack_of(notice, 115))
    assert record.action == AuditAction.ESCALATION_ACK.value
    assert record.key == f"escalation_ack:{TICKET_ID}:a1:response:2"
    assert (record.actor, record.request_id, record.ticket_id) == (SUPERVISOR, "req-1", TICKET_ID)
    assert record.before == {"state": "open"}
    assert record.after is not None and record.after["state"] == "acknowledged"
    assert (record.after["clock"], record.after["level"], record.after["repeat"]) == ("response", 2, 0)
    assert record.time == at(115)


def test_the_view_says_how_late_and_who_acknowledged() -> None:
    _, notice = renotifying_level_2()
    ack = ack_of(notice, 115)
    open_view = escalation_view(stored(notice), None)
    done = escalation_view(stored(notice), dict(ack))
    assert (open_view.state, open_view.acknowledgement) == ("open", None)
    assert open_view.overdue_seconds == 1.0  # fired at 111 s on a 100 s target from 10 s
    assert done.state == "acknowledged" and done.acknowledgement is not None
    assert (done.acknowledgement.by, done.acknowledgement.at) == ("inspektorat (supervisor)", at(115))
    assert isinstance(done.fired_at, datetime)
