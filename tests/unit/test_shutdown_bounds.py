"""A service's stop ends, whatever its loops or a peer do. The loops beside a service
(``background``) end even when a cancel is lost: on Python 3.11 ``asyncio.wait_for`` returns its
result instead of raising when the cancel meets an awaited call that just finished, and PyMongo
connects and sends through it. A loop then ran on as if never cancelled, and the served app's
shutdown waited for it forever (the SLA's hang under load). The time limits here only detect a
hang; they are far above what any of this takes."""

import asyncio
import logging

import pytest

from shared.runtime import background, cancel_and_wait, every, finish_within

HANG = 60.0  # far beyond the half second a re-cancel takes: only a hang reaches it


async def test_a_loop_that_lost_its_cancel_still_ends() -> None:
    call_started, call_answered = asyncio.Event(), asyncio.Event()
    steps_after_stop = 0
    stopping = False

    async def step() -> None:
        nonlocal steps_after_stop
        steps_after_stop += stopping
        call_started.set()
        await asyncio.wait_for(call_answered.wait(), HANG)

    async with asyncio.timeout(HANG):
        async with background(lambda: every(0.01, step, "step"), within=HANG / 2):
            await call_started.wait()
            # The awaited call finishes in the same turn as the shutdown cancels the loop.
            call_answered.set()
            stopping = True
    # The loop ended within the bound (it may have turned a few times after its lost cancel).
    assert stopping and steps_after_stop < 1000


async def test_a_task_that_never_ends_is_left_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    released = False

    async def refuses_to_stop() -> None:
        while not released:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    stubborn = asyncio.create_task(refuses_to_stop(), name="stubborn")
    await asyncio.sleep(0)  # it runs up to its first await
    with caplog.at_level(logging.WARNING, logger="shared.runtime"):
        async with asyncio.timeout(HANG):
            await cancel_and_wait([stubborn], 1.0, "background loop")
    assert not stubborn.done()
    assert ("1 background loop(s) still running 1 s after being cancelled; leaving them: "
            "stubborn") in caplog.text
    released = True
    stubborn.cancel()
    await stubborn


async def test_a_stop_step_that_swallows_cancels_is_bounded(
        caplog: pytest.LogCaptureFixture) -> None:
    # asyncio.timeout would not bound this: it works by cancelling, and the cancel is eaten.
    released = False

    async def close_that_hangs() -> None:
        while not released:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    closing = asyncio.ensure_future(close_that_hangs())
    with caplog.at_level(logging.WARNING, logger="shared.runtime"):
        async with asyncio.timeout(HANG):
            await finish_within(closing, 1.0, "the store client's close")
    assert "the store client's close did not finish within 1 s; leaving it" in caplog.text
    assert not closing.done()
    released = True
    closing.cancel()
    await closing


async def test_a_failed_stop_step_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def close_that_fails() -> None:
        raise ConnectionResetError("peer gone")

    with caplog.at_level(logging.WARNING, logger="shared.runtime"):
        await finish_within(close_that_fails(), HANG, "the store client's close")
    assert "the store client's close failed: ConnectionResetError('peer gone')" in caplog.text
