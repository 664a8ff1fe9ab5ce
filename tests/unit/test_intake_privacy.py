"""Intake's privacy decisions: what leaves intake of a hidden complaint, tracking codes, and
what the public tracking view shows with and without the code."""

import re
from datetime import UTC, datetime

from services.intake.domain import (
    accept,
    hash_tracking_code,
    mask_for,
    new_tracking_code,
    public_history,
    public_routing,
    to_publish,
    tracking_code_matches,
)
from shared.contracts import ComplaintSubmission

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def complaint(**extra: object) -> ComplaintSubmission:
    return ComplaintSubmission.model_validate({
        "channel": "web", "title": "Lampu mati - Budi Santoso",
        "text": "Lampu jalan mati sebulan. Saya Budi, HP O812-3456-7890, budi[at]example.com",
        "reporter": {"name": "Budi Santoso", "phone": "081234567890"},
        "location": {"address": "depan rumah Pak Budi, RT 03/RW 05"}, **extra})


def test_a_hidden_complaint_leaves_intake_masked_and_without_its_reporter() -> None:
    accepted = accept(complaint(anonymous=True), ticket_id="BKL-1", now=NOW)
    published, withheld = to_publish(accepted)
    assert published.reporter is None
    assert published.title == "Lampu mati - [nama disembunyikan]"
    assert published.text == ("Lampu jalan mati sebulan. Saya [nama disembunyikan], HP "
                              "[nomor disembunyikan], [email disembunyikan]")
    assert published.location is not None
    assert published.location.address == "depan rumah Pak [nama disembunyikan], RT 03/RW 05"
    assert withheld is not None
    assert withheld["reporter"] == {"name": "Budi Santoso", "phone": "+6281234567890", "email": None}
    assert (withheld["text"], withheld["title"]) == (accepted.text, accepted.title)
    assert mask_for(accepted, "Budi lagi, 0813 9876 5432") == \
        "[nama disembunyikan] lagi, [nomor disembunyikan]"


def test_a_hidden_complaints_file_urls_stay_in_intake() -> None:
    """A URL's file may carry the reporter's GPS, and its path a name: agencies read intake's
    stripped copy instead."""
    url = "https://foto.example.org/budi-santoso/rumah.jpg"
    published, withheld = to_publish(accept(complaint(confidential=True, attachments=[url]),
                                            ticket_id="BKL-1", now=NOW))
    assert published.attachments == [] and withheld is not None
    assert withheld["attachments"] == [url]
    shown, _ = to_publish(accept(complaint(attachments=[url]), ticket_id="BKL-2", now=NOW))
    assert shown.attachments == [url]


def test_a_complaint_that_hides_nothing_leaves_intake_as_written() -> None:
    accepted = accept(complaint(), ticket_id="BKL-2", now=NOW)
    assert to_publish(accepted) == (accepted, None)
    assert mask_for(accepted, "Budi, 0813 9876 5432") == "Budi, 0813 9876 5432"


def test_tracking_codes_are_random_stored_as_salted_hashes_and_read_forgivingly() -> None:
    codes = {new_tracking_code() for _ in range(200)}
    assert len(codes) == 200
    code = codes.pop()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){2}", code)
    stored = [hash_tracking_code(code)]
    assert code not in stored[0] and code.replace("-", "") not in stored[0]
    assert hash_tracking_code(code) != stored[0], "each hash has its own salt"
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert tracking_code_matches(typed, stored)
    assert tracking_code_matches(code, [hash_tracking_code(codes.pop()), *stored])
    assert not tracking_code_matches(codes.pop(), stored)
    assert not tracking_code_matches(None, stored) and not tracking_code_matches("", stored)


ROUTING = {"rulebook_version": "v1", "rule_ids": ["dishub.pju"], "confidence": 0.9,
           "matched_terms": ["lampu jalan"], "candidates": [{"agency": "DISHUB", "score": 3.0}],
           "reason": "assigned by hand by Pak Joko (meja pengaduan): DLH rejected it"}


def test_the_public_routing_never_names_officers_and_quotes_the_text_only_to_the_code_holder() -> None:
    assert public_routing(ROUTING, assignment=1, with_content=False) == {
        "rulebook_version": "v1", "rule_ids": ["dishub.pju"], "confidence": 0.9}
    first = public_routing(ROUTING, assignment=1, with_content=True)
    assert first is not None and first["reason"] == ROUTING["reason"]
    rerouted = public_routing(ROUTING, assignment=2, with_content=True)
    assert rerouted is not None
    assert "reason" not in rerouted and rerouted["matched_terms"] == ["lampu jalan"]
    assert public_routing(None, assignment=1, with_content=True) is None


def test_the_agencys_messages_are_for_the_code_holder() -> None:
    history = [{"at": NOW, "action": "assigned", "agency": "DISHUB", "actor": "router", "note": "x"},
               {"at": NOW, "action": "needs_info", "agency": "DISHUB", "actor": "Pak Joko",
                "note": "Mohon foto"},
               {"at": NOW, "action": "note", "agency": "DISHUB", "note": "internal"}]
    assert [e["note"] for e in public_history(history, with_notes=True)] == [None, "Mohon foto"]
    assert [e["note"] for e in public_history(history, with_notes=False)] == [None, None]
    assert all("actor" not in e for e in public_history(history))
