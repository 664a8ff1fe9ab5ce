"""Dead letters and the size check, as pure functions: a letter always fits the producer's
request limit, says what it cut, and is the same letter for the same record."""

import hashlib
import json

import pytest
from pydantic import ValidationError

from shared.contracts import Complaint, EventType, Topics
from shared.kafka import Incoming, dead_letter, decode_event
from shared.settings import Settings

PRODUCER_LIMIT = 1024 * 1024  # aiokafka's default max_request_size
SETTINGS = Settings()


def record(value: bytes, key: bytes | None = b"BKL-1", offset: int = 7) -> Incoming:
    return Incoming(topic=Topics.RECEIVED, partition=1, offset=offset, key=key, value=value)


def letter_of(value: bytes, settings: Settings = SETTINGS) -> dict[str, object]:
    event = dead_letter(settings, "router", record(value), "invalid")
    data: dict[str, object] = json.loads(event.event.to_bytes())["data"]
    return data


def test_a_small_record_is_carried_whole_with_its_size_and_hash() -> None:
    value = b'{"id": "x", "data": "\xff broken"}'
    letter = letter_of(value)
    assert letter["payload"] == value.decode(errors="replace")
    assert letter["payload_truncated"] is False
    assert letter["payload_size"] == len(value)
    assert letter["payload_sha256"] == hashlib.sha256(value).hexdigest()
    assert (letter["source_topic"], letter["partition"], letter["offset"], letter["key"]) == (
        Topics.RECEIVED, 1, 7, "BKL-1")


@pytest.mark.parametrize("value", [
    b"a" * 2_000_000,                      # plain text
    b'"' * 2_000_000,                      # two bytes each once escaped in JSON
    b"\x00" * 2_000_000,                   # six bytes each (\u0000)
    b"\xff" * 2_000_000,                   # three bytes each (U+FFFD)
    "é".encode() * 1_000_000,              # never cut in half
])
def test_a_large_record_is_cut_to_fit(value: bytes) -> None:
    settings = Settings(deadletter_payload_bytes=512_000)  # the largest allowed
    event = dead_letter(settings, "router", record(value), "too large")
    encoded = event.event.to_bytes()
    assert len(encoded) < PRODUCER_LIMIT
    letter = json.loads(encoded)["data"]
    assert letter["payload_truncated"] is True
    assert 0 < len(json.dumps(letter["payload"], ensure_ascii=False).encode()) - 2 <= 512_000
    assert value.decode(errors="replace").startswith(letter["payload"])
    assert letter["payload_size"] == len(value)
    assert letter["payload_sha256"] == hashlib.sha256(value).hexdigest()


def test_the_same_record_gets_the_same_letter_id_and_another_record_another() -> None:
    first = dead_letter(SETTINGS, "router", record(b"x"), "invalid")
    again = dead_letter(SETTINGS, "router", record(b"x"), "invalid")
    other = dead_letter(SETTINGS, "router", record(b"x", offset=8), "invalid")
    assert first.event.id == again.event.id != other.event.id
    assert first.topic == Topics.DEADLETTER


def test_a_huge_key_is_cut() -> None:
    event = dead_letter(SETTINGS, "router", record(b"x", key=b"k" * 100_000), "invalid")
    assert event.event.data.key == "k" * 200


def test_an_oversized_record_is_refused_before_it_is_parsed() -> None:
    settings = Settings(max_record_bytes=2048)
    with pytest.raises(ValueError, match=r"record is 2\d{3} bytes, over the limit of 2048 bytes"):
        decode_event(record(b"{" * 2100), Complaint, EventType.COMPLAINT_RECEIVED,
                     settings=settings)
    with pytest.raises(ValueError, match=r"invalid complaint\.received"):  # parsed: under the limit
        decode_event(record(b"{" * 2000, key=None), Complaint, EventType.COMPLAINT_RECEIVED,
                     settings=settings)


def test_consumers_can_fetch_more_than_they_accept() -> None:
    with pytest.raises(ValidationError, match="consumer_fetch_bytes must exceed max_record_bytes"):
        Settings(max_record_bytes=2_000_000, consumer_fetch_bytes=1_048_576)
