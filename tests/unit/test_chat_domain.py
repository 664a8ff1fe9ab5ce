"""The chat channels' pure decisions: signatures, reading the providers' payloads, what each
message does to a conversation, and the texts sent back."""

import json
from datetime import UTC, datetime

from services.chat.domain import Inbound, citizen_messages, decide, joined, masked, new_draft
from services.chat.payloads import (
    same_secret,
    signature_problem,
    sms_message,
    whatsapp_messages,
    whatsapp_signature,
)
from shared.contracts import Envelope, EventType, PublicStep, TicketChanged

BODY = b'{"object":"whatsapp_business_account"}'


def test_the_signature_is_the_hmac_of_the_raw_body_with_the_app_secret() -> None:
    good = whatsapp_signature(BODY, "secret")
    assert signature_problem(BODY, good, "secret") is None
    assert signature_problem(BODY, good.upper().replace("SHA256", "sha256"), "secret") is None
    assert signature_problem(BODY + b" ", good, "secret") == "X-Hub-Signature-256 does not match the body"
    assert signature_problem(BODY, good, "other") is not None
    assert signature_problem(BODY, None, "secret") == "missing X-Hub-Signature-256"
    assert signature_problem(BODY, "md5=abc", "secret") is not None


def test_an_unset_secret_matches_nothing() -> None:
    assert not same_secret("", "") and not same_secret(None, "x") and same_secret("x", "x")


def _payload(*messages: object, statuses: int = 0) -> dict[str, object]:
    value: dict[str, object] = {"messages": list(messages),
                                "statuses": [{"id": f"s{i}"} for i in range(statuses)]}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]}


def test_text_image_location_and_unknown_messages_are_read_and_bad_parts_skipped() -> None:
    parsed = whatsapp_messages(_payload(
        {"from": "628123", "id": "m1", "type": "text", "text": {"body": "Jalan rusak"}},
        {"from": "628123", "id": "m2", "type": "image", "image": {"id": "media-1", "caption": "ini"}},
        {"from": "628123", "id": "m3", "type": "location",
         "location": {"latitude": -3.8, "longitude": 102.3, "name": "Pasar", "address": "Jl. A"}},
        {"from": "628123", "id": "m4", "type": "sticker", "sticker": {"id": "x"}},
        {"from": "not-a-number", "id": "m5", "type": "text", "text": {"body": "x"}},
        {"from": "628123", "id": "m6", "type": "location", "location": {"latitude": 200}},
        "garbage", statuses=2))
    kinds = [(m.message_id, m.kind) for m in parsed.messages]
    assert kinds == [("m1", "text"), ("m2", "image"), ("m3", "location"), ("m4", "unknown")]
    assert parsed.messages[1].media_id == "media-1" and parsed.messages[1].text == "ini"
    assert parsed.messages[2].address == "Pasar, Jl. A" and parsed.messages[2].lat == -3.8
    assert parsed.messages[3].raw_type == "sticker"
    assert [p.split(":")[0] for p in parsed.problems] == [
        f"entry[0].changes[0].value.messages[{i}]" for i in (4, 5, 6)]
    assert "not-a-number" not in json.dumps(parsed.problems), "problems never quote a number"
    assert parsed.statuses == 2


def test_a_payload_of_another_object_is_a_problem_not_a_crash() -> None:
    payload: object
    for payload in (None, [], {"object": "page"}, {"object": "whatsapp_business_account",
                                                    "entry": [{"changes": [{"value": 3}]}]}):
        parsed = whatsapp_messages(payload)
        assert parsed.messages == [] and parsed.problems


def test_an_sms_needs_from_text_and_id() -> None:
    ok = sms_message({"from": "+6281234567890", "text": "Lampu jalan mati", "id": 17})
    assert isinstance(ok, Inbound) and ok.message_id == "17" and ok.channel == "sms"
    assert sms_message({"from": "+62812", "text": "x"}) == "id: required, at most 128 characters"
    assert str(sms_message({"from": "abc", "text": "x", "id": "1"})).startswith("from:")
    assert str(sms_message({"from": "+6281234567", "text": " ", "id": "1"})).startswith("text:")


def _text(message_id: str, text: str, kind: str = "text") -> Inbound:
    return Inbound("whatsapp", message_id, "628123", kind, text=text)  # type: ignore[arg-type]


def test_what_a_message_does_to_the_conversation() -> None:
    words = ["kirim"]
    hello = _text("m1", "Jalan rusak")
    assert decide(hello, draft_open=False, waiting_ticket=None, done_words=words).step == "open"
    assert decide(hello, draft_open=True, waiting_ticket="T1", done_words=words).step == "join"
    assert decide(hello, draft_open=False, waiting_ticket="T1", done_words=words).step == "answer"
    done = decide(_text("m2", " Kirim! "), draft_open=False, waiting_ticket=None, done_words=words)
    assert done.step == "reply" and done.reply and "Belum ada pengaduan" in done.reply
    odd = decide(_text("m3", "", "unknown"), draft_open=True, waiting_ticket=None, done_words=words)
    assert odd.step == "reply" and odd.reply and "teks, foto dan lokasi" in odd.reply


def test_a_draft_takes_each_message_once_and_a_done_word_makes_it_due_now() -> None:
    draft = new_draft(_text("m1", "Jalan rusak"), 100.0, 600.0)
    assert draft["_id"] == "whatsapp:m1" and draft["due_epoch"] == 700.0
    photo = Inbound("whatsapp", "m2", "628123", "image", media_id="media-1")
    draft = joined(draft, photo, 110.0, done=False)
    assert joined(draft, photo, 120.0, done=False) == draft
    sent = joined(draft, _text("m3", "kirim"), 130.0, done=True)
    assert sent["texts"] == ["Jalan rusak"] and sent["photos"] == ["media-1"]
    assert sent["due_epoch"] == 130.0 and sent["message_ids"] == ["m1", "m2", "m3"]


def test_the_agencys_messages_for_the_citizen_have_ids_that_repeat() -> None:
    at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    history = [PublicStep(at=at, action="assigned", agency="DLH"),
               PublicStep(at=at, action="needs_info", note="Di mana tepatnya?"),
               PublicStep(at=at, action="responded", note=None)]
    event = Envelope[TicketChanged](id="e1", type=EventType.TICKET_CHANGED, tenant="t",
                                    ticket_id="BKL-1", data=TicketChanged(
                                        version=3, status="needs_info", agency="DLH",
                                        history=history))
    [question] = citizen_messages(event)
    assert question.outgoing_id == f"reply:BKL-1:needs_info:{at.isoformat()}"
    assert "Di mana tepatnya?" in question.text and "Balas pesan ini" in question.text
    assert citizen_messages(event) == [question]


def test_a_number_is_masked_to_its_last_three_digits() -> None:
    assert masked("+6281234567890") == "***890" and masked("1") == "***"
