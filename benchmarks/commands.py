"""The store commands a service sends, recorded and replayed: how the pipeline benchmark finds
the store's own limit for the pipeline's command mix.

A service started as ``python -m benchmarks.commands record FILE SERVICE`` runs as
``disposisi SERVICE`` does, with a PyMongo command listener that appends every command it
sends (as BSON, length-prefixed) to FILE. ``replay`` sends the recorded commands again, all
services' streams at once, to a fresh database with the same indexes, as fast as the store
answers them, once for each of a few numbers of commands in flight per stream: the services
keep many commands in flight (grouped writes, concurrent handlers, a connection pool), so one
at a time would measure the replay's round trips rather than the store. The quickest of those
times is the store's own limit for exactly that mix.
"""

import asyncio
import atexit
import contextlib
import struct
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import bson
from pymongo import AsyncMongoClient, monitoring

from shared.mongo import Document

# Not replayed: cursor follow-ups (their cursor ids are the recording's), session and
# transaction bookkeeping, and the client's own handshakes and health pings.
SKIPPED = {"getMore", "killCursors", "endSessions", "commitTransaction", "abortTransaction",
           "hello", "isMaster", "ismaster", "ping", "buildInfo", "saslStart", "saslContinue",
           "listIndexes", "createIndexes", "listCollections", "count", "dropDatabase"}
# Fields the recording's client and session added; the replaying client adds its own.
DROPPED = {"lsid", "$clusterTime", "txnNumber", "autocommit", "startTransaction", "$db",
           "$readPreference", "readConcern", "writeConcern", "signature"}


class Recorder(monitoring.CommandListener):
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in SKIPPED:
            return
        data = bson.encode({"db": event.database_name, "at": time.time(), "command": event.command})
        self.out.write(struct.pack("<i", len(data)) + data)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


Window = tuple[float, float]  # epoch seconds, the recording's clock


def recorded(path: Path, window: Window) -> Iterator[tuple[str, Document]]:
    """The commands sent within ``window``."""
    with path.open("rb") as source:
        while len(header := source.read(4)) == 4:
            (size,) = struct.unpack("<i", header)
            body = source.read(size)
            if len(body) < size:  # the service is still writing this one
                return
            entry = bson.decode(body)
            if window[0] <= entry["at"] <= window[1]:
                yield entry["db"], entry["command"]


def command_mix(paths: list[Path], window: Window) -> Counter[str]:
    """How many commands of each kind (name and collection) the services sent."""
    mix: Counter[str] = Counter()
    for path in paths:
        for _, command in recorded(path, window):
            name = next(iter(command))
            mix[f"{name} {command[name]}"] += 1
    return mix


def written(paths: list[Path], window: Window) -> Counter[str]:
    """How many documents the services' writes carried, by kind: one grouped insert of 300
    complaints is one command but 300 documents, so this, not the command count, shows
    whether every complaint's writes are in the recording."""
    rows: Counter[str] = Counter()
    for path in paths:
        for _, command in recorded(path, window):
            name = next(iter(command))
            for field in ("documents", "updates", "deletes"):
                if isinstance(command.get(field), list):
                    rows[f"{name} {command[name]}"] += len(command[field])
    return rows


async def copy_indexes(client: AsyncMongoClient[Document], source: str, target: str) -> None:
    for name in await client[source].list_collection_names():
        for index in await (await client[source][name].list_indexes()).to_list(None):
            if index["name"] == "_id_":
                continue
            options = {k: v for k, v in index.items() if k in ("unique", "expireAfterSeconds")}
            await client[target][name].create_index(list(index["key"].items()), **options)


# Commands that change a collection: a later command of the same stream on that collection
# waits for them (see ``send_bounded``).
WRITES = {"insert", "update", "delete", "findAndModify"}
# Replies that open a cursor, which the service read to its end with getMore (not recorded).
CURSORS = {"find", "aggregate"}
IN_FLIGHT = (1, 4, 16, 64)  # per stream, the replay's tries


def collection_of(command: Document) -> str:
    return str(next(iter(command.values())))


def is_write(command: Document) -> bool:
    return next(iter(command)) in WRITES


