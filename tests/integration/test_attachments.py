"""Attachments against a running intake and the test's MongoDB (GridFS): uploaded by the
channel, sent as Open311 multipart ``media`` or fetched from a ``media_url`` served on
loopback; read back by the citizen with the tracking code and by the ticket's agency only."""

import http.server
import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from PIL import Image
from pymongo import AsyncMongoClient

from services.intake.app import create_app as create_intake
from services.intake.attachment_store import AttachmentStore
from services.intake.attachments import Attachments
from services.intake.media import MediaRefused
from shared import mongo
from shared.contracts import Topics
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.support import eventually, json_when_ok, produce, serving
from tests.integration.test_open311 import changed
from tests.unit.test_media import GPS_IFD, photo_with_gps

pytestmark = pytest.mark.integration

TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"


@contextmanager
def photo_host(files: dict[str, bytes], hosts: list[str] | None = None) -> Iterator[str]:
    """A real HTTP server on loopback serving ``files`` by path (the Host header of each
    request it served goes to ``hosts``)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if hosts is not None:
                hosts.append(str(self.headers.get("Host")))
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def exif_of(content: bytes) -> dict[int, Any]:
    return dict(Image.open(io.BytesIO(content)).getexif())


async def _listed(http: httpx.AsyncClient, url: str, code: str, n: int) -> list[dict[str, Any]] | None:
    found: list[dict[str, Any]] = (await http.get(url, headers={"X-Tracking-Code": code})).json()[
        "attachments"]
    return found if len(found) >= n else None


async def test_an_anonymous_complaints_photo_reaches_citizen_and_agency_without_gps(
        settings: Settings, accounts: Accounts) -> None:
    web = await accounts.channel("web")
    dlh = await accounts.user("dlh.petugas", "officer", "DLH")
    pdam = await accounts.user("pdam.petugas", "officer", "PDAM")
    photo = photo_with_gps()
    async with serving(create_intake(settings), settings.intake_port) as intake, \
            httpx.AsyncClient(timeout=30) as http:
        posted = (await http.post(f"{intake}/v1/complaints", headers=web.headers,
                                  json={"channel": "web", "text": TEXT, "anonymous": True,
                                        "reporter": {"name": "Budi Santoso"}})).json()
        ticket_id, code = posted["ticket_id"], posted["tracking_code"]
        uploaded = await http.post(f"{intake}/v1/complaints/{ticket_id}/attachments",
                                   headers=web.headers, files={"file": ("budi-rumah.jpg", photo)})
        again = await http.post(f"{intake}/v1/complaints/{ticket_id}/attachments",
                                headers=web.headers, files={"file": ("lagi.jpg", photo)})
        citizen_url = f"{intake}/v1/complaints/{ticket_id}/attachments"
        listed = (await http.get(citizen_url, headers={"X-Tracking-Code": code})).json()
        [item] = listed["attachments"]
        original = await http.get(f"{citizen_url}/{item['id']}", params={"code": code})
        thumb = await http.get(f"{citizen_url}/{item['thumbnail_id']}", params={"code": code})
        no_code = await http.get(citizen_url)
        wrong_code = await http.get(citizen_url, headers={"X-Tracking-Code": "0000-0000-0000"})
        await produce(settings.kafka_bootstrap_servers, Topics.CHANGES,
                      [changed(ticket_id, 1, "assigned")])
        agency_url = f"{intake}/v1/tickets/{ticket_id}/attachments"
        for_dlh = await eventually(lambda: json_when_ok(http, agency_url, dlh.headers), timeout=60)
        dlh_file = await http.get(f"{agency_url}/{item['id']}", headers=dlh.headers)
        for_pdam = await http.get(agency_url, headers=pdam.headers)
        pdam_file = await http.get(f"{agency_url}/{item['id']}", headers=pdam.headers)
    assert uploaded.status_code == 201, uploaded.text
    assert len(again.json()["attachments"]) == 1, "the same file twice is kept once"
    assert item["mime"] == "image/jpeg" and item["stripped"] is True
    assert "budi" not in listed.__repr__().lower(), "the file's name (it may name the reporter) is dropped"
    assert original.status_code == 200 and original.headers["content-type"] == "image/jpeg"
    assert exif_of(original.content) == {} and GPS_IFD not in exif_of(original.content)
    assert max(Image.open(io.BytesIO(thumb.content)).size) == settings.attachment_thumbnail_pixels
    assert no_code.status_code == 404 and wrong_code.status_code == 404
    assert for_dlh is not None and len(for_dlh["attachments"]) == 1
    assert dlh_file.content == original.content
    assert for_pdam.status_code == 404 and pdam_file.status_code == 404


async def test_wrong_types_and_oversized_files_are_refused(settings: Settings,
                                                           accounts: Accounts) -> None:
    settings = settings.model_copy(update={"attachment_max_bytes": 20_000})
    web = await accounts.channel("web")
    other = await accounts.channel("web", tenant="kota-lain")
    async with serving(create_intake(settings), settings.intake_port) as intake, \
            httpx.AsyncClient(timeout=30) as http:
        ticket_id = (await http.post(f"{intake}/v1/complaints", headers=web.headers,
                                     json={"channel": "web", "text": TEXT})).json()["ticket_id"]
        url = f"{intake}/v1/complaints/{ticket_id}/attachments"
        script = await http.post(url, headers=web.headers,
                                 files={"file": ("foto.jpg", b"<script>alert(1)</script>" * 10)})
        huge = await http.post(url, headers=web.headers,
                               files={"file": ("besar.jpg", photo_with_gps((3000, 3000)))})
        beyond_body = await http.post(url, headers=web.headers,
                                      files={"file": ("x.bin", b"\0" * 600_000)})
        foreign = await http.post(url, headers=other.headers,
                                  files={"file": ("foto.jpg", photo_with_gps((40, 40)))})
    assert script.status_code == 415 and "file 1" in script.json()["detail"]
    assert huge.status_code == 413
    assert beyond_body.status_code == 413
    assert foreign.status_code in (403, 404)


async def test_media_urls_are_fetched_only_within_the_limits(settings: Settings) -> None:
    small, big = photo_with_gps((60, 40)), photo_with_gps((2000, 2000))
    client = mongo.connect(settings)
    try:
        store = AttachmentStore(mongo.database(client, settings))
        strict = Attachments(settings, store)
        loose = Attachments(settings.model_copy(update={
            "attachment_fetch_private": True, "attachment_max_bytes": len(small) + 10}), store)
        with photo_host({"/kecil.jpg": small, "/besar.jpg": big}) as host:
            with pytest.raises(MediaRefused, match="loopback, private"):
                await strict.fetch(f"{host}/kecil.jpg")
            fetched = await loose.fetch(f"{host}/kecil.jpg")
            with pytest.raises(MediaRefused, match="larger"):
                await loose.fetch(f"{host}/besar.jpg")
            with pytest.raises(MediaRefused, match="HTTP 404"):
                await loose.fetch(f"{host}/tidak-ada.jpg")
        with pytest.raises(MediaRefused, match="http and https"):
            await loose.fetch("file:///etc/passwd")
    finally:
        await client.close()
    assert fetched == small


class CountingResolver:
    """Answers the given addresses for any name, and counts the lookups."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


