"""The store commands a service sends, recorded and replayed: how the pipeline benchmark finds
the store's own limit for the pipeline's command mix.

A service started as ``python -m benchmarks.commands record FILE SERVICE`` runs as
``disposisi SERVICE`` does, with a PyMongo command listener that appends every command it
sends (as BSON, length-prefixed) to FILE. ``replay`` sends the recorded commands again, in
each service's order, to a fresh database with the same indexes, as fast as the store
answers them: the time that takes is the store's own limit for exactly that mix.
"""

import asyncio
import atexit
import contextlib
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterator
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


async def copy_indexes(client: AsyncMongoClient[Document], source: str, target: str) -> None:
    for name in await client[source].list_collection_names():
        for index in await (await client[source][name].list_indexes()).to_list(None):
            if index["name"] == "_id_":
                continue
            options = {k: v for k, v in index.items() if k in ("unique", "expireAfterSeconds")}
            await client[target][name].create_index(list(index["key"].items()), **options)


async def replay(url: str, source_db: str, paths: list[Path], window: Window, *,
                 client_options: dict[str, Any]) -> tuple[float, int]:
    """Send every recorded command again, each service's stream in its own order and all
    streams at once, to a fresh database with the source's indexes; (seconds, commands)."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, **client_options)
    target = f"{source_db}_replay"
    try:
        await copy_indexes(client, source_db, target)
        streams = [[{k: v for k, v in command.items() if k not in DROPPED}
                    for _, command in recorded(path, window)] for path in paths]
        database = client[target]

        async def run(stream: list[Document]) -> None:
            for command in stream:
                # A duplicate key or a refused write still cost the store a round trip.
                with contextlib.suppress(Exception):
                    await database.command(command)

        started = time.perf_counter()
        await asyncio.gather(*(run(stream) for stream in streams))
        elapsed = time.perf_counter() - started
        await client.drop_database(target)
        return elapsed, sum(map(len, streams))
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
