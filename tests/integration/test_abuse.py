"""Abuse limits on the running services: bodies over the limit are refused before they are
read, public endpoints answer 429 with Retry-After past their rate, and bad input (invisible
text, lone surrogates, personal data in invalid fields) is a 422 that names the field and
echoes nothing back."""

import asyncio
import json

import httpx
import pytest

from services.intake.app import create_app as intake_app
from services.sla.app import create_app as sla_app
from shared.settings import Settings
from tests.integration.support import serving

pytestmark = pytest.mark.integration

COMPLAINT = {"channel": "web",
             "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"}


async def _raw_request(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request by hand (headers first, then as much body as the server takes) and
    return what the server answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        for part in body_parts:
            try:
                writer.write(part)
                await writer.drain()
            except ConnectionError:
                break  # the server answered and closed: the rest is never read
        return await asyncio.wait_for(reader.read(65536), 30)
    finally:
        writer.close()


async def test_a_body_over_the_limit_is_refused_before_it_is_read(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_body_bytes": 64 * 1024})
    async with serving(intake_app(settings), settings.intake_port):
        # 100 MB announced, 1 KB sent: the answer comes without waiting for the rest.
        announced = await _raw_request(settings.intake_port, (
            b"POST /v1/complaints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"), [b"{" + b" " * 1023])
        # Chunked, no length given: refused once the streamed bytes pass the limit.
        chunk = b" " * 16384
        chunks = [b"4000\r\n" + chunk + b"\r\n"] * 8
        streamed = await _raw_request(settings.intake_port, (
            b"POST /v1/complaints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"), [b"1\r\n{\r\n", *chunks, b"0\r\n\r\n"])
        async with httpx.AsyncClient() as http:
            fine = await http.post(f"http://127.0.0.1:{settings.intake_port}/v1/complaints",
                                   json={**COMPLAINT, "text": COMPLAINT["text"] + " ." * 1000})
    assert announced.startswith(b"HTTP/1.1 413"), announced[:200]
    assert streamed.startswith(b"HTTP/1.1 413"), streamed[:200]
    assert fine.status_code == 202


async def test_public_endpoints_answer_429_with_retry_after(settings: Settings) -> None:
    settings = settings.model_copy(update={
        "rate_limit_submit": "3/minute", "rate_limit_submit_per_key": "2/minute",
        "rate_limit_tracking": "2/minute"})
    async with serving(intake_app(settings), settings.intake_port) as url, httpx.AsyncClient() as http:
        by_address = [await http.post(f"{url}/v1/complaints", json=COMPLAINT) for _ in range(4)]
        ticket_id = by_address[0].json()["ticket_id"]
        views = [await http.get(f"{url}/v1/complaints/{ticket_id}") for _ in range(3)]
    trusted = settings.model_copy(update={"trusted_addresses": ["127.0.0.1"]})
    async with serving(intake_app(trusted), settings.intake_port) as url, httpx.AsyncClient() as http:
        unlimited = [await http.post(f"{url}/v1/complaints", json=COMPLAINT) for _ in range(5)]
        by_key = [await http.post(f"{url}/v1/complaints", json=COMPLAINT,
                                  headers={"X-API-Key": "channel-key-1"}) for _ in range(3)]
        other_key = await http.post(f"{url}/v1/complaints", json=COMPLAINT,
                                    headers={"X-API-Key": "channel-key-2"})
    assert [r.status_code for r in by_address] == [202, 202, 202, 429]
    assert 0 < int(by_address[-1].headers["Retry-After"]) <= 60
    assert [r.status_code for r in views] == [200, 200, 429]
    assert [r.status_code for r in unlimited] == [202] * 5
    assert [r.status_code for r in by_key] == [202, 202, 429]
    assert other_key.status_code == 202


async def test_bad_text_is_a_422_naming_the_field_never_a_500(settings: Settings) -> None:
    async with serving(intake_app(settings), settings.intake_port) as url, \
            serving(sla_app(settings), settings.sla_port) as sla, httpx.AsyncClient() as http:
        async def post(path: str, raw: str, base: str = url) -> httpx.Response:
            return await http.post(f"{base}{path}", content=raw.encode(),
                                   headers={"content-type": "application/json"})

        invisible = await http.post(f"{url}/v1/complaints", json={
            **COMPLAINT, "text": "\u200b\u200c\u200d\ufeff\u2060" * 3, "title": "\u200b \u3164"})
        # json.dumps keeps "\ud800" as an escape: the body is valid JSON holding a lone surrogate.
        surrogate_text = await post("/v1/complaints", json.dumps({**COMPLAINT, "text": "\ud800" * 12}))
        surrogate_key = await post("/v1/complaints", json.dumps({**COMPLAINT, "\ud800": 1}))
        surrogate_nested = await post("/v1/complaints", json.dumps(
            {**COMPLAINT, "location": {"address": "Jl. \ud83d Suprapto"}}))
        surrogate_update = await post("/v1/tickets/T-1/events", json.dumps(
            {"action": "note", "note": "\udfff"}), base=sla)
    assert invisible.status_code == 422
    assert {e["field"] for e in invisible.json()["errors"]} == {"text", "title"}
    assert "invisible" in invisible.json()["errors"][0]["problem"]
    for response, field in [(surrogate_text, "text"), (surrogate_nested, "location.address"),
                            (surrogate_update, "note")]:
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == [field]
    assert surrogate_key.status_code == 422
    assert surrogate_key.json()["errors"][0]["field"] == "body"  # pydantic names no key here


async def test_validation_errors_echo_no_personal_data(settings: Settings) -> None:
    personal = {"name": "Siti Aminah binti Haji Abdullah Syamsuddin" * 4,
                "phone": "0899-1111-22223333", "email": "siti aminah@example.com"}
    async with serving(intake_app(settings), settings.intake_port) as url, httpx.AsyncClient() as http:
        response = await http.post(f"{url}/v1/complaints", json={
            "channel": "web", "text": "Siti 0899", "reporter": personal,
            "location": {"address": "Rumah Siti Aminah, RT 03 " * 20}})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"text", "reporter.name", "reporter.phone", "reporter.email", "location.address"}
    body = response.text
    assert [s for s in ("Siti", "Aminah", "0899", "2222", "example.com") if s in body] == []
    assert all(set(e) == {"type", "loc", "msg"} for e in response.json()["detail"])
