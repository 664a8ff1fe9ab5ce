"""A service started before its store answers waits for it instead of failing its start-up:
the store's short timeouts (meant to turn a request into a 503 within a second) must not fail
the first index creation. Each service here starts with nothing listening on the store's
port; the store comes up a moment later and the service becomes ready."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI

from services.intake.app import create_app as intake_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from shared.embedded import EmbeddedServer, free_port, start_store
from shared.settings import Settings
from tests.integration.support import serving

pytestmark = [pytest.mark.integration, pytest.mark.own_servers]

SERVICES: dict[str, Callable[[Settings], FastAPI]] = {
    "intake": intake_app, "router": router_app, "sla": sla_app}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_a_service_started_before_its_store_waits_for_it(
        service: str, settings: Settings, tmp_path: Path) -> None:
    store_port = free_port()
    late = settings.model_copy(update={
        "mongodb_url": f"mongodb://127.0.0.1:{store_port}/?directConnection=true"})
    app = SERVICES[service](late)
    port = {"intake": late.intake_port, "router": late.router_port, "sla": late.sla_port}[service]

    async def store_later() -> None:
        await asyncio.sleep(2.0)  # four times the store timeout of the settings
        servers.append(await asyncio.to_thread(start_store, store_port, tmp_path / "store"))

    servers: list[EmbeddedServer] = []
    later = asyncio.create_task(store_later())
    try:
        async with serving(app, port) as url:
            assert url.endswith(f":{port}")
            assert servers, "the service was ready before its store existed"
    finally:
        await later
        for server in servers:
            server.stop()
