"""Intake decisions: tracking numbers, idempotency keys, fingerprints, accepted complaints."""

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.intake.domain import accept, fingerprint, idempotency_key, new_ticket_id, public_history
from shared.contracts import Channel, ComplaintSubmission

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
JAKARTA = ZoneInfo("Asia/Jakarta")
TICKET_ID = re.compile(rf"^BKL-(\d{{6}})-([{CROCKFORD}]{{8}})$")


def make(**overrides: Any) -> ComplaintSubmission:
    payload: dict[str, Any] = {"channel": "web", "text": "Jalan berlubang di depan SD 5.", **overrides}
    return ComplaintSubmission.model_validate(payload)


# --- tracking numbers ----------------------------------------------------------------------

def test_ticket_id_format() -> None:
    ticket_id = new_ticket_id("BKL", datetime(2026, 11, 28, 9, 30, tzinfo=JAKARTA))
    match = TICKET_ID.match(ticket_id)
    assert match is not None, ticket_id
    assert match.group(1) == "261128"


def test_ticket_id_uses_the_date_of_the_given_local_time() -> None:
    local = datetime(2026, 11, 28, 1, 0, tzinfo=JAKARTA)  # still 27 November in UTC
    assert new_ticket_id("BKL", local, random_bits=0).split("-")[1] == "261128"
    assert new_ticket_id("BKL", local.astimezone(UTC), random_bits=0).split("-")[1] == "261127"


def test_ticket_id_is_deterministic_for_given_bits() -> None:
    now = datetime(2026, 1, 2, tzinfo=JAKARTA)
    assert new_ticket_id("BKL", now, random_bits=123456789) == \
        new_ticket_id("BKL", now, random_bits=123456789)


def test_ticket_id_code_encodes_40_bits_in_crockford_base32() -> None:
    now = datetime(2026, 1, 2, tzinfo=JAKARTA)
    assert new_ticket_id("BKL", now, random_bits=0) == "BKL-260102-00000000"
    assert new_ticket_id("BKL", now, random_bits=1) == "BKL-260102-00000001"
    assert new_ticket_id("BKL", now, random_bits=31 << 35) == "BKL-260102-Z0000000"
    assert new_ticket_id("BKL", now, random_bits=2**40 - 1) == "BKL-260102-ZZZZZZZZ"


def test_ticket_id_never_uses_ambiguous_letters() -> None:
    now = datetime(2026, 1, 2, tzinfo=JAKARTA)
    codes = "".join(new_ticket_id("X", now, random_bits=b * 0x842108421).split("-")[2] for b in range(32))
    assert set(codes) == set(CROCKFORD)
    assert not set(codes) & set("ILOU")


def test_ticket_id_differs_for_different_bits() -> None:
    now = datetime(2026, 1, 2, tzinfo=JAKARTA)
    ids = {new_ticket_id("BKL", now, random_bits=bits) for bits in (0, 1, 2, 32, 2**39, 2**40 - 1)}
    assert len(ids) == 6


def test_ticket_id_random_when_no_bits_given() -> None:
    now = datetime(2026, 1, 2, tzinfo=JAKARTA)
    ids = {new_ticket_id("BKL", now) for _ in range(20)}
    assert len(ids) == 20
    assert all(TICKET_ID.match(i) for i in ids)


def test_ticket_id_keeps_the_prefix() -> None:
    assert new_ticket_id("KOTA", datetime(2026, 1, 2), random_bits=5).startswith("KOTA-260102-")


# --- idempotency keys ---------------------------------------------------------------------

def test_external_id_wins() -> None:
    sub = make(channel="lapor", external_id="LAPOR-991")
    assert idempotency_key(sub, tenant="bengkulu", header_key="k1", event_id="e1") == \
        "ext:bengkulu:lapor:LAPOR-991"


def test_external_id_is_scoped_by_channel() -> None:
    assert idempotency_key(make(channel="sms", external_id="1"), tenant="bengkulu") != \
        idempotency_key(make(channel="whatsapp", external_id="1"), tenant="bengkulu")


def test_channel_ids_and_retry_keys_are_scoped_by_tenant() -> None:
    # The same LAPOR! report dispositioned to a city and to its province (or two tenants' apps
    # using the same retry key) are two complaints: one tenant must never get the other's
    # ticket back, nor add a tracking code to it.
    lapor = make(channel="lapor", external_id="LAPOR-991")
    assert idempotency_key(lapor, tenant="bengkulu") != idempotency_key(lapor, tenant="provinsi")
    assert idempotency_key(make(), tenant="bengkulu", header_key="k1") != \
        idempotency_key(make(), tenant="provinsi", header_key="k1")


