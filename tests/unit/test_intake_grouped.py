"""``flows.Grouped`` with a stand-in for the store write: submissions that arrive while a write
is in flight go together in the next one; when that write fails every caller of the group gets
the error (none is answered as stored), and the next group is written as usual."""

import asyncio
from typing import Any

import pytest

from services.intake.flows import Grouped, Submission
from shared.contracts import ComplaintSubmission
from shared.mongo import Document

TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"


class Writes:
    """Records each write's keys; the write numbered ``failing`` raises."""

    def __init__(self, failing: int) -> None:
        self.groups: list[list[str | None]] = []
        self.failing = failing

    async def store(self, submissions: list[Submission]) -> list[Document]:
        self.groups.append([s.key for s in submissions])
        await asyncio.sleep(0.01)  # in flight: later callers queue for the next write
        if len(self.groups) == self.failing:
            raise ConnectionError("store away")
        return [{"_id": s.key, "ticket_id": f"T-{s.key}"} for s in submissions]


def grouped(writes: Writes, most: int = 50) -> Grouped:
    intake: Any = type("StandIn", (), {"store": writes.store})()
    return Grouped(intake, most=most)


def submission(key: str) -> Submission:
    return Submission(ComplaintSubmission(channel="web", text=TEXT), key)


async def test_a_failed_write_fails_every_caller_of_its_group_and_the_next_goes_on() -> None:
    writes = Writes(failing=2)
    group = grouped(writes)
    first = asyncio.ensure_future(group.store(submission("a")))
    await asyncio.sleep(0)  # the first write is in flight
    failing = [asyncio.ensure_future(group.store(submission(k))) for k in "bcd"]
    assert (await first)["_id"] == "a"
    for waiting in failing:
        with pytest.raises(ConnectionError):
            await waiting
    assert (await group.store(submission("e")))["_id"] == "e"
    assert writes.groups == [["a"], ["b", "c", "d"], ["e"]]


async def test_one_key_twice_never_shares_a_write_and_groups_are_bounded() -> None:
    writes = Writes(failing=0)
    group = grouped(writes, most=2)
    first = asyncio.ensure_future(group.store(submission("a")))
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(group.store(submission(k))) for k in ("x", "x", "y", "z")]
    docs = await asyncio.gather(first, *later)
    assert [d["_id"] for d in docs] == ["a", "x", "x", "y", "z"]
    assert writes.groups == [["a"], ["x", "y"], ["x", "z"]]
