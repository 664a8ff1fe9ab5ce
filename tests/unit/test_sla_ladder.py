"""The escalation ladder: fraction and after-breach triggers, re-notify, recipients, stops,
missed notices after downtime, stable claim ids."""

from typing import Any

from services.sla.domain import Ticket, escalations_due, mark_fired, reassign
from services.sla.ladder import Notice
from tests.unit.sla_support import POLICY, TICKET_ID, act, at, routed, step, ticket

SUPERVISORS = {"DLH": {"agency_head": "Kepala DLH", "inspektorat": "Inspektur Kota", "sekda": "Sekda"},
               "TRIAGE": {"agency_head": "Kabag Organisasi"}}


def supervisors(agency: str) -> dict[str, str]:
    return SUPERVISORS.get(agency, {})


def due(current: Ticket, when: float, late_after: float = 5.0) -> list[Notice]:
    return escalations_due(current, POLICY, at(when), late_after_seconds=late_after,
                           supervisors=supervisors)


def fire(current: Ticket, when: float) -> tuple[Ticket, list[Notice]]:
    notices = due(current, when)
    return mark_fired(current, notices, POLICY, at(when)), notices


def keys(notices: list[Notice]) -> list[tuple[str, int, int]]:
    return [(n.escalation.clock, n.escalation.level, n.escalation.repeat) for n in notices]


def test_nothing_due_before_the_first_trigger() -> None:
    assert due(ticket(), 59.9) == []


def test_fraction_trigger_fires_with_the_full_event() -> None:
    [notice] = due(ticket(), 61)
    assert notice.id == f"{TICKET_ID}:a1:response:1:0"
    e = notice.escalation
    assert (e.agency, e.assignment, e.clock, e.level, e.repeat) == ("DLH", 1, "response", 1, 0)
    assert e.trigger == "50% of response target"
    assert (e.target_seconds, e.elapsed_seconds) == (100.0, 51.0)
    assert (e.due_at, e.triggered_at, e.fired_at, e.late) == (at(110), at(60), at(61), False)
    assert [(r.role, r.name) for r in e.recipients] == [("agency_head", "Kepala DLH")]


def test_recipients_without_a_holder_keep_their_role() -> None:
    fired, _ = fire(ticket(), 61)
    current, _ = fire(fired, 111)
    current, notices = fire(current, 161)
    assert keys(notices) == [("response", 2, 1), ("response", 3, 0)]
    assert [(r.role, r.name) for r in notices[1].escalation.recipients] == [("sekda", "Sekda")]
    [resolution] = [n for n in due(current, 511) if n.escalation.clock == "resolution"]
    unknown: list[Any] = [(r.role, r.name) for r in resolution.escalation.recipients]
    assert unknown == [("agency_head", "Kepala DLH"), ("ombudsman", None)]


def test_after_breach_trigger_waits_its_delay_past_the_target() -> None:
    assert step(ticket(), "response", 3)["offset_seconds"] == 150.0
    current, _ = fire(ticket(), 61)
    current, _ = fire(current, 111)
    assert [n.escalation.level for n in due(current, 159) if n.escalation.level == 3] == []
    assert [n.escalation.trigger for n in due(current, 160) if n.escalation.level == 3] == \
        ["50s after response breach"]


def test_renotify_repeats_until_the_clock_stops() -> None:
    current, _ = fire(ticket(), 61)
    current, notices = fire(current, 111)
    assert keys(notices) == [("response", 2, 0)]
    assert step(current, "response", 2)["next_at"] == at(140)
    current, notices = fire(current, 141)
    assert keys(notices) == [("response", 2, 1)]
    assert notices[0].id == f"{TICKET_ID}:a1:response:2:1"
    assert notices[0].escalation.trigger == "100% of response target, re-notify 1"
    responded = act(current, "responded", 150)
    assert [n for n in due(responded, 349) if n.escalation.clock == "response"] == []
    assert responded["next_check_at"] == at(350)  # the update clock (200 s) started with the reply


def test_missed_renotifies_fire_once_not_in_a_burst() -> None:
    current, _ = fire(ticket(), 61)
    current, _ = fire(current, 111)
    # Down from 115 to 205: re-notifies at 140, 170 and 200 were missed.
    current, notices = fire(current, 205)
    assert [k for k in keys(notices) if k[1] == 2] == [("response", 2, 1)]
    assert notices[0].escalation.triggered_at == at(140)
    assert notices[0].escalation.late is True
    assert step(current, "response", 2)["next_at"] == at(230)


def test_every_missed_level_fires_once_marked_late() -> None:
    notices = due(ticket(), 600)
    assert keys(notices) == [("response", 1, 0), ("response", 2, 0), ("response", 3, 0),
                             ("resolution", 1, 0)]
    assert all(n.escalation.late for n in notices)
    fired = mark_fired(ticket(), notices, POLICY, at(600))
    assert keys(due(fired, 601)) == []
    assert fired["next_check_at"] == at(620)  # the first level-2 re-notify slot after now


def test_late_only_when_well_past_the_trigger() -> None:
    assert [n.escalation.late for n in due(ticket(), 64, late_after=5)] == [False]
    assert [n.escalation.late for n in due(ticket(), 66, late_after=5)] == [True]


