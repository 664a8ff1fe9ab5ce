"""Helpers for integration tests: serve an app on a real port, read and write topics."""

import asyncio
import contextlib
import json
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from pymongo import monitoring
from pymongo.asynchronous.collection import AsyncCollection

from shared.mongo import Document
from shared.runtime import http_server_options
from shared.settings import Settings


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int, *, consumers_assigned: bool = True) -> AsyncIterator[str]:
    """Run the app (lifespan included: broker, store, loops) on a loopback port. The port opens
    before the app's consumer groups assign partitions; unless told otherwise this waits for
    that too (its /readyz ``consumers`` check), as tests expect a started service to consume."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           **http_server_options(Settings())))
    task = asyncio.create_task(_serve(server))
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start within 60 s")
        await asyncio.sleep(0.05)
    try:
        url = f"http://127.0.0.1:{port}"
        if consumers_assigned:
            await _consumers_assigned(url, deadline)
        yield url
    finally:
        server.should_exit = True
        await _stopped(server, task)



async def _serve(server: uvicorn.Server) -> None:
    """uvicorn ends a failed start-up (the app's lifespan raised, the port was taken) with
    SystemExit, which asyncio lets escape the event loop: the test's loop would stop with its
    fixtures unfinished, and the tests after it fail on what was left running. Here it is an
    ordinary error of this test (the cause is logged above it by uvicorn)."""
    try:
        await server.serve()
    except SystemExit as exit_:
        raise RuntimeError(f"the served app failed to start (uvicorn exit {exit_.code})") from None


async def serving_together(stack: contextlib.AsyncExitStack,
                           apps: Mapping[str, tuple[FastAPI, int]]) -> dict[str, str]:
    """Serve several apps as ``serving`` does, on ``stack``, started at the same time: on the
    embedded broker each app's consumer groups take seconds to join, and apps started one
    after another add those seconds up. Each is still awaited until its consumers are
    assigned; they stop in the reverse order of ``apps``, as if entered one by one."""
    starting = {name: serving(app, port) for name, (app, port) in apps.items()}
    started = await asyncio.gather(*(each.__aenter__() for each in starting.values()),
                                   return_exceptions=True)
    failed = next((r for r in started if isinstance(r, BaseException)), None)
    for each, result in zip(starting.values(), started, strict=True):
        if failed is not None and not isinstance(result, BaseException):
            await each.__aexit__(None, None, None)  # stop what did start, then fail
        elif failed is None:
            stack.push_async_exit(each)
    if failed is not None:
        raise failed
    return {name: str(url) for name, url in zip(starting, started, strict=True)}

SHUTDOWN_SECONDS = 60.0  # the broker client alone may take its 30 s bound


async def _stopped(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Wait for the app's shutdown, bounded: on a loaded machine a served app's shutdown has
    been seen to wait forever (an await without a time bound, not found yet: see README,
    Development). A test must not hang on it, so after SHUTDOWN_SECONDS the server is forced
    down and, if even that does not end it, left behind with a warning."""
    done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_SECONDS)
    if not done:
        warnings.warn(f"the served app did not stop within {SHUTDOWN_SECONDS:g} s; forcing it. "
                      f"Where each task waits:\n{task_dump()}", RuntimeWarning, stacklevel=2)
        server.force_exit = True
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)
    if done:
        with contextlib.suppress(asyncio.CancelledError):
            task.result()


def task_dump() -> str:
    """Every task of the running loop and the chain of awaits it is suspended in, innermost
    last: what a hang waits for."""
    lines = []
    for each in asyncio.all_tasks():
        lines.append(f"  {each.get_name()}: {' -> '.join(_awaits(each.get_coro())) or '?'}")
    return "\n".join(sorted(lines))


def _awaits(awaitable: object) -> list[str]:
    chain: list[str] = []
    while awaitable is not None and len(chain) < 50:
        frame = next((getattr(awaitable, a) for a in ("cr_frame", "ag_frame", "gi_frame")
                      if getattr(awaitable, a, None) is not None), None)
        if frame is None:
            chain.append(type(awaitable).__name__)  # a future, a shield, a C-level awaitable
            break
        chain.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 2)[-1]}:"
                     f"{frame.f_lineno})")
        awaitable = next((getattr(awaitable, a) for a in ("cr_await", "ag_await", "gi_yieldfrom")
                          if getattr(awaitable, a, None) is not None), None)
    return chain


async def _consumers_assigned(url: str, deadline: float) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        while True:
            response = await http.get(f"{url}/readyz")
            checks = response.json().get("checks", {}) if response.status_code in (200, 503) else {}
            if checks.get("consumers", {"ok": True})["ok"]:
                return
            if time.monotonic() > deadline + 60:
                raise TimeoutError(f"consumers of {url} not assigned: {checks.get('consumers')}")
            await asyncio.sleep(0.1)


async def produce(bootstrap: str, topic: str, messages: list[tuple[str | None, bytes]], *,
                  options: Mapping[str, Any] | None = None) -> None:
    """``options``: more aiokafka client options (a secured broker's credentials)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **(options or {}))
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key.encode() if key else None)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, *, expect: int, timeout: float = 30.0,
                     settle: float = 0.0, options: Mapping[str, Any] | None = None,
                     ) -> list[dict[str, Any]]:
    """Read a topic from the start until ``expect`` messages arrived (or time ran out); with
    ``settle``, keep reading that long afterwards to catch any extra (duplicate) message."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False, **(options or {}))
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(found) < expect and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            found.extend(json.loads(r.value) for rs in batches.values() for r in rs)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            batches = await consumer.getmany(timeout_ms=300)
            found.extend(json.loads(r.value) for rs in batches.values() for r in rs)
    finally:
        await consumer.stop()
    return found


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0) -> Any:
    """Poll until ``check`` returns something truthy; the last value is returned or raised."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def json_when_ok(http: httpx.AsyncClient, url: str,
                       headers: dict[str, str]) -> dict[str, Any] | None:
    """For `eventually`: the answer's JSON once it is 200. Intake learns which agency holds a
    ticket from the ticket's events, a moment after the SLA service has the ticket, so an
    agency's first read at intake may still be a 404."""
    response = await http.get(url, headers=headers)
    return response.json() if response.status_code == 200 else None


async def at_least(collection: AsyncCollection[Document], n: int) -> bool:
    """For `eventually`: has the collection reached ``n`` documents?"""
    return await collection.count_documents({}) >= n


@dataclass
class Commands(monitoring.CommandListener):
    """The store commands a client sent, in order: each as (command, collection), and how many
    documents it carried (inserted, or update/delete statements; 0 for the others)."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        self.sent.append((name, str(event.command.get(name, ""))))
        self.rows.append(next((len(event.command[f]) for f in ("documents", "updates", "deletes")
                               if f in event.command), 0))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def clear(self) -> None:
        self.sent.clear()
        self.rows.clear()

    def on(self, collection: str) -> list[str]:
        return [name for name, target in self.sent if target == collection]

    def with_rows(self) -> list[tuple[str, str, int]]:
        return [(name, target, rows) for (name, target), rows in zip(self.sent, self.rows, strict=True)]