async def send_bounded(stream: Sequence[Document], send: Callable[[Document], Awaitable[None]],
                       in_flight: int) -> None:
    """Send the stream's commands in their order, at most ``in_flight`` unanswered at once.
    A command also waits until the stream's earlier writes to its collection are answered: an
    update overtaking the insert of its document, or a find overtaking the writes it read,
    would find less and cost the store less than it did the service."""
    slots = asyncio.Semaphore(in_flight)
    last_write: dict[str, asyncio.Task[None]] = {}

    async def after(earlier: asyncio.Task[None] | None, command: Document) -> None:
        try:
            if earlier is not None:
                await asyncio.wait([earlier])  # answered, whether it failed or not
            await send(command)
        finally:
            slots.release()

    tasks: list[asyncio.Task[None]] = []
    for command in stream:
        await slots.acquire()
        task = asyncio.create_task(after(last_write.get(collection_of(command)), command))
        tasks.append(task)
        if is_write(command):
            last_write[collection_of(command)] = task
    # Every command answered before the first error (if any) is raised.
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


@dataclass
class Replay:
    """Seconds each number of commands in flight per stream took, and the store's CPU seconds
    meanwhile (steadier than a time on a loaded machine); commands sent each time."""
    seconds: dict[int, float]
    store_cpu: dict[int, float]
    commands: int
    follow_ups: int  # getMore of the cursors the replayed finds opened, in the last try

    @property
    def best(self) -> tuple[int, float]:
        return min(self.seconds.items(), key=lambda item: item[1])


async def replay(url: str, source_db: str, paths: list[Path], window: Window, *,
                 client_options: dict[str, Any], in_flight: Sequence[int] = IN_FLIGHT,
                 store_cpu: Callable[[], float] = lambda: 0.0) -> Replay:
    """Send every recorded command again, all streams at once, each to a fresh database with
    the source's indexes, once for each number in ``in_flight``. ``store_cpu``: the store
    process's CPU seconds so far, where the caller can read them."""
    streams = [[{k: v for k, v in command.items() if k not in DROPPED}
                for _, command in recorded(path, window)] for path in paths]
    seconds: dict[int, float] = {}
    cpu: dict[int, float] = {}
    follow_ups = 0
    for count in in_flight:
        before = store_cpu()
        seconds[count], follow_ups = await _replay_once(url, source_db, streams, count,
                                                         client_options)
        cpu[count] = store_cpu() - before
    return Replay(seconds, cpu, sum(map(len, streams)), follow_ups)


async def _replay_once(url: str, source_db: str, streams: list[list[Document]], in_flight: int,
                       client_options: dict[str, Any]) -> tuple[float, int]:
    # Enough connections that the pool never holds a command back.
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        url, **{**client_options, "maxPoolSize": max(100, in_flight * len(streams))})
    target = f"{source_db}_replay{in_flight}"
    follow_ups = 0
    try:
        await copy_indexes(client, source_db, target)
        database = client[target]

        async def send(command: Document) -> None:
            nonlocal follow_ups
            # A duplicate key or a refused write still cost the store a round trip.
            with contextlib.suppress(Exception):
                async with client.start_session() as session:  # a cursor belongs to its session
                    reply = await database.command(command, session=session)
                    cursor = reply.get("cursor", {}) if next(iter(command)) in CURSORS else {}
                    while cursor.get("id"):
                        reply = await database.command(
                            {"getMore": cursor["id"], "collection": collection_of(command)},
                            session=session)
                        cursor = reply["cursor"]
                        follow_ups += 1

        started = time.perf_counter()
        await asyncio.gather(*(send_bounded(stream, send, in_flight) for stream in streams))
        elapsed = time.perf_counter() - started
        await client.drop_database(target)
        return elapsed, follow_ups
    finally:
        await client.close()


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[1] != "record":
        raise SystemExit("usage: python -m benchmarks.commands record FILE SERVICE [ARGS...]")
    # Unbuffered: a service stopped by a signal loses none of its recording.
    out = Path(sys.argv[2]).open("wb", buffering=0)  # noqa: SIM115 - open for its life
    atexit.register(out.close)
    monitoring.register(Recorder(out))
    from services.cli import main as service_main

    raise SystemExit(service_main(sys.argv[3:]))


if __name__ == "__main__":
    main()