def test_acknowledged_does_not_stop_the_ladder() -> None:
    assert keys(due(act(ticket(), "acknowledged", 20), 61)) == [("response", 1, 0)]


def test_resolution_stops_every_ladder() -> None:
    resolved = act(ticket(), "resolved", 20)
    assert due(resolved, 5000) == []
    assert resolved["next_check_at"] is None


def test_the_update_clock_fires_when_the_citizen_hears_nothing() -> None:
    replied = act(ticket(), "responded", 30)
    assert keys(due(replied, 229)) == []
    current, notices = fire(replied, 231)
    assert keys(notices) == [("update", 1, 0)]
    again = act(current, "responded", 240)  # a new reply restarts the clock; numbering goes on
    assert step(again, "update", 1)["next_at"] == at(440)
    _, notices = fire(again, 441)
    assert [n.id for n in notices if n.escalation.clock == "update"] == [f"{TICKET_ID}:a1:update:1:1"]


def test_pauses_hold_the_ladder_and_shift_it() -> None:
    paused = act(ticket(), "needs_info", 30)
    assert due(paused, 500) == []
    resumed = act(paused, "citizen_replied", 100)
    assert keys(due(resumed, 129)) == []
    assert keys(due(resumed, 130)) == [("response", 1, 0)]


def test_ids_are_stable_when_the_same_work_is_redone() -> None:
    first = [n.id for n in due(ticket(), 61)]
    again = [n.id for n in due(ticket(), 90, late_after=1)]
    assert first == again[:1]


def test_a_new_assignment_has_its_own_ids_and_ladder() -> None:
    current, _ = fire(ticket(), 61)
    moved = reassign(current, routed("PUPR", assignment=2), POLICY, assigned_at=at(70), now=at(70))
    assert moved is not None
    [notice] = due(moved, 121)
    assert notice.id == f"{TICKET_ID}:a2:response:1:0"
    assert notice.escalation.agency == "PUPR"


def test_a_priority_change_does_not_refire_sent_levels() -> None:
    current, _ = fire(ticket(), 61)
    urgent = act(current, "reprioritised", 62, priority="urgent")
    # Level 1 already went out; level 2 is now due (10 s target from assignment) and fires once.
    assert keys(due(urgent, 63)) == [("response", 2, 0)]
    assert step(urgent, "response", 3)["next_at"] == at(10 + 10 + 50)


def test_the_legal_ceiling_runs_from_submission() -> None:
    replied = act(ticket(), "responded", 30)
    notices = [n for n in due(replied, 1001) if n.escalation.clock == "ceiling"]
    assert [(n.escalation.triggered_at, n.escalation.recipients[0].role) for n in notices] == \
        [(at(1000), "ombudsman")]


def test_a_rejected_ticket_escalates_to_the_triage_desk_until_rerouted() -> None:
    current, _ = fire(ticket(), 61)
    rejected = act(act(current, "needs_info", 65), "rejected", 70, reason="bukan Tupoksi DLH",
                   suggested_agency="PUPR")
    assert rejected["clocks"]["routing"]["due_at"] == at(110)  # a citizen's pause does not hold it
    assert keys(due(rejected, 109)) == []
    [notice] = due(rejected, 111)
    assert notice.id == f"{TICKET_ID}:a1:routing:1:0"
    assert notice.escalation.agency == "TRIAGE"  # DLH, which rejected it, hears no more
    assert [(r.role, r.name) for r in notice.escalation.recipients] == [("agency_head", "Kabag Organisasi")]
    current, _ = fire(rejected, 111)
    assert keys(due(current, 131)) == [("routing", 1, 1)]
    moved = reassign(current, routed("PUPR", assignment=2), POLICY, assigned_at=at(135), now=at(135))
    assert moved is not None
    assert moved["clocks"]["routing"]["met"] is False
    assert [k for k in keys(due(moved, 400)) if k[0] == "routing"] == []


def test_a_stored_step_keeps_only_what_the_scheduler_needs() -> None:
    """Trigger text and recipients come from the policy, not from every ticket."""
    for stored in ticket()["ladder"]:
        assert not {"trigger", "notify"} & stored.keys()
        assert {"clock", "level", "offset_seconds", "fired", "slot", "next_at"} <= stored.keys()
    assert "renotify_seconds" not in step(ticket(), "response", 1)
    assert step(ticket(), "response", 2)["renotify_seconds"] == 30.0


def test_a_step_stored_before_steps_were_compact_fires_as_it_was_stored() -> None:
    old = ticket()
    for stored in old["ladder"]:
        stored.update(trigger=f"old {stored['clock']} {stored['level']}", notify=["sekda"],
                      renotify_seconds=stored.get("renotify_seconds"), acknowledged=None)
    [notice] = due(old, 61)
    assert notice.escalation.trigger == "old response 1"
    assert [(r.role, r.name) for r in notice.escalation.recipients] == [("sekda", "Sekda")]
    current, _ = fire(old, 61)
    assert keys(due(current, 111)) == [("response", 2, 0)]