async def test_a_media_url_is_resolved_once_and_fetched_from_that_address(settings: Settings) -> None:
    """The DNS-rebinding guard: the address checked is the address connected to. The name
    (``.test``, which no resolver answers) reaches the photo host only through the one lookup;
    a name answering a loopback address among public ones is refused before any connection."""
    small = photo_with_gps((60, 40))
    client = mongo.connect(settings)
    seen: list[str] = []
    try:
        store = AttachmentStore(mongo.database(client, settings))
        with photo_host({"/kecil.jpg": small}, seen) as host:
            port = int(host.rsplit(":", 1)[1])
            once = CountingResolver(["127.0.0.1"], ["203.0.113.9"])
            loose = Attachments(settings.model_copy(update={"attachment_fetch_private": True}),
                                store, resolve=once)
            fetched = await loose.fetch(f"http://foto.rebind.test:{port}/kecil.jpg")
            mixed = CountingResolver(["93.184.216.34", "127.0.0.1"])
            strict = Attachments(settings, store, resolve=mixed)
            with pytest.raises(MediaRefused, match="loopback, private"):
                await strict.fetch(f"http://foto.rebind.test:{port}/kecil.jpg")
    finally:
        await client.close()
    assert fetched == small and once.calls == 1
    assert seen == [f"foto.rebind.test:{port}"], "the host's name travels in Host only"
    assert mixed.calls == 1


