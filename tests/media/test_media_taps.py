"""Taps: bounded, drop-oldest, batch wake-ups, close semantics (no sockets needed)."""

from __future__ import annotations

import asyncio

import pytest

from voipbin.media.taps import Frame, Tap, TapClosed


def frame(i: int) -> Frame:
    return Frame("in", i, bytes(320))


async def test_drop_oldest_counts() -> None:
    tap = Tap(frozenset({"in"}), maxsize=3)
    for i in range(10):
        tap.put(frame(i))
    assert tap.dropped == 7
    assert [(await tap.get()).tick for _ in range(3)] == [7, 8, 9]


async def test_get_batch_wakes_once_per_batch() -> None:
    tap = Tap(frozenset({"in"}), maxsize=50)
    task = asyncio.create_task(tap.get_batch(5))
    await asyncio.sleep(0)
    for i in range(4):
        tap.put(frame(i))
        await asyncio.sleep(0)
        assert not task.done()  # fewer than 5 frames: the consumer stays asleep
    tap.put(frame(4))
    batch = await asyncio.wait_for(task, 1)
    assert [f.tick for f in batch] == [0, 1, 2, 3, 4]


async def test_close_releases_waiters_and_drains() -> None:
    tap = Tap(frozenset({"in"}), maxsize=50)
    tap.put(frame(1))
    waiter = asyncio.create_task(tap.get_batch(10))
    await asyncio.sleep(0)
    tap.close()
    assert [f.tick for f in await waiter] == [1]  # leftovers are still delivered
    with pytest.raises(TapClosed):
        await tap.get_batch(1)
    with pytest.raises(TapClosed):
        await tap.get()
    tap.put(frame(2))  # ignored after close
    assert tap.qsize() == 0


async def test_async_iteration_ends_on_close() -> None:
    tap = Tap(frozenset({"in"}), maxsize=50)
    for i in range(3):
        tap.put(frame(i))
    tap.close()
    assert [f.tick async for f in tap] == [0, 1, 2]
