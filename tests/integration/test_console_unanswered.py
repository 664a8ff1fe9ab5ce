"""The console when a service behind its pages does not answer (CI once saw the supervisor's
dashboard answer a bare "Internal Server Error"): the dashboard still opens, each panel whose
source is gone, stalled or failing saying so; another page says the service does not answer;
an error no handler takes is logged with its traceback and shown as an error page.

The SLA API is real while the supervisor signs in; then it stops, and on its port in turn:
nothing, a peer that accepts and never answers, one that answers 503, one that answers 200
with a body that is not what the API promises. The notification service never runs."""

import asyncio
import io
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from services.console.app import create_app as console_app
from services.sla.app import create_app as sla_app
from shared.embedded import free_port
from shared.logs import configure_logging
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.support import serving

pytestmark = pytest.mark.integration

HEADING = "<h1>Dasbor pengawasan</h1>"
NO_ESCALATIONS = "Layanan SLA tidak menjawab; daftar eskalasi"
NO_REPORT = "Layanan SLA tidak menjawab; laporan kepatuhan"
NO_DELIVERIES = "Layanan pemberitahuan tidak menjawab"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The process's log as `disposisi dev` writes it (structlog, readable lines)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("INFO", "console", stream=stream)
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level


@asynccontextmanager
async def answering(port: int, reply: bytes | None) -> AsyncIterator[None]:
    """A peer on ``port`` that reads each request and answers ``reply`` (None: never)."""
    peers: set[asyncio.StreamWriter] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.add(writer)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port, reuse_address=True)
    try:
        yield
    finally:
        server.close()
        for writer in peers:  # the console keeps its connections open
            writer.close()
        await server.wait_closed()


def _http(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


async def _signed_in_supervisor(http: httpx.AsyncClient, accounts: Accounts) -> None:
    supervisor = await accounts.user("inspektorat", "supervisor")
    page = await http.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the sign-in form carries the CSRF token"
    signed = await http.post("/login", data={"csrf_token": found.group(1),
                                             "username": supervisor.name,
                                             "password": supervisor.password})
    problem = re.search(r'<div class="error-summary".*?</ul>', signed.text, re.S)
    assert signed.status_code == 303 and signed.headers["location"] == "/dashboard", \
        problem.group(0) if problem else signed.status_code


def _dashboard_without_sla(page: httpx.Response, condition: str) -> None:
    assert page.status_code == 200, f"{condition}: {page.status_code} {page.text[:300]}"
    for text in (HEADING, NO_ESCALATIONS, NO_REPORT, NO_DELIVERIES):
        assert text in page.text, f"{condition}: {text!r} missing"


async def test_the_dashboard_opens_while_its_sources_do_not_answer(
        settings: Settings, accounts: Accounts, log_lines: io.StringIO) -> None:
    settings = settings.model_copy(update={
        "console_port": free_port(),
        "console_sla_url": f"http://127.0.0.1:{settings.sla_port}",
        "console_intake_url": f"http://127.0.0.1:{free_port()}",
        "console_notify_url": f"http://127.0.0.1:{free_port()}",  # never started
        "console_api_timeout_seconds": 60.0})  # sign-in hashes a password on a busy machine
    # A second console on the same session key waits 2 s for the stalled SLA API (its pages
    # may be slow; none of them may fail).
    impatient = settings.model_copy(update={"console_port": free_port(),
                                            "console_api_timeout_seconds": 2.0})
    async with serving(console_app(settings), settings.console_port) as console, \
            serving(console_app(impatient), impatient.console_port) as stalled_console, \
            httpx.AsyncClient(base_url=console, timeout=120) as http:
        async with serving(sla_app(settings), settings.sla_port):
            await _signed_in_supervisor(http, accounts)
            page = await http.get("/dashboard")
            assert page.status_code == 200 and "Belum ada eskalasi." in page.text
            assert NO_DELIVERIES in page.text and NO_REPORT not in page.text

        _dashboard_without_sla(await http.get("/dashboard"), "SLA API stopped")
        assert "panel=escalations" in log_lines.getvalue()
        inbox = await http.get("/inbox")
        assert inbox.status_code == 503 and "Layanan tidak menjawab" in inbox.text

        async with answering(settings.sla_port, None):
            _dashboard_without_sla(await http.get(f"{stalled_console}/dashboard"),
                                   "SLA API stalled")
        async with answering(settings.sla_port, _http("503 Service Unavailable", b"{}")):
            _dashboard_without_sla(await http.get("/dashboard"), "SLA API answering 503")
            assert "/v1/escalations answered 503" in log_lines.getvalue()

        # Not an outage but a broken promise: logged with the traceback, shown as an error page.
        async with answering(settings.sla_port, _http("200 OK", b"{}")):
            broken = await http.get("/inbox")
        assert broken.status_code == 500 and "Terjadi kesalahan" in broken.text
        logged = log_lines.getvalue()
        assert "unhandled error in the console" in logged and "path=/inbox" in logged
        assert "Traceback (most recent call last)" in logged and "KeyError" in logged
