"""Event contracts: what channels may submit, what agencies may see, how envelopes travel."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.router.domain import mask_contacts
from shared.contracts import (
    ACTOR_MAX,
    ATTACHMENTS_MAX,
    NOTE_MAX,
    REASON_MAX,
    TEXT_MAX,
    TITLE_MAX,
    AgencyTicket,
    Channel,
    Complaint,
    ComplaintSubmission,
    Envelope,
    EventType,
    Priority,
    Reporter,
    RerouteRequest,
    TicketRouted,
    TicketUpdate,
    UpdateAction,
    derived_event_id,
    describe_errors,
    envelope,
)

TEXT = "Sampah menumpuk di depan pasar sejak seminggu."


def submission(**overrides: Any) -> dict[str, Any]:
    return {"channel": "web", "text": TEXT, **overrides}


def error_fields(error: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in error.errors()}


def invalid(payload: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        ComplaintSubmission.model_validate(payload)
    return caught.value


# --- phone numbers -----------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["0812-3456-7890", "6281234567890", "+6281234567890",
                                 "081234567890", " 0812 3456 7890 "])
def test_phone_is_normalised_to_e164(raw: str) -> None:
    parsed = ComplaintSubmission.model_validate(submission(reporter={"phone": raw}))
    assert parsed.reporter is not None
    assert parsed.reporter.phone == "+6281234567890"


@pytest.mark.parametrize("raw", ["abc", "12345", "0812"])
def test_garbage_phone_fails_naming_the_field(raw: str) -> None:
    error = invalid(submission(reporter={"phone": raw}))
    assert error_fields(error) == {"reporter.phone"}
    assert "reporter.phone" in describe_errors(error.errors())


def test_phone_is_optional() -> None:
    parsed = ComplaintSubmission.model_validate(submission(reporter={"name": "Budi"}))
    assert parsed.reporter == Reporter(name="Budi")
    assert parsed.reporter is not None and parsed.reporter.phone is None


# --- e-mail ------------------------------------------------------------------------------

def test_valid_email_is_accepted() -> None:
    parsed = ComplaintSubmission.model_validate(submission(reporter={"email": "budi@gmail.com"}))
    assert parsed.reporter is not None
    assert parsed.reporter.email == "budi@gmail.com"


@pytest.mark.parametrize("raw", ["budi", "budi@", "@gmail.com", "budi at gmail.com"])
def test_malformed_email_fails_naming_the_field(raw: str) -> None:
    error = invalid(submission(reporter={"email": raw}))
    assert error_fields(error) == {"reporter.email"}


# --- location ----------------------------------------------------------------------------

def test_location_with_coordinates_pair_is_accepted() -> None:
    parsed = ComplaintSubmission.model_validate(submission(location={"lat": -3.79, "lon": 102.26}))
    assert parsed.location is not None
    assert (parsed.location.lat, parsed.location.lon) == (-3.79, 102.26)


def test_location_with_only_a_kelurahan_is_accepted() -> None:
    parsed = ComplaintSubmission.model_validate(submission(location={"kelurahan": "Pasar Baru"}))
    assert parsed.location is not None
    assert parsed.location.kelurahan == "Pasar Baru"


@pytest.mark.parametrize("coordinates", [{"lat": -3.79}, {"lon": 102.26}])
def test_latitude_without_longitude_fails(coordinates: dict[str, float]) -> None:
    error = invalid(submission(location=coordinates))
    assert error_fields(error) == {"location"}
    assert "lat and lon must be given together" in describe_errors(error.errors())


def test_empty_location_fails() -> None:
    error = invalid(submission(location={}))
    assert error_fields(error) == {"location"}
    assert "at least one of" in describe_errors(error.errors())


def test_location_with_only_blank_strings_fails() -> None:
    error = invalid(submission(location={"address": "   "}))
    assert error_fields(error) == {"location"}


def test_latitude_out_of_range_fails() -> None:
    error = invalid(submission(location={"lat": 91.0, "lon": 0.0}))
    assert error_fields(error) == {"location.lat"}


# --- text --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["terlalu", "x" * 9, "   pendek    ", "x" * 4001])
def test_text_length_is_bounded(text: str) -> None:
    error = invalid(submission(text=text))
    assert error_fields(error) == {"text"}
    assert describe_errors(error.errors()).startswith("text: ")


@pytest.mark.parametrize("text", ["x" * 10, "x" * 4000])
def test_text_length_limits_are_inclusive(text: str) -> None:
    assert ComplaintSubmission.model_validate(submission(text=text)).text == text


def test_missing_text_fails() -> None:
    payload = submission()
    del payload["text"]
    assert error_fields(invalid(payload)) == {"text"}


# --- unknown fields, attachments ------------------------------------------------------------

def test_unknown_top_level_field_fails() -> None:
    error = invalid(submission(titel="Sampah"))
    assert error_fields(error) == {"titel"}
    assert error.errors()[0]["type"] == "extra_forbidden"


def test_unknown_nested_field_fails() -> None:
    error = invalid(submission(reporter={"nama": "Budi"}))
    assert error_fields(error) == {"reporter.nama"}


def test_unknown_channel_fails() -> None:
    assert error_fields(invalid(submission(channel="telegram"))) == {"channel"}


def test_attachments_accept_urls() -> None:
    parsed = ComplaintSubmission.model_validate(
        submission(attachments=["https://cdn.bengkulukota.go.id/foto/1.jpg"]))
    assert [str(url) for url in parsed.attachments] == ["https://cdn.bengkulukota.go.id/foto/1.jpg"]


@pytest.mark.parametrize("value", ["foto.jpg", "not a url", "ftp://example.com/a.jpg"])
def test_attachments_must_be_urls(value: str) -> None:
    error = invalid(submission(attachments=["https://example.com/ok.jpg", value]))
    assert error_fields(error) == {"attachments.1"}


def test_too_many_attachments_fail() -> None:
    urls = [f"https://example.com/{i}.jpg" for i in range(11)]
    assert error_fields(invalid(submission(attachments=urls))) == {"attachments"}


# --- agency tickets never carry a hidden identity --------------------------------------------

def agency_ticket(**overrides: Any) -> dict[str, Any]:
    return {
        "agency": "DLH", "agency_name": "Dinas Lingkungan Hidup", "authority": "kota",
        "priority": "normal", "routing": {"rulebook_version": "v1"}, "channel": "web",
        "text": TEXT, "submitted_at": "2026-07-10T03:00:00Z", **overrides,
    }


REPORTER = {"name": "Budi", "phone": "0812-3456-7890"}


@pytest.mark.parametrize("flags", [{"anonymous": True}, {"confidential": True},
                                   {"anonymous": True, "confidential": True}])
def test_agency_ticket_refuses_reporter_when_identity_hidden(flags: dict[str, bool]) -> None:
    with pytest.raises(ValidationError, match="cannot carry its reporter"):
        AgencyTicket.model_validate(agency_ticket(reporter=REPORTER, **flags))


@pytest.mark.parametrize("flags", [{"anonymous": True}, {"confidential": True}])
def test_agency_ticket_without_reporter_is_fine_when_identity_hidden(flags: dict[str, bool]) -> None:
    ticket = AgencyTicket.model_validate(agency_ticket(**flags))
    assert ticket.reporter is None


def test_agency_ticket_carries_reporter_when_not_hidden() -> None:
    ticket = AgencyTicket.model_validate(agency_ticket(reporter=REPORTER))
    assert ticket.reporter is not None
    assert ticket.reporter.phone == "+6281234567890"
    assert ticket.priority is Priority.NORMAL


def test_complaint_identity_hidden_property() -> None:
    now = datetime(2026, 7, 10, 3, tzinfo=UTC)
    plain = Complaint(ticket_id="T", channel=Channel.WEB, text=TEXT, submitted_at=now)
    assert not plain.identity_hidden
    assert plain.model_copy(update={"anonymous": True}).identity_hidden
    assert plain.model_copy(update={"confidential": True}).identity_hidden


# --- updates -------------------------------------------------------------------------------

@pytest.mark.parametrize("reason", [None, "", "   "])
def test_rejection_without_reason_fails(reason: str | None) -> None:
    with pytest.raises(ValidationError, match="a rejection must give a reason and a suggested_agency"):
        TicketUpdate.model_validate({"action": "rejected", "reason": reason, "suggested_agency": "PUPR"})


def test_rejection_without_suggested_owner_fails() -> None:
    with pytest.raises(ValidationError, match="a rejection must give a reason and a suggested_agency"):
        TicketUpdate.model_validate({"action": "rejected", "reason": "bukan Tupoksi kami"})


def test_rejection_with_reason_is_accepted() -> None:
    update = TicketUpdate.model_validate(
        {"action": "rejected", "reason": "bukan Tupoksi kami", "suggested_agency": "PUPR"})
    assert update.action is UpdateAction.REJECTED
    assert update.suggested_agency == "PUPR"


def test_other_actions_need_no_reason() -> None:
    assert TicketUpdate(action=UpdateAction.RESPONDED).reason is None


def test_update_with_unknown_field_fails() -> None:
    with pytest.raises(ValidationError) as caught:
        TicketUpdate.model_validate({"action": "responded", "notes": "sudah"})
    assert error_fields(caught.value) == {"notes"}


# --- envelopes -------------------------------------------------------------------------------

def make_envelope() -> Envelope[Complaint]:
    complaint = Complaint(
        ticket_id="BKL-260710-7K3QX9AB", channel=Channel.WHATSAPP, text=TEXT, title="Sampah",
        reporter=Reporter(name="Budi", phone="0812-3456-7890"), attachments=["https://x.id/a.jpg"],
        submitted_at=datetime(2026, 7, 10, 3, tzinfo=UTC),
    )
    return envelope(complaint, type=EventType.COMPLAINT_RECEIVED, tenant="kota-bengkulu",
                    ticket_id=complaint.ticket_id, event_id=derived_event_id("BKL", "received"))


def test_envelope_json_round_trip() -> None:
    original = make_envelope()
    restored = Envelope[Complaint].model_validate_json(original.model_dump_json())
    assert restored.model_dump() == original.model_dump()
    assert isinstance(restored.data, Complaint)
    assert restored.data.submitted_at == datetime(2026, 7, 10, 3, tzinfo=UTC)
    assert restored.time.utcoffset() is not None


def test_envelope_json_has_the_documented_fields() -> None:
    original = make_envelope()
    document = json.loads(original.to_bytes())
    assert set(document) == {"id", "type", "schema_version", "time", "tenant", "ticket_id", "data"}
    assert document["type"] == "complaint.received"
    assert document["schema_version"] == 1
    assert document["ticket_id"] == "BKL-260710-7K3QX9AB"
    assert document["data"]["reporter"]["phone"] == "+6281234567890"


def test_envelope_rejects_wrong_payload_type() -> None:
    document = json.loads(make_envelope().model_dump_json())
    document["data"] = {"action": "responded"}
    with pytest.raises(ValidationError):
        Envelope[Complaint].model_validate(document)


# --- ids and errors --------------------------------------------------------------------------

def test_derived_event_id_is_stable() -> None:
    first = derived_event_id("BKL-1", "routed", "3")
    assert first == derived_event_id("BKL-1", "routed", "3")
    assert len(first) == 36 and first.count("-") == 4


@pytest.mark.parametrize("other", [("BKL-1", "routed", "4"), ("BKL-2", "routed", "3"),
                                   ("BKL-1", "routed"), ("BKL-1routed", "3"), ("BKL-1", "routed3")])
def test_derived_event_id_differs_for_different_parts(other: tuple[str, ...]) -> None:
    assert derived_event_id(*other) != derived_event_id("BKL-1", "routed", "3")


def test_describe_errors_names_dotted_path_and_problem() -> None:
    error = invalid(submission(reporter={"phone": "abc"}, text="short"))
    described = describe_errors(error.errors())
    parts = described.split("; ")
    assert len(parts) == 2
    assert any(p.startswith("reporter.phone: ") and "phone" in p.removeprefix("reporter.phone: ")
               for p in parts)
    assert any(p.startswith("text: ") for p in parts)


def test_describe_errors_indexes_list_items() -> None:
    error = invalid(submission(attachments=["nope"]))
    assert describe_errors(error.errors()).startswith("attachments.0: ")


def test_describe_errors_without_location() -> None:
    assert describe_errors([{"msg": "broken"}]) == "(message): broken"
    assert describe_errors([]) == ""


# --- length limits of consumed events ----------------------------------------------------

def test_a_received_complaint_is_held_to_the_http_limits() -> None:
    document = json.loads(make_envelope().model_dump_json())["data"]
    assert Complaint.model_validate({**document, "text": "x" * TEXT_MAX}).text == "x" * TEXT_MAX
    for field, value in [("text", "x" * (TEXT_MAX + 1)), ("title", "x" * (TITLE_MAX + 1)),
                         ("attachments", ["https://x.id/a.jpg"] * (ATTACHMENTS_MAX + 1))]:
        with pytest.raises(ValidationError) as caught:
            Complaint.model_validate({**document, field: value})
        assert error_fields(caught.value) == {field}


def test_a_megabyte_routed_ticket_is_refused_naming_the_text() -> None:
    with pytest.raises(ValidationError) as caught:
        TicketRouted.model_validate(agency_ticket(text="sampah " * 150_000))
    assert error_fields(caught.value) == {"text"}


def test_the_longest_text_still_fits_an_agency_ticket_once_contacts_are_masked() -> None:
    # The shortest address the masking takes for an e-mail (a two-letter top-level domain)
    # becomes a 21-character placeholder: the worst growth.
    text = ("a@b.co " * TEXT_MAX)[:TEXT_MAX]
    title = ("a@b.co " * TITLE_MAX)[:TITLE_MAX]
    accepted = ComplaintSubmission.model_validate(submission(text=text, title=title))
    masked = mask_contacts(accepted.text)
    assert len(masked) > 3 * TEXT_MAX
    ticket = AgencyTicket.model_validate(agency_ticket(text=masked, title=mask_contacts(title),
                                                       anonymous=True))
    assert ticket.text == masked


@pytest.mark.parametrize(("model", "document", "field"), [
    (TicketUpdate, {"action": "responded", "note": "x" * (NOTE_MAX + 1)}, "note"),
    (TicketUpdate, {"action": "rejected", "reason": "x" * (REASON_MAX + 1),
                    "suggested_agency": "DLH"}, "reason"),
    (RerouteRequest, {"ticket": agency_ticket(), "cause": "rejected",
                      "reason": "x" * (REASON_MAX + 1)}, "reason"),
    (RerouteRequest, {"ticket": agency_ticket(), "cause": "manual", "reason": "by hand",
                      "actor": "x" * (ACTOR_MAX + 1)}, "actor"),
    (RerouteRequest, {"ticket": agency_ticket(agency="DLH/../x"), "cause": "manual",
                      "reason": "by hand"}, "ticket.agency"),
    (TicketRouted, agency_ticket(rejected_by=["x" * 41]), "rejected_by.0"),
    (TicketRouted, agency_ticket(routing={"rulebook_version": "v1", "reason": "x" * 5000}),
     "routing.reason"),
])
def test_every_consumed_event_bounds_its_text(model: type[BaseModel], document: dict[str, Any],
                                              field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(document)
    assert error_fields(caught.value) == {field}


def test_an_envelope_bounds_its_ids() -> None:
    document = json.loads(make_envelope().model_dump_json())
    for field in ("id", "ticket_id", "tenant"):
        with pytest.raises(ValidationError) as caught:
            Envelope[Complaint].model_validate({**document, field: "x" * 129})
        assert error_fields(caught.value) == {field}
