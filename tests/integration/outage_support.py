"""The whole pipeline (intake, router, SLA) on an embedded broker of its own, which a test
stops and starts again empty (memory storage: log, topics and group offsets gone), as a
killed and restarted Tansu is. Reconciliation runs on a short period, so what the broker
acknowledged and then lost is published again within seconds."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.dev import create_topics
from services.intake.app import create_app as create_intake
from services.router.app import create_app as create_router
from services.sla.app import create_app as create_sla
from shared.embedded import EmbeddedServer, free_port, start_kafka
from shared.settings import Settings
from tests.conftest import EMBEDDED_KAFKA_SETTINGS
from tests.integration.support import eventually, serving

# Short, so the tests see a republish; the alarm well beyond what a loaded machine needs.
RECONCILE_SHORT = {"reconcile_after_seconds": 3.0, "reconcile_interval_seconds": 0.5,
                   "reconcile_alarm_seconds": 600.0}


@dataclass
class OwnBroker:
    settings: Settings
    server: EmbeddedServer
    tmp_path: Path

    def stop(self) -> None:
        self.server.stop()

    async def start_empty(self) -> None:
        """Start again on the same port with nothing in it, and create the topics (as
        ``disposisi dev`` does after restarting a crashed broker)."""
        self.server = start_kafka(self.server.port, self.tmp_path)
        await create_topics(self.settings)


@dataclass(frozen=True)
class Urls:
    intake: str
    sla: str


@contextlib.asynccontextmanager
async def own_broker(settings: Settings, tmp_path: Path) -> AsyncIterator[OwnBroker]:
    """An embedded broker of its own (even when the suite runs against real Kafka)."""
    server = start_kafka(free_port(), tmp_path)
    broker = OwnBroker(settings.model_copy(update={
        "kafka_bootstrap_servers": server.address, **EMBEDDED_KAFKA_SETTINGS, **RECONCILE_SHORT}),
        server, tmp_path)
    try:
        await create_topics(broker.settings)
        yield broker
    finally:
        broker.stop()


async def _ready(urls: list[str]) -> bool:
    async with httpx.AsyncClient(timeout=30) as http:
        return all([(await http.get(f"{url}/readyz")).status_code == 200 for url in urls])


@contextlib.asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[Urls]:
    """The three services, ready (consumers assigned) before the test goes on: a consumer
    still joining when the broker stops would meet the restarted broker before its topics
    are recreated and have them made with the broker's default layout."""
    async with contextlib.AsyncExitStack() as running:
        intake = await running.enter_async_context(serving(create_intake(settings),
                                                           settings.intake_port))
        router = await running.enter_async_context(serving(create_router(settings),
                                                           settings.router_port))
        sla = await running.enter_async_context(serving(create_sla(settings), settings.sla_port))
        assert await eventually(lambda: _ready([intake, router, sla]), timeout=120)
        yield Urls(intake, sla)
