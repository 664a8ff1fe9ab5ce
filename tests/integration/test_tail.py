"""`disposisi tail` as an operator runs it, a process of its own against the suite's broker
(the embedded Tansu by default): it prints a topic's events one JSON object per line, keeps
to one ticket when asked, starts at the end unless told otherwise, and stops cleanly on
Ctrl-C."""

import asyncio
import contextlib
import json
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.kafka import ensure_topics
from shared.settings import Settings
from tests.integration.support import produce

pytestmark = pytest.mark.integration


def event(ticket_id: str, n: int) -> bytes:
    return json.dumps({"id": f"e-{ticket_id}-{n}", "type": "ticket.update",
                       "ticket_id": ticket_id, "data": {"n": n}}).encode()


@contextlib.asynccontextmanager
async def tailing(settings: Settings, topic: str, *flags: str,
                  ) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "tail", topic, *flags,
        "--bootstrap-servers", settings.kafka_bootstrap_servers,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def started(process: asyncio.subprocess.Process) -> str:
    """The notice on stderr that reading has begun (its place is settled by then)."""
    assert process.stderr is not None
    line = await asyncio.wait_for(process.stderr.readline(), 120)
    return line.decode()


async def read_lines(process: asyncio.subprocess.Process, n: int) -> list[dict[str, Any]]:
    assert process.stdout is not None
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while len(found) < n:
        line = await asyncio.wait_for(process.stdout.readline(), max(1, deadline - time.monotonic()))
        assert line, "tail ended early"
        found.append(json.loads(line))
    return found


async def interrupted(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """Ctrl-C (SIGINT), then what it printed after and how it ended."""
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def new_topic(settings: Settings) -> str:
    topic = f"disposisi.test.tail.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    return topic


async def test_from_the_beginning_it_prints_one_tickets_events_and_stops_on_ctrl_c(
        settings: Settings) -> None:
    topic = await new_topic(settings)
    await produce(settings.kafka_bootstrap_servers, topic, [
        ("BKL-A", event("BKL-A", 1)), ("BKL-B", event("BKL-B", 1)), ("BKL-A", b"not json \xff"),
        ("BKL-A", event("BKL-A", 2))])
    async with tailing(settings, topic, "--from-beginning", "--ticket", "BKL-A") as process:
        assert "from the oldest" in await started(process)
        printed = await read_lines(process, 3)
        status, rest, errors = await interrupted(process)
    assert status == 0 and "Traceback" not in errors
    assert rest == ""  # nothing of the other ticket came after
    events = [p for p in printed if "undecodable" not in p]
    assert [e["id"] for e in events] == ["e-BKL-A-1", "e-BKL-A-2"]
    [raw] = [p for p in printed if "undecodable" in p]
    assert raw["key"] == "BKL-A" and raw["undecodable"].startswith("not json")
    assert raw["topic"] == topic and isinstance(raw["offset"], int)


async def test_by_default_only_events_published_after_it_started_are_printed(
        settings: Settings) -> None:
    topic = await new_topic(settings)
    await produce(settings.kafka_bootstrap_servers, topic, [("BKL-OLD", event("BKL-OLD", 1))])
    async with tailing(settings, topic) as process:
        assert "from the end" in await started(process)
        await produce(settings.kafka_bootstrap_servers, topic, [("BKL-NEW", event("BKL-NEW", 1))])
        [printed] = await read_lines(process, 1)
        status, rest, errors = await interrupted(process)
    assert printed == json.loads(event("BKL-NEW", 1))
    assert status == 0 and rest == "" and "Traceback" not in errors


async def test_an_unknown_topic_is_named_and_refused(settings: Settings) -> None:
    async with tailing(settings, "disposisi.no.such.topic") as process:
        _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 2
    assert "no topic 'disposisi.no.such.topic'" in err.decode()
