"""An idle keep-alive connection outlives the client's own idle limit.

CI once failed on this: httpx keeps an idle connection for 5 s, and uvicorn's default closed
it after 5 s, so a request sent on a connection idle for just under 5 s met the server's close
and failed unanswered (`httpx.ReadError` on a metrics scrape). The services now keep an idle
connection for `http_keep_alive_seconds` (75 s), so the client always closes first."""

import asyncio

import pytest
from fastapi import FastAPI

from shared.embedded import free_port
from shared.settings import Settings
from tests.integration.support import serving

pytestmark = pytest.mark.integration

CLIENT_IDLE_LIMIT = 5.0  # httpx's keepalive_expiry, and uvicorn's own default keep-alive
REQUEST = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def answered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Send one request on the open connection; the status line of its answer (empty when the
    server had closed the connection)."""
    writer.write(REQUEST)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=30)
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)  # the other headers
    await reader.readexactly(len(b'"pong"'))
    return status_line


async def test_a_connection_idle_longer_than_a_clients_limit_still_answers() -> None:
    assert Settings().http_keep_alive_seconds > CLIENT_IDLE_LIMIT + 1
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    port = free_port()
    async with serving(app, port, consumers_assigned=False):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert (await answered(reader, writer)).startswith(b"HTTP/1.1 200")
            await asyncio.sleep(CLIENT_IDLE_LIMIT + 1)
            assert (await answered(reader, writer)).startswith(b"HTTP/1.1 200")
        finally:
            writer.close()
