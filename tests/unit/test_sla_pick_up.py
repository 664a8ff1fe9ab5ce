"""Picking up a ticket: an officer names themself as the one working on it. Nothing else of the
ticket changes; a colleague may take it over; it ends when the ticket leaves the agency; the
citizen never sees who picked it up."""

from services.sla.audit_records import changed_fields
from services.sla.domain import reassign
from services.sla.public import public_steps
from services.sla.updates import ALLOWED
from shared.contracts import UpdateAction
from shared.permissions import UPDATE_ACTIONS
from tests.unit.sla_support import POLICY, act, routed, ticket

ANDI = "dlh.andi (officer, DLH)"


def test_picking_up_names_the_officer_and_changes_no_clock_or_status() -> None:
    before = ticket()
    after = act(before, "picked_up", 5, actor=ANDI)
    assert after["assignee"] == ANDI
    assert (after["status"], after["clocks"], after["ladder"]) == \
        (before["status"], before["clocks"], before["ladder"])
    assert [(h["action"], h["actor"]) for h in after["history"]][-1] == ("picked_up", ANDI)
    assert changed_fields(before, after) == ({"assignee": None}, {"assignee": ANDI})


def test_a_colleague_takes_it_over_and_a_rejection_or_rerouting_ends_it() -> None:
    taken = act(act(ticket(), "picked_up", 5, actor=ANDI), "picked_up", 6, actor="dlh.budi (officer, DLH)")
    assert taken["assignee"] == "dlh.budi (officer, DLH)"
    rejected = act(taken, "rejected", 7, reason="Bukan tupoksi", suggested_agency="PUPR")
    assert rejected["assignee"] is None
    moved = reassign(taken, routed(agency="PUPR", assignment=2), POLICY,
                     assigned_at=taken["assigned_at"], now=taken["assigned_at"])
    assert moved is not None and moved["assignee"] is None


def test_officers_may_pick_up_any_open_ticket_and_the_citizen_never_sees_it() -> None:
    assert UpdateAction.PICKED_UP in UPDATE_ACTIONS["officer"]
    assert all(UpdateAction.PICKED_UP in ALLOWED[s]
               for s in ("assigned", "acknowledged", "responded", "needs_info"))
    assert UpdateAction.PICKED_UP not in ALLOWED["resolved"]
    history = act(ticket(), "picked_up", 5, actor=ANDI)["history"]
    assert [s.action for s in public_steps(history)] == ["assigned"]
