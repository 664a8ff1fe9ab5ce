"""The console against intake and the SLA API running on real ports: the session cookie's
flags, CSRF, sign-in failures, an officer sees only the agency's tickets, a signed-out or
revoked session goes back to the sign-in page, the tracking page shows the text only with the
tracking code."""

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.console.app import create_app as console_app
from services.intake.app import create_app as intake_app
from services.sla.app import create_app as sla_app
from shared.contracts import Topics, utc_now
from shared.embedded import free_port
from shared.settings import Settings
from tests.integration.auth_support import Accounts, Caller
from tests.integration.sla_support import routed
from tests.integration.support import eventually, produce, serving

pytestmark = pytest.mark.integration

TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"


@dataclass
class Console:
    url: str
    officer: Caller
    accounts: Accounts


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "every form carries the CSRF token"
    return found.group(1)


@pytest.fixture
async def console(settings: Settings, accounts: Accounts) -> AsyncIterator[Console]:
    web = await accounts.channel("web")
    settings = settings.model_copy(update={
        "console_port": free_port(),
        "console_sla_url": f"http://127.0.0.1:{settings.sla_port}",
        "console_intake_url": f"http://127.0.0.1:{settings.intake_port}",
        "console_channel_api_key": web.headers["X-API-Key"], "console_live_poll_seconds": 0.5})
    officer = await accounts.user("dlh.andi", "officer", "DLH")
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serving(sla_app(settings), settings.sla_port))
        await stack.enter_async_context(serving(intake_app(settings), settings.intake_port))
        url = await stack.enter_async_context(serving(console_app(settings), settings.console_port))
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED,
                      [routed("T-DLH", utc_now(), agency="DLH", text="Sampah numpuk di pasar"),
                       routed("T-PDAM", utc_now(), agency="PDAM", text="Air PDAM mati")])
        yield Console(url, officer, accounts)


