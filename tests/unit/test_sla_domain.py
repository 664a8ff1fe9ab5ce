"""SLA decisions on a ticket: the two clocks, what each update does, pauses, re-routing."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.sla.domain import (
    Ticket,
    UpdateRefused,
    as_routed,
    manual_request,
    reassign,
    rejection_request,
)
from services.sla.policy import load_policy
from shared.contracts import Priority, Reporter, UpdateAction
from tests.unit.sla_support import (
    ASSIGNED,
    POLICY,
    SUBMITTED,
    TICKET_ID,
    act,
    at,
    routed,
    step,
    ticket,
    update,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = load_policy(ROOT / "services" / "sla" / "policies" / "default.yaml")


# --- new tickets: two clocks ---------------------------------------------------------------

def test_new_ticket_carries_the_report_fields() -> None:
    new = ticket()
    assert (new["_id"], new["status"], new["agency"], new["assignment"]) == (TICKET_ID, "assigned", "DLH", 1)
    assert (new["category"], new["channel"], new["priority"]) == ("sampah", "web", "normal")
    assert (new["submitted_at"], new["assigned_at"]) == (SUBMITTED, ASSIGNED)
    for field in ("first_response_at", "resolved_at", "response_working_seconds",
                  "resolution_working_seconds", "response_met", "resolution_met"):
        assert new[field] is None, field
    assert new["assignments"] == [{"agency": "DLH", "assignment": 1, "assigned_at": ASSIGNED,
                                   "ended_at": None, "outcome": None, "reason": None}]
    assert (new["rejected_by"], new["pauses"]) == ([], [])
    assert [(h["action"], h["agency"], h["actor"]) for h in new["history"]] == [("assigned", "DLH", "router")]
    assert new["sla"] == {"target": "standard", "calendar": "always"}


def test_citizen_clock_runs_from_submission_agency_clock_from_assignment() -> None:
    new = ticket()
    assert new["response_due_at"] == at(100) == new["citizen_clocks"]["response"]["due_at"]
    assert new["resolution_due_at"] == at(500)
    assert new["clocks"]["response"]["due_at"] == at(110)
    assert new["clocks"]["resolution"]["due_at"] == at(510)
    assert new["clocks"]["update"] is None  # starts with the first reply
    assert new["clocks"]["ceiling"]["due_at"] == at(1000) == new["deadlines"]["legal_ceiling"]


def test_next_check_is_the_first_ladder_trigger() -> None:
    assert ticket()["next_check_at"] == at(10 + 50)  # 50% of the agency's 100 s


def test_urgent_ticket_takes_the_urgent_target() -> None:
    urgent = ticket(priority=Priority.URGENT)
    assert urgent["sla"]["target"] == "fast"
    assert urgent["response_due_at"] == at(10)


def test_default_policy_working_days_skip_the_weekend() -> None:
    friday = datetime(2026, 7, 10, 3, 0, tzinfo=UTC)
    new = ticket(DEFAULT, submitted_at=friday)
    assert new["citizen_clocks"]["response"]["calendar"] == "working_hours"
    due = new["response_due_at"]
    assert due.tzinfo is UTC
    assert due.astimezone(ZoneInfo("Asia/Jakarta")).weekday() < 5
    assert due - friday > timedelta(days=5)  # five working days from a Friday span a weekend
    assert new["clocks"]["ceiling"]["due_at"] == friday + timedelta(days=60)


def test_default_policy_urgent_runs_24x7_in_hours() -> None:
    saturday = datetime(2026, 7, 11, 3, tzinfo=UTC)
    urgent = ticket(DEFAULT, priority=Priority.URGENT, submitted_at=saturday)
    assert urgent["sla"] == {"target": "urgent", "calendar": "always"}
    assert urgent["response_due_at"] == saturday + timedelta(hours=4)


# --- what counts as a response ---------------------------------------------------------------

def test_acknowledged_is_not_a_response() -> None:
    acknowledged = act(ticket(), "acknowledged", 20, actor="petugas")
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["first_response_at"] is None
    assert acknowledged["clocks"]["response"]["stopped_at"] is None
    assert acknowledged["citizen_clocks"]["response"]["stopped_at"] is None
    assert acknowledged["next_check_at"] == at(60)


def test_an_internal_note_is_not_a_response() -> None:
    noted = act(ticket(), "note", 20, note="cek lokasi besok")
    assert noted["status"] == "assigned"
    assert noted["first_response_at"] is None
    assert noted["history"][-1]["note"] == "cek lokasi besok"


def test_responded_stops_both_response_clocks() -> None:
    responded = act(ticket(), "responded", 40, note="Akan diangkut besok")
    assert (responded["status"], responded["first_response_at"]) == ("responded", at(40))
    assert responded["response_working_seconds"] == 40.0  # the citizen's clock: from submission
    assert responded["response_met"] is True
    assert responded["clocks"]["response"]["working_seconds"] == 30.0  # the agency's
    assert responded["resolution_met"] is None


def test_late_response_is_not_met() -> None:
    responded = act(ticket(), "responded", 150)
    assert responded["response_met"] is False
    assert responded["response_working_seconds"] == 150.0


def test_first_reply_starts_the_update_clock_and_each_reply_restarts_it() -> None:
    first = act(ticket(), "responded", 40)
    assert first["clocks"]["update"]["started_at"] == at(40)
    assert first["clocks"]["update"]["due_at"] == at(240)
    second = act(first, "responded", 90)
    assert second["first_response_at"] == at(40)
    assert second["clocks"]["update"]["due_at"] == at(290)
    assert step(second, "update", 1)["next_at"] == at(290)


def test_resolved_stops_every_clock() -> None:
    resolved = act(ticket(), "resolved", 300, note="Sudah diangkut")
    assert (resolved["status"], resolved["resolved_at"]) == ("resolved", at(300))
    assert resolved["first_response_at"] == at(300)  # the resolution is a reply the citizen sees
    assert (resolved["response_met"], resolved["resolution_met"]) == (False, True)
    assert resolved["resolution_working_seconds"] == 300.0
    assert resolved["next_check_at"] is None
    assert all(c["stopped_at"] == at(300) for c in resolved["clocks"].values() if c is not None)


def test_update_does_not_mutate_the_input() -> None:
    original = ticket()
    act(original, "resolved", 2)
    assert original["status"] == "assigned"
    assert original["citizen_clocks"]["response"]["stopped_at"] is None
    assert (original["applied_events"], len(original["history"])) == ([], 1)


@pytest.mark.parametrize("action", [a.value for a in UpdateAction])
def test_nothing_is_accepted_after_resolved(action: str) -> None:
    resolved = act(ticket(), "resolved", 2)
    required: dict[str, dict[str, Any]] = {"rejected": {"reason": "x", "suggested_agency": "PUPR"},
                                           "reprioritised": {"priority": "high"}}
    fields = required.get(action, {})
    with pytest.raises(UpdateRefused, match="is resolved") as caught:
        act(resolved, action, 3, **fields)
    assert action in str(caught.value)
    assert TICKET_ID in str(caught.value)


def test_acknowledged_twice_is_refused() -> None:
    once = act(ticket(), "acknowledged", 1)
    with pytest.raises(UpdateRefused, match="is acknowledged: acknowledged not allowed"):
        act(once, "acknowledged", 2)


def test_history_records_each_action_with_its_event_id() -> None:
    current = act(ticket(), "acknowledged", 1, actor="petugas-1")
    current = act(current, "responded", 2, note="Segera")
    assert current["applied_events"] == ["e1", "e2"]
    assert [h["action"] for h in current["history"]] == ["assigned", "acknowledged", "responded"]
    assert current["history"][1] == {"at": at(1), "action": "acknowledged", "actor": "petugas-1",
                                     "agency": "DLH", "note": None, "reason": None, "event_id": "e1"}


# --- pauses ----------------------------------------------------------------------------------

def test_needs_info_pauses_and_citizen_replied_resumes_with_shifted_dues() -> None:
    paused = act(ticket(), "needs_info", 20, note="Mohon foto lokasi")
    assert paused["status"] == "needs_info"
    assert paused["next_check_at"] is None  # nothing fires while the citizen owes an answer
    assert paused["pauses"][0]["started_at"] == at(20)
    resumed = act(paused, "citizen_replied", 50)
    assert resumed["status"] == "assigned"
    assert resumed["pauses"] == [{
        "started_at": at(20), "ended_at": at(50), "working_seconds": 30.0, "quick_repause": False,
        "status_before": "assigned", "agency": "DLH"}]
    assert resumed["response_due_at"] == at(130)
    assert resumed["clocks"]["response"]["due_at"] == at(140)
    assert resumed["next_check_at"] == at(90)  # 50 working seconds after assignment, plus 30
    assert act(resumed, "responded", 100)["response_working_seconds"] == 70.0


def test_the_pause_limit_refuses_clearly() -> None:
    current = ticket()
    for n in range(2):
        current = act(current, "needs_info", 10 + 100 * n)
        current = act(current, "citizen_replied", 20 + 100 * n)
    with pytest.raises(UpdateRefused, match=r"paused 2 times \(policy pauses.max_per_ticket is 2\)"):
        act(current, "needs_info", 300)


def test_pausing_right_after_the_citizen_replied_is_flagged() -> None:
    current = act(act(ticket(), "needs_info", 10), "citizen_replied", 20)
    quick = act(current, "needs_info", 50)
    assert quick["pauses"][-1]["quick_repause"] is True
    slow = act(current, "needs_info", 200)
    assert slow["pauses"][-1]["quick_repause"] is False


def test_citizen_replied_without_a_question_is_refused() -> None:
    with pytest.raises(UpdateRefused, match="citizen_replied not allowed"):
        act(ticket(), "citizen_replied", 10)


def test_a_reply_while_paused_counts_and_the_status_follows_the_citizen() -> None:
    paused = act(ticket(), "needs_info", 20)
    replied = act(paused, "responded", 30)
    assert (replied["status"], replied["first_response_at"]) == ("needs_info", at(30))
    assert act(replied, "citizen_replied", 40)["status"] == "responded"


def test_pause_time_survives_a_change_of_priority() -> None:
    current = act(act(ticket(), "needs_info", 5), "citizen_replied", 25)
    urgent = act(current, "reprioritised", 30, priority="urgent")
    assert urgent["priority"] == "urgent"
    assert urgent["sla"]["target"] == "fast"
    assert urgent["response_due_at"] == at(10 + 20)  # 10 s target, 20 s paused
    assert urgent["clocks"]["response"]["due_at"] == at(10 + 10 + 15)  # 15 s of it after assignment
    assert urgent["pauses"] == current["pauses"]


def test_pause_time_survives_rerouting() -> None:
    current = act(act(ticket(), "needs_info", 20), "citizen_replied", 40)
    moved = reassign(current, routed("PUPR", assignment=2), POLICY, assigned_at=at(50), now=at(50))
    assert moved is not None
    assert moved["pauses"] == current["pauses"]
    assert moved["response_due_at"] == at(120)
    assert moved["clocks"]["response"]["due_at"] == at(150)


# --- rejection and re-routing ----------------------------------------------------------------

def rejected_ticket() -> Ticket:
    return act(ticket(), "rejected", 30, actor="kabid DLH", reason="bukan Tupoksi DLH",
               suggested_agency="PUPR")


def test_rejection_ends_the_assignment_and_stops_the_agencys_clock() -> None:
    rejected = rejected_ticket()
    assert rejected["status"] == "rejected"
    assert rejected["rejected_by"] == ["DLH"]
    assert rejected["assignments"][-1] == {"agency": "DLH", "assignment": 1, "assigned_at": ASSIGNED,
                                                "ended_at": at(30), "outcome": "rejected",
                                                "reason": "bukan Tupoksi DLH"}
    assert rejected["clocks"]["response"]["stopped_at"] == at(30)
    # No more escalations to DLH: only the triage desk's routing clock (40 s) is watched.
    assert rejected["next_check_at"] == at(70)
    assert {s["clock"] for s in rejected["ladder"] if s["next_at"] is not None} == {"routing"}
    assert rejected["citizen_clocks"]["response"]["stopped_at"] is None  # the citizen still waits
    assert rejected["history"][-1]["suggested_agency"] == "PUPR"


def test_rejection_request_carries_the_ticket_and_the_reason() -> None:
    rejected = rejected_ticket()
    request = rejection_request(rejected, update(
        "rejected", actor="kabid DLH", reason="bukan Tupoksi DLH", suggested_agency="PUPR"))
    assert (request.cause, request.reason, request.actor, request.suggested_agency) == \
        ("rejected", "bukan Tupoksi DLH", "kabid DLH", "PUPR")
    assert (request.ticket.agency, request.ticket.assignment, request.ticket.rejected_by) == \
        ("DLH", 1, ["DLH"])
    assert request.ticket.text == "Sampah menumpuk di depan pasar."


def test_nothing_but_notes_after_a_rejection() -> None:
    rejected = rejected_ticket()
    with pytest.raises(UpdateRefused, match="is rejected"):
        act(rejected, "responded", 40)
    assert act(rejected, "note", 40, note="menunggu router")["status"] == "rejected"


def test_a_newer_assignment_reassigns_and_restarts_the_agency_clock() -> None:
    rejected = rejected_ticket()
    moved = reassign(rejected, routed("PUPR", assignment=2, previous_agency="DLH", rejected_by=["DLH"]),
                     POLICY, assigned_at=at(40), now=at(41))
    assert moved is not None
    assert (moved["agency"], moved["assignment"], moved["status"], moved["assigned_at"]) == \
        ("PUPR", 2, "assigned", at(40))
    assert [(a["agency"], a["outcome"]) for a in moved["assignments"]] == \
        [("DLH", "rejected"), ("PUPR", None)]
    assert moved["clocks"]["response"]["due_at"] == at(140)
    assert moved["response_due_at"] == at(100)  # the citizen's clock is never reset
    assert moved["next_check_at"] == at(90)
    assert all(s["fired"] == 0 for s in moved["ladder"])
    entry = moved["history"][-1]
    assert (entry["action"], entry["agency"], entry["previous_agency"]) == ("rerouted", "PUPR", "DLH")


def test_rerouting_without_a_rejection_ends_the_assignment_as_rerouted_or_manual() -> None:
    moved = reassign(ticket(), routed("PUPR", assignment=2), POLICY, assigned_at=at(40), now=at(40))
    assert moved is not None
    assert moved["assignments"][0]["outcome"] == "rerouted"
    by_hand = reassign(ticket(), routed("PUPR", assignment=2, assigned_by="meja triase"), POLICY,
                       assigned_at=at(40), now=at(40))
    assert by_hand is not None
    assert by_hand["assignments"][0]["outcome"] == "manual"
    assert by_hand["history"][-1]["actor"] == "meja triase"


def test_an_equal_or_older_assignment_is_a_duplicate() -> None:
    assert reassign(ticket(), routed("PUPR", assignment=1), POLICY, assigned_at=at(40),
                    now=at(40)) is None
    moved = reassign(ticket(), routed("PUPR", assignment=3), POLICY, assigned_at=at(40), now=at(40))
    assert moved is not None
    assert reassign(moved, routed("DLH", assignment=2), POLICY, assigned_at=at(50), now=at(50)) is None


def test_a_resolved_ticket_is_not_reassigned() -> None:
    resolved = act(ticket(), "resolved", 20)
    assert reassign(resolved, routed("PUPR", assignment=2), POLICY, assigned_at=at(40), now=at(40)) is None


def test_ticket_as_routed_round_trips() -> None:
    assert as_routed(ticket()) == routed()


def test_the_reporter_travels_with_a_rerouted_ticket() -> None:
    # The next agency must be able to answer the citizen (FixMyStreet: re-deliver, not lose).
    reporter = Reporter(name="Budi", phone="+6281234567890")
    request = rejection_request(ticket(reporter=reporter),
                                update("rejected", reason="bukan Tupoksi", suggested_agency="PUPR"))
    assert request.ticket.reporter == reporter


def test_an_anonymous_ticket_has_no_reporter_to_pass_on() -> None:
    assert as_routed(ticket(anonymous=True)).reporter is None


def test_manual_request_is_refused_when_resolved() -> None:
    request = manual_request(ticket(), agency="PUPR", actor="meja", reason="jalan rusak")
    assert (request.cause, request.agency, request.actor) == ("manual", "PUPR", "meja")
    with pytest.raises(UpdateRefused, match="resolved"):
        manual_request(act(ticket(), "resolved", 5), agency="PUPR", actor="meja", reason="x")


def test_a_stopped_clock_keeps_its_due_instant() -> None:
    responded = act(ticket(), "responded", 40)
    later = act(act(responded, "needs_info", 50), "citizen_replied", 80)
    assert later["response_due_at"] == at(100)  # a pause after the reply changes nothing
    assert later["resolution_due_at"] == at(530)  # but shifts the running resolution clock
