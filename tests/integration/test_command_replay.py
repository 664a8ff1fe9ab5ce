"""The pipeline benchmark's recording and replay (benchmarks/commands.py) on the real store:
every command a client sent within the window is recorded (with the documents of its grouped
writes) and sent again, once per number in flight, to a fresh database with the source's
unique index; a find's cursor is read to its end as the service read it; the replay's
databases are dropped afterwards."""

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import DuplicateKeyError

from benchmarks.commands import Recorder, command_mix, replay, written
from shared.mongo import Document

pytestmark = pytest.mark.integration


@dataclass
class Sent(monitoring.CommandListener):
    """The commands the replay's client sent, by database and name."""
    commands: Counter[tuple[str, str]] = field(default_factory=Counter)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands[event.database_name, event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_replay_sends_every_recorded_command_for_each_number_in_flight(
        mongodb_url: str, tmp_path: Path) -> None:
    source = f"test_{uuid.uuid4().hex[:12]}"
    recording = tmp_path / "service.commands"
    with recording.open("wb", buffering=0) as out:
        client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url,
                                                              event_listeners=[Recorder(out)])
        try:
            tickets = client[source]["tickets"]
            await tickets.create_index("code", unique=True)
            window_start = time.time()
            await tickets.insert_many([{"_id": i, "code": f"T{i}", "open": True} for i in range(150)])
            for i in range(10):
                await tickets.update_one({"_id": i}, {"$set": {"open": False}})
            with pytest.raises(DuplicateKeyError):  # refused, a round trip all the same
                await tickets.insert_one({"_id": 1000, "code": "T0"})
            assert len(await tickets.find({}).to_list(None)) == 150  # 101, then a getMore
            window = (window_start, time.time())
        finally:
            await client.close()

    sent = Sent()
    replayed = await replay(mongodb_url, source, [recording], window,
                            client_options={"event_listeners": [sent]}, in_flight=(1, 4))

    recorded = command_mix([recording], window)
    assert recorded == Counter({"insert tickets": 2, "update tickets": 10, "find tickets": 1})
    assert written([recording], window) == Counter({"insert tickets": 151, "update tickets": 10})
    assert replayed.commands == 13 and set(replayed.seconds) == {1, 4}
    assert replayed.follow_ups == 1
    for in_flight in (1, 4):
        target = f"{source}_replay{in_flight}"
        assert sent.commands[target, "insert"] == 2
        assert sent.commands[target, "update"] == 10
        assert sent.commands[target, "find"] == 1
        assert sent.commands[target, "getMore"] == 1
        assert sent.commands[target, "createIndexes"] == 1  # the unique code, as in the source
    client = AsyncMongoClient(mongodb_url)
    try:
        names = await client.list_database_names()
        assert not any(name.startswith(f"{source}_replay") for name in names)
        await client.drop_database(source)
    finally:
        await client.close()