async def _sign_in(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await http.get("/login")
    return await http.post("/login", data={"csrf_token": _csrf(page.text), "username": username,
                                           "password": password})


async def test_the_session_cookie_is_httponly_samesite_and_forms_need_the_csrf_token(
        console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        page = await http.get("/login")
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
        refused = await http.post("/login", data={"username": "dlh.andi",
                                                  "password": console.officer.password})
        assert refused.status_code == 403
        forged = await http.post("/login", data={"csrf_token": "x" * 32, "username": "dlh.andi",
                                                 "password": console.officer.password})
        assert forged.status_code == 403
        wrong = await _sign_in(http, "dlh.andi", "not-the-password")
        assert wrong.status_code == 400 and "Nama pengguna atau kata sandi salah" in wrong.text
        assert (await http.get("/inbox")).headers["location"] == "/login"
    # Over https (a proxy in front), the cookie is Secure.
    transport = httpx.ASGITransport(app=console_app(Settings(auth_secret="s" * 40)))
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as https:
        assert "secure" in (await https.get("/login")).headers["set-cookie"].lower()


async def test_an_officer_sees_the_agencys_tickets_only_and_a_revoked_session_signs_out(
        console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        signed = await _sign_in(http, "dlh.andi", console.officer.password)
        assert signed.status_code == 303 and signed.headers["location"] == "/inbox"

        async def listed() -> bool:
            return "T-DLH" in (await http.get("/inbox")).text
        assert await eventually(listed)
        inbox = await http.get("/inbox")
        assert "T-PDAM" not in inbox.text and 'sse-connect="/inbox/live' in inbox.text
        assert (await http.get("/tickets/T-PDAM")).status_code == 404
        ticket = await http.get("/tickets/T-DLH")
        assert ticket.status_code == 200 and "Sampah numpuk di pasar" in ticket.text
        acted = await http.post("/tickets/T-DLH/actions", data={
            "csrf_token": _csrf(ticket.text), "action": "needs_info", "nonce": "n-1"})
        assert acted.status_code == 400 and "wajib diisi" in acted.text  # the question is required

        async def overdue() -> bool:  # the demo policy's response target is 5 seconds
            found = await http.get("/inbox", params={"q": "pasar", "due": "overdue"})
            return "T-DLH" in found.text
        assert await eventually(overdue)
        assert "T-DLH" not in (await http.get("/inbox", params={"q": "jembatan"})).text
        half = await http.post("/tickets/T-DLH/actions", data={
            "csrf_token": _csrf(ticket.text), "action": "rejected", "nonce": "n-2",
            "reason": "Pasar dikelola Disperindag"})
        assert half.status_code == 400 and 'href="#rejected-suggested_agency"' in half.text
        for attempt in range(2):  # the same form sent twice is recorded once (its nonce)
            rejected = await http.post("/tickets/T-DLH/actions", data={
                "csrf_token": _csrf(ticket.text), "action": "rejected", "nonce": "n-3",
                "reason": "Pasar dikelola Disperindag", "suggested_agency": "DISPERINDAG"})
            assert rejected.status_code == 303, (attempt, rejected.text)
        shown = await http.get("/tickets/T-DLH")
        assert "Tindakan tercatat" in shown.text and shown.text.count("Ditolak (bukan tupoksi)") == 1
        assert "alasan: Pasar dikelola Disperindag" in shown.text
        async with http.stream("GET", "/inbox/live") as live:
            assert live.headers["content-type"].startswith("text/event-stream")
            lines = live.aiter_lines()
            assert "event: rows" in [await anext(lines) for _ in range(2)]
        await console.accounts.store.revoke_user("dlh.andi")
        gone = await http.get("/inbox")
        assert gone.status_code == 303 and gone.headers["location"] == "/login"
        tampered = http.cookies["disposisi_console"][:-4] + "AAAA"
        http.cookies.set("disposisi_console", tampered)
        assert (await http.get("/inbox")).headers["location"] == "/login"


async def test_the_tracking_page_shows_the_text_only_with_the_tracking_code(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as citizen, \
            httpx.AsyncClient(base_url=console.url, timeout=30) as stranger:
        form = await citizen.get("/submit")
        sent = await citizen.post("/submit", data={"csrf_token": _csrf(form.text), "nonce": "s-1",
                                                   "text": TEXT, "name": "Siti Aminah"})
        assert sent.status_code == 200, sent.text
        ticket_id = re.search(r'id="ticket-id">([^<]+)<', sent.text).group(1)  # type: ignore[union-attr]
        code = re.search(r'id="tracking-code">([^<]+)<', sent.text).group(1)  # type: ignore[union-attr]
        mine = await citizen.get(f"/track/{ticket_id}")
        assert TEXT in mine.text
        assert code not in str(mine.url) and "Siti" not in mine.text
        public = await stranger.get(f"/track/{ticket_id}")
        assert public.status_code == 200 and TEXT not in public.text and "Diterima" in public.text
        wrong = await stranger.post(f"/track/{ticket_id}", data={
            "csrf_token": _csrf(public.text), "code": "WRONG-CODE"})
        assert wrong.status_code == 400 and TEXT not in wrong.text
        right = await stranger.post(f"/track/{ticket_id}", data={
            "csrf_token": _csrf(public.text), "code": code}, follow_redirects=True)
        assert TEXT in right.text
        empty = await citizen.post("/submit", data={"csrf_token": _csrf(form.text), "text": " "})
        assert empty.status_code == 400 and 'href="#text"' in empty.text


async def test_the_ticket_page_shows_the_photos_thumbnails_through_the_console(
        console: Console, settings: Settings) -> None:
    from tests.unit.test_media import photo_with_gps

    web = await console.accounts.channel("web")
    intake = f"http://127.0.0.1:{settings.intake_port}"
    async with httpx.AsyncClient(timeout=30) as api, \
            httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        posted = (await api.post(f"{intake}/v1/complaints", headers=web.headers,
                                 json={"channel": "web", "text": TEXT})).json()
        ticket_id = posted["ticket_id"]
        uploaded = await api.post(f"{intake}/v1/complaints/{ticket_id}/attachments",
                                  headers=web.headers, files={"file": ("tps.jpg", photo_with_gps())})
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED,
                      [routed(ticket_id, utc_now(), agency="DLH", text=TEXT)])

        async def listed_for_dlh() -> bool:
            reply = await api.get(f"{intake}/v1/tickets/{ticket_id}/attachments",
                                  headers=console.officer.headers)
            return reply.status_code == 200 and len(reply.json()["attachments"]) == 1

        assert await eventually(listed_for_dlh, timeout=60)
        await _sign_in(http, "dlh.andi", console.officer.password)
        page = await http.get(f"/tickets/{ticket_id}")
        thumbnail_id = uploaded.json()["attachments"][0]["thumbnail_id"]
        thumb = await http.get(f"/tickets/{ticket_id}/attachments/{thumbnail_id}")
        stranger = await http.get(f"/tickets/T-PDAM/attachments/{thumbnail_id}")
        await http.post("/logout", data={"csrf_token": _csrf(page.text)})
        signed_out = await http.get(f"/tickets/{ticket_id}/attachments/{thumbnail_id}")
    assert page.status_code == 200
    assert f'<img src="/tickets/{ticket_id}/attachments/{thumbnail_id}"' in page.text
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content.startswith(b"\xff\xd8") and len(thumb.content) < len(photo_with_gps())
    assert stranger.status_code == 404
    assert signed_out.status_code in (303, 307) or "/login" in str(signed_out.url)


async def test_an_officer_resolves_with_a_photo_of_the_fix_that_the_citizen_sees(
        console: Console, settings: Settings) -> None:
    from tests.unit.test_media import photo_with_gps

    intake = f"http://127.0.0.1:{settings.intake_port}"
    sla = f"http://127.0.0.1:{settings.sla_port}"
    pdam = await console.accounts.user("pdam.budi", "officer", "PDAM")
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as citizen, \
            httpx.AsyncClient(base_url=console.url, timeout=30) as officer, \
            httpx.AsyncClient(base_url=console.url, timeout=30) as stranger, \
            httpx.AsyncClient(timeout=30) as api:
        form = await citizen.get("/submit")
        sent = await citizen.post("/submit", data={"csrf_token": _csrf(form.text), "nonce": "p-1",
                                                   "text": TEXT})
        ticket_id = re.search(r'id="ticket-id">([^<]+)<', sent.text).group(1)  # type: ignore[union-attr]
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED,
                      [routed(ticket_id, utc_now(), agency="DLH", text=TEXT)])

        async def held_by_dlh() -> bool:
            reply = await api.get(f"{intake}/v1/tickets/{ticket_id}/attachments",
                                  headers=console.officer.headers)
            ticket = await api.get(f"{sla}/v1/tickets/{ticket_id}", headers=console.officer.headers)
            return reply.status_code == 200 and ticket.status_code == 200

        assert await eventually(held_by_dlh, timeout=60)
        await _sign_in(officer, "dlh.andi", console.officer.password)
        page = await officer.get(f"/tickets/{ticket_id}")
        assert 'enctype="multipart/form-data"' in page.text and 'name="photo"' in page.text

        def resolve(photo: bytes, nonce: str) -> dict[str, Any]:
            return {"data": {"csrf_token": _csrf(page.text), "nonce": nonce, "action": "resolved",
                             "note": "Sampah sudah diangkut."},
                    "files": {"photo": ("hasil.jpg", photo)}}

        refused = await officer.post(f"/tickets/{ticket_id}/actions",
                                     **resolve(b"%PDF-1.4 not a photo", "r-1"))
        still = (await api.get(f"{sla}/v1/tickets/{ticket_id}", headers=console.officer.headers))
        other = await api.post(f"{intake}/v1/tickets/{ticket_id}/attachments", headers=pdam.headers,
                               files={"file": ("x.jpg", photo_with_gps())})
        done = await officer.post(f"/tickets/{ticket_id}/actions", **resolve(photo_with_gps(), "r-2"))
        resolved = (await api.get(f"{sla}/v1/tickets/{ticket_id}", headers=console.officer.headers))
        [photo] = (await api.get(f"{intake}/v1/tickets/{ticket_id}/attachments",
                                 headers=console.officer.headers)).json()["attachments"]
        kept = await api.get(f"{intake}/v1/tickets/{ticket_id}/attachments/{photo['id']}",
                             headers=console.officer.headers)
        track = await citizen.get(f"/track/{ticket_id}")
        thumb = await citizen.get(f"/track/{ticket_id}/attachments/{photo['thumbnail_id']}")
        no_code = await stranger.get(f"/track/{ticket_id}/attachments/{photo['thumbnail_id']}")
        public = await stranger.get(f"/track/{ticket_id}")
    assert refused.status_code == 400 and 'href="#photo"' in refused.text
    assert still.json()["status"] != "resolved", "a refused photo stops the resolution"
    assert other.status_code == 404, "another agency cannot add to this ticket"
    assert done.status_code in (200, 303) and resolved.json()["status"] == "resolved"
    assert photo["purpose"] == "resolution" and photo["stripped"] and photo["thumbnail_id"]
    assert b"Exif" not in kept.content and b"PhoneMaker" not in kept.content
    assert f'src="/track/{ticket_id}/attachments/{photo["thumbnail_id"]}"' in track.text
    assert thumb.status_code == 200 and thumb.content.startswith(b"\xff\xd8")
    assert no_code.status_code == 404 and photo["thumbnail_id"] not in public.text
