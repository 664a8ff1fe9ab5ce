"""A service restarted after a kill -9 opens its HTTP port at once: its consumer group first
waits out the killed member's session, and meanwhile /healthz answers, /readyz says the
consumers are not ready, and complaints are accepted (stored, then published)."""

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake.app import create_app as create_intake
from shared.contracts import Topics
from shared.embedded import free_port, start_kafka
from shared.kafka import ensure_topics
from shared.settings import Settings
from tests.conftest import EMBEDDED_KAFKA_SETTINGS
from tests.integration.auth_support import Accounts
from tests.integration.support import eventually, serving

pytestmark = pytest.mark.integration

# The killed member's session: the group waits at least this long for it before assigning
# partitions to anyone else. Longer than the start-up of intake on a loaded machine.
DEAD_SESSION_MS = 45_000
MEMBER = textwrap.dedent("""
    import asyncio, sys
    from aiokafka import AIOKafkaConsumer

    async def main() -> None:
        consumer = AIOKafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1],
                                    group_id=sys.argv[3], session_timeout_ms=int(sys.argv[4]),
                                    rebalance_timeout_ms=int(sys.argv[4]))
        await consumer.start()  # returns once partitions are assigned
        print("assigned", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


def _join_and_get_killed(bootstrap: str, topic: str, group: str) -> None:
    """A member of ``group`` that holds its partitions, then dies without leaving the group."""
    member = subprocess.Popen([sys.executable, "-c", MEMBER, bootstrap, topic, group,
                               str(DEAD_SESSION_MS)], stdout=subprocess.PIPE, text=True)
    try:
        assert member.stdout is not None and member.stdout.readline().strip() == "assigned"
    finally:
        member.send_signal(signal.SIGKILL)
        member.wait()


async def _readiness(http: httpx.AsyncClient, url: str) -> tuple[int, dict[str, Any]]:
    response = await http.get(f"{url}/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_the_port_opens_before_the_consumer_group_assigns_partitions(
        settings: Settings, tmp_path: Path, accounts: Accounts) -> None:
    web = await accounts.channel("web")
    broker = start_kafka(free_port(), tmp_path)  # its own: the group's dead member stays there
    settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.address,
                                           **EMBEDDED_KAFKA_SETTINGS})
    try:
        await ensure_topics(settings, [Topics.SUBMITTED])
        await asyncio.to_thread(_join_and_get_killed, broker.address, Topics.SUBMITTED,
                                "disposisi-intake")
        async with serving(create_intake(settings), settings.intake_port,
                           consumers_assigned=False) as url, \
                httpx.AsyncClient(timeout=30) as http:
            alive = await http.get(f"{url}/healthz")
            code, waiting = await _readiness(http, url)
            accepted = await http.post(f"{url}/v1/complaints", headers=web.headers, json={
                "channel": "web", "text": "Lampu jalan di Jl. Hibrida mati, gelap sekali"})

            async def ready() -> bool:
                return (await _readiness(http, url))[0] == 200

            became_ready = await eventually(ready, timeout=DEAD_SESSION_MS / 1000 + 120)
    finally:
        broker.stop()
    assert alive.status_code == 200
    assert code == 503 and "consumers" in waiting["failed"], waiting
    assert "disposisi-intake)" in waiting["checks"]["consumers"]["problem"]
    assert accepted.status_code == 202, "the API works while the consumers join"
    assert became_ready, "ready once the dead member's session ran out and partitions were assigned"
