"""What of a ticket the SLA service announces for the public view (pure projection)."""

from datetime import UTC, datetime

from services.sla.public import public_state, public_steps
from shared.contracts import CHANGED_HISTORY_MAX

AT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def _entry(action: str, **fields: object) -> dict[str, object]:
    return {"at": AT, "action": action, "agency": "DLH", "actor": "dlh.andi (officer, DLH)",
            "note": None, "reason": None, **fields}


def test_steps_keep_the_citizens_messages_and_drop_actors_and_internal_notes() -> None:
    history = [_entry("assigned", actor="router", note="Tupoksi DLH: sampah"),
               _entry("note", note="cek dulu, warga ini sering lapor"),
               _entry("rejected", reason="bukan kewenangan kami"),
               _entry("needs_info", note="Mohon kirim foto"),
               _entry("citizen_replied", actor="citizen", note="Ini fotonya", event_id="r-1")]
    steps = [s.model_dump() for s in public_steps(history)]
    assert [s["action"] for s in steps] == ["assigned", "needs_info", "citizen_replied"]
    assert [s["note"] for s in steps] == [None, "Mohon kirim foto", "Ini fotonya"]
    assert "dlh.andi" not in str(steps) and "sering lapor" not in str(steps)


def test_state_lists_applied_and_refused_replies_and_keeps_the_newest_steps() -> None:
    history = [_entry("assigned")] + [
        _entry("citizen_replied", note=f"jawaban {i}", event_id=f"r-{i}")
        for i in range(CHANGED_HISTORY_MAX + 5)]
    ticket = {"_id": "T-1", "version": 7, "status": "assigned", "agency": "DLH",
              "priority": "normal", "history": history, "refused_replies": ["r-x"],
              "routing": {"rulebook_version": "v1", "rule_ids": ["dlh.sampah"]},
              "deadlines": {"response_due": AT}}
    state = public_state(ticket)
    assert state.version == 7 and state.replies_refused == ["r-x"]
    assert len(state.replies_applied) == CHANGED_HISTORY_MAX + 5
    assert len(state.history) == CHANGED_HISTORY_MAX
    assert state.history[-1].note == f"jawaban {CHANGED_HISTORY_MAX + 4}"