def test_header_key_wins_over_event_id() -> None:
    assert idempotency_key(make(), tenant="bengkulu", header_key="k1", event_id="e1") == \
        "key:bengkulu:k1"


def test_event_id_is_the_last_resort() -> None:
    assert idempotency_key(make(), tenant="bengkulu", event_id="e1") == "evt:e1"


def test_no_key_at_all() -> None:
    assert idempotency_key(make(), tenant="bengkulu") is None
    assert idempotency_key(make(), tenant="bengkulu", header_key="", event_id="") is None


# --- fingerprints --------------------------------------------------------------------------

def test_fingerprint_equal_for_equal_submissions() -> None:
    a = make(title="Jalan", location={"kelurahan": "Pasar Baru"}, reporter={"phone": "0812-3456-7890"})
    b = make(title="Jalan", location={"kelurahan": "Pasar Baru"}, reporter={"phone": "+6281234567890"})
    assert fingerprint(a) == fingerprint(b)
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint(a))


def test_fingerprint_ignores_surrounding_whitespace() -> None:
    assert fingerprint(make(text="  Jalan berlubang di depan SD 5.  ")) == fingerprint(make())


def test_fingerprint_differs_for_different_content() -> None:
    base = fingerprint(make())
    assert fingerprint(make(text="Jalan berlubang di depan SD 6.")) != base
    assert fingerprint(make(anonymous=True)) != base
    assert fingerprint(make(channel="sms")) != base
    assert fingerprint(make(attachments=["https://example.com/a.jpg"])) != base


# --- accepted complaints --------------------------------------------------------------------

def test_accept_copies_every_field() -> None:
    sub = make(channel="whatsapp", title="Jalan rusak", external_id="wa-77",
               location={"kecamatan": "Ratu Samban", "lat": -3.79, "lon": 102.26},
               reporter={"name": "Budi", "email": "budi@gmail.com"}, anonymous=True, confidential=True)
    now = datetime(2026, 7, 10, 3, tzinfo=UTC)
    complaint = accept(sub, ticket_id="BKL-260710-00000001", now=now)
    assert complaint.ticket_id == "BKL-260710-00000001"
    assert complaint.channel is Channel.WHATSAPP
    assert complaint.text == sub.text
    assert complaint.title == "Jalan rusak"
    assert complaint.external_id == "wa-77"
    assert complaint.location == sub.location
    assert complaint.reporter == sub.reporter
    assert complaint.anonymous and complaint.confidential
    assert complaint.submitted_at == now
    assert complaint.attachments == []


def test_accept_stringifies_attachment_urls() -> None:
    urls = ["https://cdn.bengkulukota.go.id/foto/1.jpg", "http://example.com/a/b.png?x=1"]
    complaint = accept(make(attachments=urls), ticket_id="T", now=datetime(2026, 7, 10, tzinfo=UTC))
    assert complaint.attachments == urls
    assert all(type(a) is str for a in complaint.attachments)


def test_public_history_keeps_the_citizens_steps_and_drops_internal_ones() -> None:
    at = datetime(2026, 11, 28, 3, tzinfo=UTC)
    history = [
        {"at": at, "action": "assigned", "agency": "DLH", "actor": "router", "note": "rules of DLH"},
        {"at": at, "action": "note", "agency": "DLH", "actor": "staf.andi", "note": "pelapor cerewet"},
        {"at": at, "action": "rejected", "agency": "DLH", "actor": "kabid", "reason": "bukan kami"},
        {"at": at, "action": "rerouted", "agency": "PUPR", "actor": "admin.rina",
         "note": "DLH rejected it (bukan kami); assigned by hand by admin.rina"},
        {"at": at, "action": "responded", "agency": "PUPR", "actor": "staf.budi",
         "note": "Saluran dibersihkan Kamis"},
    ]
    assert public_history(history) == [
        {"at": at, "action": "assigned", "agency": "DLH", "note": None},
        {"at": at, "action": "rerouted", "agency": "PUPR", "note": None},
        {"at": at, "action": "responded", "agency": "PUPR", "note": "Saluran dibersihkan Kamis"},
    ]