async def test_an_open311_request_keeps_its_media_url_and_multipart_photos(
        settings: Settings, accounts: Accounts, mongo: AsyncMongoClient[Document]) -> None:
    db = mongo[settings.mongodb_database]
    settings = settings.model_copy(update={"attachment_fetch_private": True})
    key = (await accounts.channel("open311")).headers["X-API-Key"]
    photo = photo_with_gps((120, 80))
    with photo_host({"/tps.jpg": photo}) as host:
        async with serving(create_intake(settings), settings.intake_port) as intake, \
                httpx.AsyncClient(timeout=30) as http:
            form = {"api_key": key, "service_code": "sampah", "lat": "-3.79", "long": "102.26",
                    "description": TEXT, "media_url": f"{host}/tps.jpg"}
            by_url = (await http.post(f"{intake}/open311/v2/requests.json", data=form)).json()[0]
            by_part = await http.post(f"{intake}/open311/v2/requests.json",
                                      data={**form, "media_url": "", "attribute[anonymous]": "true"},
                                      files={"media": ("foto.jpg", photo)})
            hidden = (await http.post(f"{intake}/open311/v2/requests.json",
                                      data={**form, "attribute[anonymous]": "true"})).json()[0]
            hidden_code = hidden["service_notice"].split("kode pelacakan ")[1].split(":")[0]
            refused = await http.post(f"{intake}/open311/v2/requests.json", data=form,
                                      files={"media": ("foto.jpg", b"MZ\x90\x00 not a photo" * 20)})
            [answer] = by_part.json()
            code = answer["service_notice"].split("kode pelacakan ")[1].split(":")[0]
            url_code = by_url["service_notice"].split("kode pelacakan ")[1].split(":")[0]
            fetched = await eventually(lambda: _listed(
                http, f"{intake}/v1/complaints/{by_url['service_request_id']}/attachments",
                url_code, 1), timeout=60)
            hidden_fetched = await eventually(lambda: _listed(
                http, f"{intake}/v1/complaints/{hidden['service_request_id']}/attachments",
                hidden_code, 1), timeout=60)
            uploaded = await _listed(
                http, f"{intake}/v1/complaints/{answer['service_request_id']}/attachments", code, 1)
    assert refused.status_code == 400 and refused.json()[0]["description"].startswith("media 1:")
    assert await db["complaints"].count_documents({}) == 3, "a refused photo stores nothing"
    stored = await db["complaints"].find_one({"ticket_id": hidden["service_request_id"]})
    assert stored is not None and stored["event"]["data"]["attachments"] == []
    assert hidden_fetched is not None and hidden_fetched[0]["stripped"] is True
    assert fetched is not None and fetched[0]["stripped"] is False
    assert uploaded is not None and uploaded[0]["stripped"] is True


async def test_a_stored_complaint_survives_its_photo_host_being_down(
        settings: Settings, accounts: Accounts, caplog: pytest.LogCaptureFixture) -> None:
    """The fetch runs after the answer: a host that refuses connections costs the photo,
    never the complaint, and the log names the host and the reason, not the URL's path."""
    settings = settings.model_copy(update={"attachment_fetch_private": True})
    web = await accounts.channel("web")
    with photo_host({}) as host:
        dead = host  # the server is shut when the block ends: its port refuses connections
    caplog.set_level(logging.WARNING, logger="services.intake.attachments")
    async with serving(create_intake(settings), settings.intake_port) as intake, \
            httpx.AsyncClient(timeout=30) as http:
        posted = await http.post(f"{intake}/v1/complaints", headers=web.headers,
                                 json={"channel": "web", "text": TEXT,
                                       "attachments": [f"{dead}/budi-santoso.jpg"]})
        ticket_id, code = posted.json()["ticket_id"], posted.json()["tracking_code"]

        async def logged() -> list[str]:
            return [r.getMessage() for r in caplog.records if ticket_id in r.getMessage()]

        messages = await eventually(logged, timeout=60)
        view = await http.get(f"{intake}/v1/complaints/{ticket_id}", headers={"X-Tracking-Code": code})
        listed = await http.get(f"{intake}/v1/complaints/{ticket_id}/attachments",
                                headers={"X-Tracking-Code": code})
    assert posted.status_code == 202 and view.status_code == 200
    assert view.json()["text"] == TEXT
    assert messages and "127.0.0.1" in messages[0] and "fetch failed" in messages[0]
    assert "budi" not in messages[0]
    assert listed.status_code == 200 and listed.json()["attachments"] == []
