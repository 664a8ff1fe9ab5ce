"""The pipeline benchmark's bounded replay (benchmarks/commands.py): each recorded command is
sent once, in the stream's order, with at most the given number unanswered, and never before
the stream's earlier writes to its collection were answered (an update overtaking its insert
would cost the store less than it cost the service). A fake sender stands for the store; it
answers after a few turns of the event loop, no clocks involved."""

import asyncio
from dataclasses import dataclass, field

import pytest

from benchmarks.commands import send_bounded
from shared.mongo import Document


@dataclass
class FakeStore:
    turns: int = 3  # event-loop turns before an answer
    started: list[int] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    unanswered_at_start: list[int] = field(default_factory=list)  # per command, itself included
    most_unanswered: int = 0
    log: list[tuple[str, int]] = field(default_factory=list)

    async def send(self, command: Document) -> None:
        self.log.append(("start", command["n"]))
        self.started.append(command["n"])
        self.unanswered_at_start.append(len(self.started) - len(self.answered))
        self.most_unanswered = max(self.most_unanswered, len(self.started) - len(self.answered))
        for _ in range(self.turns):
            await asyncio.sleep(0)
        self.answered.append(command["n"])
        self.log.append(("answer", command["n"]))


def stream(*commands: tuple[str, str]) -> list[Document]:
    return [{name: collection, "n": n} for n, (name, collection) in enumerate(commands)]


READS = stream(*[("find", f"c{n % 5}") for n in range(40)])


@pytest.mark.parametrize("in_flight", [1, 4, 16])
async def test_every_command_is_sent_once_in_order_with_at_most_the_bound_unanswered(in_flight: int) -> None:
    store = FakeStore()
    await send_bounded(READS, store.send, in_flight)
    assert store.started == list(range(40))
    assert sorted(store.answered) == list(range(40))
    assert store.most_unanswered == in_flight  # reached, never passed


async def test_one_in_flight_waits_for_each_answer() -> None:
    store = FakeStore()
    await send_bounded(READS, store.send, 1)
    assert store.answered == list(range(40))
    assert set(store.unanswered_at_start) == {1}


async def test_a_command_waits_for_the_earlier_writes_to_its_collection_only() -> None:
    commands = stream(("insert", "tickets"), ("find", "audit_log"), ("update", "tickets"),
                      ("find", "tickets"), ("insert", "audit_log"), ("delete", "tickets"),
                      ("findAndModify", "tickets"), ("find", "tickets"))
    store = FakeStore()
    await send_bounded(commands, store.send, 8)
    assert sorted(store.started) == list(range(8))
    # a command on tickets starts only once the earlier writes to tickets were answered...
    for write, later in [(0, 2), (0, 3), (2, 3), (2, 5), (5, 6), (6, 7)]:
        assert store.log.index(("answer", write)) < store.log.index(("start", later))
    # ...while the commands on audit_log went meanwhile
    assert store.log.index(("start", 1)) < store.log.index(("answer", 0))
    assert store.log.index(("start", 4)) < store.log.index(("answer", 2))


async def test_a_failed_write_still_lets_the_later_commands_go() -> None:
    sent: list[int] = []

    async def refusing(command: Document) -> None:
        sent.append(command["n"])
        if command["n"] == 0:
            raise RuntimeError("duplicate key")

    with pytest.raises(RuntimeError):
        await send_bounded(stream(("insert", "tickets"), ("update", "tickets")), refusing, 4)
    assert sent == [0, 1]
