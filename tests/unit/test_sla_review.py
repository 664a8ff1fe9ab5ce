"""The second opinion's disputes on the SLA side (pure): a flagged decision waits for the
triage desk until it accepts it (for that assignment only) or re-routes the ticket, and the
inbox read model and its filter follow."""

from datetime import UTC, datetime

import pytest

from services.sla.inbox import inbox_entry, inbox_query
from services.sla.review import REVIEW_ACCEPTED, accept_review, accepted, awaits_review
from services.sla.updates import UpdateRefused

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
DISPUTE = {"agency": "PERKIM", "probability": 0.91, "rules_choice_probability": 0.04,
           "verdict": "disputes", "review": True, "model_version": "m1"}


def ticket(opinion: dict[str, object] | None = DISPUTE, **fields: object) -> dict[str, object]:
    return {"_id": "T-1", "version": 2, "tenant": "kota", "agency": "DLH", "status": "assigned",
            "assignment": 1, "title": None, "text": "Daun kering di taman", "location": None,
            "routing": {"rule_ids": ["dlh.sampah"], "second_opinion": opinion},
            "history": [], **fields}


def test_a_flagged_decision_awaits_review_until_the_desk_accepts_it() -> None:
    flagged = ticket()
    assert awaits_review(flagged) and inbox_entry(flagged)["review"] is True  # type: ignore[index]
    kept = accept_review(flagged, actor="meja.triase (triage)", now=NOW)
    assert not awaits_review(kept) and inbox_entry(kept)["review"] is False  # type: ignore[index]
    assert kept["agency"] == "DLH" and kept["review_settled"] == 1
    assert accepted(kept) and not accepted(flagged)  # a repeat is told apart from "nothing to do"
    step = kept["history"][-1]
    assert (step["action"], step["actor"], step["agency"]) == (REVIEW_ACCEPTED, "meja.triase (triage)", "DLH")
    assert "PERKIM" in step["note"] and flagged["history"] == []  # the input is left as it was
    with pytest.raises(UpdateRefused, match="no disputed routing decision"):
        accept_review(kept, actor="meja.triase (triage)", now=NOW)


def test_only_a_flag_of_the_current_assignment_counts() -> None:
    assert not awaits_review(ticket(opinion=None))
    assert not awaits_review(ticket(opinion={**DISPUTE, "verdict": "differs", "review": False}))
    assert not awaits_review(ticket(routing={"rule_ids": []}))
    # accepted for assignment 1, re-routed by the router and flagged again: review again
    assert awaits_review(ticket(assignment=2, review_settled=1))
    assert not accepted(ticket(assignment=2, review_settled=1)) and not accepted(ticket(opinion=None))
    with pytest.raises(UpdateRefused):
        accept_review(ticket(opinion=None), actor="x", now=NOW)


def test_the_review_filter_asks_the_read_model_for_flagged_entries() -> None:
    query = inbox_query(tenant="kota", agency=None, status=None, due=None, category=None,
                        kelurahan=None, q=None, now=NOW, review=True)
    assert query == {"tenant": "kota", "review": True}
    plain = inbox_query(tenant="kota", agency="TRIAGE", status=None, due=None, category=None,
                        kelurahan=None, q=None, now=NOW)
    assert "review" not in plain
