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
from tests.integration.auth_support import Accounts
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


async def test_a_body_over_the_limit_is_refused_before_it_is_read(settings: Settings,
                                                                  accounts: Accounts) -> None:
    settings = settings.model_copy(update={"max_body_bytes": 64 * 1024})
    web = await accounts.channel("web")
    key = f"X-API-Key: {web.headers['X-API-Key']}\r\n".encode()
    async with serving(intake_app(settings), settings.intake_port):
        # 100 MB announced, 1 KB sent: the answer comes without waiting for the rest.
        announced = await _raw_request(settings.intake_port, (
            b"POST /v1/complaints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + key +
            b"Content-Length: 104857600\r\n\r\n"), [b"{" + b" " * 1023])
        # Chunked, no length given: refused once the streamed bytes pass the limit.
        chunk = b" " * 16384
        chunks = [b"4000\r\n" + chunk + b"\r\n"] * 8
        streamed = await _raw_request(settings.intake_port, (
            b"POST /v1/complaints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + key +
            b"Transfer-Encoding: chunked\r\n\r\n"), [b"1\r\n{\r\n", *chunks, b"0\r\n\r\n"])
        # Without credentials too: the limit holds before anyone is asked who they are.
        anonymous = await _raw_request(settings.intake_port, (
            b"POST /v1/complaints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"), [b"{" + b" " * 1023])
        async with httpx.AsyncClient() as http:
            fine = await http.post(f"http://127.0.0.1:{settings.intake_port}/v1/complaints",
                                   json={**COMPLAINT, "text": COMPLAINT["text"] + " ." * 1000},
                                   headers=web.headers)
    assert announced.startswith(b"HTTP/1.1 413"), announced[:200]
    assert streamed.startswith(b"HTTP/1.1 413"), streamed[:200]
    assert anonymous.startswith(b"HTTP/1.1 413"), anonymous[:200]
    assert fine.status_code == 202, fine.text


async def test_public_endpoints_answer_429_with_retry_after(settings: Settings,
                                                             accounts: Accounts) -> None:
    settings = settings.model_copy(update={
        "rate_limit_submit": "3/minute", "rate_limit_submit_per_key": "10/minute",
        "rate_limit_tracking": "2/minute"})
    web = await accounts.channel("web")
    async with serving(intake_app(settings), settings.intake_port) as url, httpx.AsyncClient() as http:
        # Refused callers are not counted: they cannot use up a channel's or an address's quota.
        refused = [await http.post(f"{url}/v1/complaints", json=COMPLAINT, headers=headers)
                   for headers in [{}, {}, {"X-API-Key": "not-a-key"}, {"X-API-Key": "not-a-key"}]]
        by_address = [await http.post(f"{url}/v1/complaints", json=COMPLAINT, headers=web.headers)
                      for _ in range(4)]
        ticket_id = by_address[0].json()["ticket_id"]
        views = [await http.get(f"{url}/v1/complaints/{ticket_id}") for _ in range(3)]
    trusted = settings.model_copy(update={"trusted_addresses": ["127.0.0.1"],
                                          "rate_limit_submit": "1/minute",
                                          "rate_limit_submit_per_key": "2/minute"})
    other = await accounts.channel("web")
    async with serving(intake_app(trusted), settings.intake_port) as url, httpx.AsyncClient() as http:
        # A trusted gateway's address is not limited, but every key still is, on its own.
        by_key = [await http.post(f"{url}/v1/complaints", json=COMPLAINT, headers=web.headers)
                  for _ in range(3)]
        other_key = await http.post(f"{url}/v1/complaints", json=COMPLAINT, headers=other.headers)
    assert [r.status_code for r in refused] == [401] * 4
    assert [r.status_code for r in by_address] == [202, 202, 202, 429]
    assert 0 < int(by_address[-1].headers["Retry-After"]) <= 60
    assert [r.status_code for r in views] == [200, 200, 429]
    assert [r.status_code for r in by_key] == [202, 202, 429]
    assert 0 < int(by_key[-1].headers["Retry-After"]) <= 60
    assert other_key.status_code == 202


async def test_sign_ins_from_one_address_answer_429_with_retry_after(settings: Settings,
                                                                    accounts: Accounts) -> None:
    settings = settings.model_copy(update={"rate_limit_sign_in": "3/minute",
                                           "auth_max_failed_sign_ins": 100})
    officer = await accounts.user("andi.dlh", "officer", "DLH")
    async with serving(sla_app(settings), settings.sla_port) as url, httpx.AsyncClient() as http:
        # Guessing across many accounts: no account locks, the address is slowed down.
        guesses = [await http.post(f"{url}/v1/auth/token",
                                   data={"username": f"user{i}", "password": "tebak-tebak"})
                   for i in range(3)]
        right = await http.post(f"{url}/v1/auth/token",
                                data={"username": "andi.dlh", "password": officer.password})
        # Tokens already issued keep working: only signing in is limited.
        working = await http.get(f"{url}/v1/tickets/T-NOPE", headers=officer.headers)
    trusted = settings.model_copy(update={"trusted_addresses": ["127.0.0.1"]})
    async with serving(sla_app(trusted), settings.sla_port) as url, httpx.AsyncClient() as http:
        gateway = [await http.post(f"{url}/v1/auth/token",
                                   data={"username": "andi.dlh", "password": officer.password})
                   for _ in range(4)]
    assert [g.status_code for g in guesses] == [400] * 3
    assert right.status_code == 429
    assert 0 < int(right.headers["Retry-After"]) <= 60
    assert "access_token" not in right.text
    assert working.status_code == 404  # authenticated, and the ticket does not exist
    assert [g.status_code for g in gateway] == [200] * 4


async def test_bad_text_is_a_422_naming_the_field_never_a_500(settings: Settings,
                                                              accounts: Accounts) -> None:
    web = await accounts.channel("web")
    officer = await accounts.user("andi.dlh", "officer", "DLH")
    async with serving(intake_app(settings), settings.intake_port) as url, \
            serving(sla_app(settings), settings.sla_port) as sla, httpx.AsyncClient() as http:
        async def post(path: str, raw: str, base: str = url) -> httpx.Response:
            caller = web if base == url else officer
            return await http.post(f"{base}{path}", content=raw.encode(),
                                   headers={"content-type": "application/json", **caller.headers})

        invisible = await http.post(f"{url}/v1/complaints", headers=web.headers, json={
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


async def test_validation_errors_echo_no_personal_data(settings: Settings,
                                                        accounts: Accounts) -> None:
    web = await accounts.channel("web")
    personal = {"name": "Siti Aminah binti Haji Abdullah Syamsuddin" * 4,
                "phone": "0899-1111-22223333", "email": "siti aminah@example.com"}
    async with serving(intake_app(settings), settings.intake_port) as url, httpx.AsyncClient() as http:
        response = await http.post(f"{url}/v1/complaints", headers=web.headers, json={
            "channel": "web", "text": "Siti 0899", "reporter": personal,
            "location": {"address": "Rumah Siti Aminah, RT 03 " * 20}})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"text", "reporter.name", "reporter.phone", "reporter.email", "location.address"}
    body = response.text
    assert [s for s in ("Siti", "Aminah", "0899", "2222", "example.com") if s in body] == []
    assert all(set(e) == {"type", "loc", "msg"} for e in response.json()["detail"])
