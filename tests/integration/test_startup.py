"""A service restarted after a kill -9 opens its HTTP port at once: its consumer group first
waits out the killed member's session, and meanwhile /healthz answers, /readyz says the
consumers are not ready, and complaints are accepted (stored, then published)."""

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
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
# partitions to anyone else, and the test must look at intake within it. The embedded broker
# takes about twice the session from the kill to the assignment (and holds the member's own
# join for half of it), so the test first tries a short one; if intake was not even up and
# looked at before the group assigned (a loaded machine), that try proved nothing either
# way, and it runs again with a session longer than the start-up of intake under any load.
DEAD_SESSIONS_MS = (20_000, 60_000)
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


def _join_and_get_killed(bootstrap: str, topic: str, group: str, session_ms: int) -> None:
    """A member of ``group`` that holds its partitions, then dies without leaving the group."""
    member = subprocess.Popen([sys.executable, "-c", MEMBER, bootstrap, topic, group,
                               str(session_ms)], stdout=subprocess.PIPE, text=True)
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
    for session_ms in DEAD_SESSIONS_MS:
        broker = start_kafka(free_port(), tmp_path / str(session_ms))  # the dead member stays there
        try:
            seen = await _start_after_a_dead_member(
                settings.model_copy(update={"kafka_bootstrap_servers": broker.address,
                                            **EMBEDDED_KAFKA_SETTINGS}), web.headers, session_ms)
        finally:
            broker.stop()
        if not seen.assigned_before_looked or session_ms == DEAD_SESSIONS_MS[-1]:
            break
    assert seen.alive.status_code == 200
    assert seen.code == 503 and "consumers" in seen.waiting["failed"], seen.waiting
    assert "disposisi-intake)" in seen.waiting["checks"]["consumers"]["problem"]
    assert seen.accepted.status_code == 202, "the API works while the consumers join"
    assert seen.became_ready, "ready once the dead member's session ran out and partitions were assigned"


@dataclass
class _Seen:
    alive: httpx.Response
    code: int
    waiting: dict[str, Any]
    accepted: httpx.Response
    became_ready: bool
    assigned_before_looked: bool  # the group was done before the first look: a try too short


async def _start_after_a_dead_member(settings: Settings, headers: dict[str, str],
                                     session_ms: int) -> _Seen:
    await ensure_topics(settings, [Topics.SUBMITTED])
    await asyncio.to_thread(_join_and_get_killed, settings.kafka_bootstrap_servers,
                            Topics.SUBMITTED, "disposisi-intake", session_ms)
    killed = time.monotonic()
    async with serving(create_intake(settings), settings.intake_port,
                       consumers_assigned=False) as url, \
            httpx.AsyncClient(timeout=30) as http:
        alive = await http.get(f"{url}/healthz")
        code, waiting = await _readiness(http, url)
        # Before the dead member's session ran out (counted from its last heartbeat, at most
        # aiokafka's 3 s before the kill) nothing can have been assigned; past it, a ready
        # answer says nothing about the port opening first.
        looked_late = time.monotonic() - killed >= session_ms / 1000 - 3
        accepted = await http.post(f"{url}/v1/complaints", headers=headers, json={
            "channel": "web", "text": "Lampu jalan di Jl. Hibrida mati, gelap sekali"})

        async def ready() -> bool:
            return (await _readiness(http, url))[0] == 200

        became_ready = await eventually(ready, timeout=2 * session_ms / 1000 + 120)
    return _Seen(alive, code, waiting, accepted, became_ready,
                 assigned_before_looked=looked_late and code == 200)
