"""SLA decisions: deadlines, the escalation ladder, and what an agency's update does."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.sla.domain import (
    Due,
    Ticket,
    UpdateRefused,
    apply_update,
    claim_id,
    due_escalations,
    mark_fired,
    new_ticket,
)
from services.sla.policy import load_policy
from shared.contracts import (
    Channel,
    Priority,
    RoutingExplanation,
    TicketRouted,
    TicketUpdate,
    UpdateAction,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = load_policy(ROOT / "services" / "sla" / "policies" / "default.yaml")
DEMO = load_policy(ROOT / "examples" / "policy-demo.yaml")
JAKARTA = ZoneInfo("Asia/Jakarta")
SUBMITTED = datetime(2026, 7, 10, 3, 0, tzinfo=UTC)  # Friday 10:00 WIB
ASSIGNED = SUBMITTED + timedelta(seconds=1)


def seconds(n: float) -> datetime:
    return SUBMITTED + timedelta(seconds=n)


def routed(agency: str = "DLH", priority: Priority = Priority.NORMAL,
           submitted_at: datetime = SUBMITTED) -> TicketRouted:
    return TicketRouted(
        agency=agency, agency_name=f"Agency {agency}", authority="kota", priority=priority,
        category="sampah",
        routing=RoutingExplanation(rulebook_version="v1", rule_ids=["dlh-sampah"],
                                   matched_terms=["sampah"], reason="matched 'sampah' in rules of DLH"),
        channel=Channel.WEB, title="Sampah", text="Sampah menumpuk di depan pasar.",
        submitted_at=submitted_at,
    )


def demo_ticket(**kwargs: Any) -> Ticket:
    return new_ticket("BKL-260710-00000001", routed(**kwargs), DEMO, now=ASSIGNED)


def update(action: str, **fields: Any) -> TicketUpdate:
    return TicketUpdate.model_validate({"action": action, **fields})


def step(ticket: Ticket, clock: str, level: int) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in ticket["ladder"] if (s["clock"], s["level"]) == (clock, level))
    return found


# --- new tickets ---------------------------------------------------------------------------

def test_demo_ticket_due_times() -> None:
    ticket = demo_ticket()
    assert ticket["sla"] == {"target": "demo", "calendar": "always"}
    assert ticket["clocks"]["response"]["due_at"] == seconds(5)
    assert ticket["clocks"]["resolution"]["due_at"] == seconds(60)
    assert ticket["clocks"]["response"]["target_seconds"] == 5.0
    assert ticket["clocks"]["response"]["started_at"] == SUBMITTED
    assert ticket["clocks"]["response"]["stopped_at"] is None
    assert ticket["deadlines"]["response_due"] == seconds(5)
    assert ticket["deadlines"]["resolution_due"] == seconds(60)


def test_demo_ticket_ladder() -> None:
    ticket = demo_ticket()
    assert [(s["clock"], s["level"], s["trigger_at"], s["fired_at"]) for s in ticket["ladder"]] == [
        ("response", 1, seconds(3.75), None),
        ("response", 2, seconds(5), None),
        ("resolution", 1, seconds(60), None),
    ]
    assert step(ticket, "response", 2)["notify"] == ["agency_head", "inspektorat"]


def test_next_check_is_the_earliest_trigger() -> None:
    assert demo_ticket()["next_check_at"] == seconds(3.75)


def test_legal_ceiling_is_sixty_days() -> None:
    assert demo_ticket()["deadlines"]["legal_ceiling"] == SUBMITTED + timedelta(days=60)


def test_new_ticket_fields() -> None:
    ticket = demo_ticket()
    assert ticket["_id"] == "BKL-260710-00000001"
    assert ticket["status"] == "assigned"
    assert (ticket["agency"], ticket["priority"], ticket["channel"], ticket["category"]) == \
        ("DLH", "normal", "web", "sampah")
    assert ticket["assigned_at"] == ASSIGNED
    assert ticket["routing"]["rule_ids"] == ["dlh-sampah"]
    assert ticket["applied_events"] == []
    assert [h["action"] for h in ticket["history"]] == ["assigned"]


def test_default_policy_friday_ticket_skips_the_weekend() -> None:
    ticket = new_ticket("T", routed(), DEFAULT, now=ASSIGNED)
    assert ticket["sla"]["target"] == "normative"
    response_due = ticket["clocks"]["response"]["due_at"]
    assert response_due == datetime(2026, 7, 17, 10, tzinfo=JAKARTA)  # the next Friday, 10:00 WIB
    assert response_due.tzinfo is UTC
    assert ticket["clocks"]["resolution"]["due_at"] == datetime(2026, 7, 30, 10, tzinfo=JAKARTA)
    # 75% of 5 working days from Friday 10:00 is Thursday 04:00.
    assert step(ticket, "response", 1)["trigger_at"] == datetime(2026, 7, 16, 4, tzinfo=JAKARTA)
    assert ticket["deadlines"]["legal_ceiling"] == SUBMITTED + timedelta(days=60)


def test_default_policy_emergency_runs_24x7() -> None:
    saturday = datetime(2026, 7, 11, 3, tzinfo=UTC)
    ticket = new_ticket("T", routed("DAMKAR", submitted_at=saturday), DEFAULT, now=saturday)
    assert ticket["sla"]["target"] == "emergency"
    assert ticket["clocks"]["response"]["due_at"] == saturday + timedelta(hours=1)


def test_default_policy_urgent_priority() -> None:
    ticket = new_ticket("T", routed("DLH", Priority.URGENT), DEFAULT, now=ASSIGNED)
    assert ticket["sla"]["target"] == "urgent"
    assert ticket["clocks"]["response"]["due_at"] == SUBMITTED + timedelta(hours=4)


# --- escalations ---------------------------------------------------------------------------

def test_nothing_due_before_the_first_trigger() -> None:
    assert due_escalations(demo_ticket(), seconds(3.7), late_after_seconds=60) == []


def test_first_step_due_after_its_trigger() -> None:
    ticket = demo_ticket()
    due = due_escalations(ticket, seconds(4), late_after_seconds=60)
    assert [d.index for d in due] == [0]
    escalation = due[0].escalation
    assert (escalation.agency, escalation.clock, escalation.level) == ("DLH", "response", 1)
    assert escalation.trigger == "75% of response target"
    assert escalation.due_at == seconds(5)
    assert escalation.triggered_at == seconds(3.75)
    assert escalation.fired_at == seconds(4)
    assert [r.role for r in escalation.recipients] == ["agency_head"]
    assert escalation.late is False


def test_trigger_instant_itself_is_due() -> None:
    assert len(due_escalations(demo_ticket(), seconds(3.75), late_after_seconds=60)) == 1


def test_several_steps_due_at_once() -> None:
    due = due_escalations(demo_ticket(), seconds(61), late_after_seconds=600)
    assert [(d.escalation.clock, d.escalation.level) for d in due] == \
        [("response", 1), ("response", 2), ("resolution", 1)]
    assert due[1].escalation.trigger == "100% of response target"


def test_late_when_far_past_the_trigger() -> None:
    due = due_escalations(demo_ticket(), seconds(10), late_after_seconds=2)
    assert [(d.escalation.level, d.escalation.late) for d in due] == [(1, True), (2, True)]
    due = due_escalations(demo_ticket(), seconds(6), late_after_seconds=2)
    assert [(d.escalation.level, d.escalation.late) for d in due] == [(1, True), (2, False)]


def test_nothing_due_on_a_stopped_clock() -> None:
    responded = apply_update(demo_ticket(), update("responded"), event_id="e1", now=seconds(2))
    assert due_escalations(responded, seconds(30), late_after_seconds=60) == []
    due = due_escalations(responded, seconds(61), late_after_seconds=60)
    assert [(d.escalation.clock, d.escalation.level) for d in due] == [("resolution", 1)]


def test_nothing_due_on_a_resolved_ticket() -> None:
    resolved = apply_update(demo_ticket(), update("resolved"), event_id="e1", now=seconds(2))
    assert due_escalations(resolved, seconds(3600), late_after_seconds=60) == []


def test_mark_fired_sets_fired_at_and_moves_next_check() -> None:
    ticket = demo_ticket()
    due = due_escalations(ticket, seconds(4), late_after_seconds=60)
    fired = mark_fired(ticket, due, seconds(4))
    assert step(fired, "response", 1)["fired_at"] == seconds(4)
    assert step(fired, "response", 2)["fired_at"] is None
    assert fired["next_check_at"] == seconds(5)
    assert due_escalations(fired, seconds(4.5), late_after_seconds=60) == []
    assert step(ticket, "response", 1)["fired_at"] is None  # the input is not mutated
    assert ticket["next_check_at"] == seconds(3.75)


def test_mark_fired_all_steps_leaves_nothing_to_check() -> None:
    ticket = demo_ticket()
    fired = mark_fired(ticket, due_escalations(ticket, seconds(61), late_after_seconds=60), seconds(61))
    assert all(s["fired_at"] == seconds(61) for s in fired["ladder"])
    assert fired["next_check_at"] is None


def test_claim_id_is_unique_per_ticket_assignment_clock_level() -> None:
    ticket = demo_ticket()
    due = due_escalations(ticket, seconds(61), late_after_seconds=60)
    ids = [claim_id(ticket, d) for d in due]
    assert ids == ["BKL-260710-00000001:a1:response:1", "BKL-260710-00000001:a1:response:2",
                   "BKL-260710-00000001:a1:resolution:1"]
    reassigned = {**ticket, "assignment": 2}
    assert claim_id(reassigned, due[0]) == "BKL-260710-00000001:a2:response:1"
    other = {**ticket, "_id": "BKL-260710-00000002"}
    assert claim_id(other, due[0]) not in ids


def test_claim_id_is_stable_across_replicas() -> None:
    first = due_escalations(demo_ticket(), seconds(4), late_after_seconds=60)[0]
    second = due_escalations(demo_ticket(), seconds(40), late_after_seconds=5)[0]
    assert isinstance(first, Due)
    assert claim_id(demo_ticket(), first) == claim_id(demo_ticket(), second)


# --- updates -------------------------------------------------------------------------------

def test_acknowledged_does_not_stop_the_response_clock() -> None:
    ticket = demo_ticket()
    acknowledged = apply_update(ticket, update("acknowledged", actor="petugas"), event_id="e1",
                                now=seconds(1))
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["clocks"]["response"]["stopped_at"] is None
    assert "met" not in acknowledged["clocks"]["response"]
    assert acknowledged["next_check_at"] == seconds(3.75)
    assert len(due_escalations(acknowledged, seconds(4), late_after_seconds=60)) == 1


def test_responded_stops_the_response_clock_in_time() -> None:
    responded = apply_update(demo_ticket(), update("responded", note="Akan diangkut besok"),
                             event_id="e1", now=seconds(2))
    assert responded["status"] == "responded"
    assert responded["clocks"]["response"]["stopped_at"] == seconds(2)
    assert responded["clocks"]["response"]["met"] is True
    assert responded["clocks"]["resolution"]["stopped_at"] is None
    assert responded["next_check_at"] == seconds(60)


def test_late_response_is_not_met() -> None:
    responded = apply_update(demo_ticket(), update("responded"), event_id="e1", now=seconds(6))
    assert responded["clocks"]["response"]["met"] is False


def test_second_response_keeps_the_first_stop() -> None:
    first = apply_update(demo_ticket(), update("responded"), event_id="e1", now=seconds(2))
    second = apply_update(first, update("responded"), event_id="e2", now=seconds(9))
    assert second["clocks"]["response"]["stopped_at"] == seconds(2)
    assert second["clocks"]["response"]["met"] is True


def test_resolved_stops_both_clocks() -> None:
    resolved = apply_update(demo_ticket(), update("resolved", note="Sudah diangkut"), event_id="e1",
                            now=seconds(30))
    assert resolved["status"] == "resolved"
    for clock in ("response", "resolution"):
        assert resolved["clocks"][clock]["stopped_at"] == seconds(30)
    assert resolved["clocks"]["response"]["met"] is False
    assert resolved["clocks"]["resolution"]["met"] is True
    assert resolved["next_check_at"] is None


def test_rejected_changes_status_and_records_the_reason() -> None:
    rejected = apply_update(
        demo_ticket(), update("rejected", reason="bukan Tupoksi DLH", suggested_agency="PUPR"),
        event_id="e1", now=seconds(2))
    assert rejected["status"] == "rejected"
    entry = rejected["history"][-1]
    assert entry["action"] == "rejected"
    assert entry["reason"] == "bukan Tupoksi DLH"
    assert entry["suggested_agency"] == "PUPR"


def test_update_does_not_mutate_the_input() -> None:
    ticket = demo_ticket()
    apply_update(ticket, update("resolved"), event_id="e1", now=seconds(2))
    assert ticket["status"] == "assigned"
    assert ticket["clocks"]["response"]["stopped_at"] is None
    assert ticket["applied_events"] == []
    assert len(ticket["history"]) == 1


@pytest.mark.parametrize("action", [a.value for a in UpdateAction])
def test_nothing_is_accepted_after_resolved(action: str) -> None:
    resolved = apply_update(demo_ticket(), update("resolved"), event_id="e1", now=seconds(2))
    required = {"rejected": {"reason": "x", "suggested_agency": "PUPR"},
                "reprioritised": {"priority": "high"}}
    fields = required.get(action, {})
    with pytest.raises(UpdateRefused, match="is resolved") as caught:
        apply_update(resolved, update(action, **fields), event_id="e2", now=seconds(3))
    assert action in str(caught.value)
    assert "BKL-260710-00000001" in str(caught.value)


def test_acknowledged_twice_is_refused() -> None:
    once = apply_update(demo_ticket(), update("acknowledged"), event_id="e1", now=seconds(1))
    with pytest.raises(UpdateRefused, match="is acknowledged: acknowledged not allowed"):
        apply_update(once, update("acknowledged"), event_id="e2", now=seconds(2))


def test_nothing_is_accepted_after_rejected() -> None:
    rejection = update("rejected", reason="bukan Tupoksi", suggested_agency="PUPR")
    rejected = apply_update(demo_ticket(), rejection, event_id="e1", now=seconds(1))
    with pytest.raises(UpdateRefused, match="is rejected"):
        apply_update(rejected, update("responded"), event_id="e2", now=seconds(2))


def test_needs_info_then_responded() -> None:
    asked = apply_update(demo_ticket(), update("needs_info", note="Mohon foto lokasi"), event_id="e1",
                         now=seconds(1))
    assert asked["status"] == "needs_info"
    with pytest.raises(UpdateRefused, match="is needs_info"):
        apply_update(asked, update("acknowledged"), event_id="e2", now=seconds(2))
    answered = apply_update(asked, update("responded"), event_id="e3", now=seconds(2))
    assert answered["status"] == "responded"


def test_applied_events_and_history_grow() -> None:
    ticket = demo_ticket()
    ticket = apply_update(ticket, update("acknowledged", actor="petugas-1"), event_id="e1", now=seconds(1))
    ticket = apply_update(ticket, update("responded", note="Segera"), event_id="e2", now=seconds(2))
    ticket = apply_update(ticket, update("resolved"), event_id="e3", now=seconds(3))
    assert ticket["applied_events"] == ["e1", "e2", "e3"]
    assert [h["action"] for h in ticket["history"]] == ["assigned", "acknowledged", "responded", "resolved"]
    assert [h.get("event_id") for h in ticket["history"][1:]] == ["e1", "e2", "e3"]
    assert ticket["history"][1] == {"at": seconds(1), "action": "acknowledged", "actor": "petugas-1",
                                    "event_id": "e1"}
    assert ticket["history"][2]["note"] == "Segera"
