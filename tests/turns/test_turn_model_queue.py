"""TurnModelQueue: bounded Smart Turn admission — declines beyond its bounds, drops what nobody wants.

The inferences here are plain functions gated by events, so what is checked is the admission logic,
not the model or the machine's speed.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from voipbin.speech.turn_model import TurnModelQueue, turn_model_queue


def _gated(result: float) -> tuple[threading.Event, threading.Event, object]:
    started, release = threading.Event(), threading.Event()

    def infer() -> float:
        started.set()
        assert release.wait(10)
        return result

    return started, release, infer


async def _until(flag: threading.Event) -> None:
    assert await asyncio.to_thread(flag.wait, 10)


async def test_beyond_running_and_waiting_a_request_is_declined_at_once() -> None:
    q = TurnModelQueue(running=1, waiting=1)
    started, release, infer = _gated(0.9)
    first = asyncio.create_task(q.probability(infer, lambda: True))  # type: ignore[arg-type]
    await _until(started)
    second = asyncio.create_task(q.probability(lambda: 0.4, lambda: True))
    await asyncio.sleep(0.01)
    assert not second.done()  # waiting for the one slot
    assert await q.probability(lambda: 0.1, lambda: True) is None  # nowhere to wait: declined
    release.set()
    assert await first == 0.9 and await second == 0.4
    assert (q.stats.runs, q.stats.declined, q.stats.dropped, q.stats.expired) == (2, 1, 0, 0)


async def test_a_waiting_request_whose_pause_ended_is_dropped_and_the_next_one_runs() -> None:
    q = TurnModelQueue(running=1, waiting=2)
    started, release, infer = _gated(0.9)
    first = asyncio.create_task(q.probability(infer, lambda: True))  # type: ignore[arg-type]
    await _until(started)
    wanted = {"stale": True}
    ran: list[str] = []
    stale = asyncio.create_task(q.probability(lambda: ran.append("stale") or 0.5, lambda: wanted["stale"]))
    fresh = asyncio.create_task(q.probability(lambda: ran.append("fresh") or 0.7, lambda: True))
    await asyncio.sleep(0.01)
    wanted["stale"] = False  # the caller spoke again while it waited
    release.set()
    assert await first == 0.9
    assert await stale is None and await fresh == 0.7
    assert ran == ["fresh"] and q.stats.dropped == 1


async def test_a_request_that_waits_past_the_patience_expires_and_frees_its_place() -> None:
    q = TurnModelQueue(running=1, waiting=1, patience=0.05)
    started, release, infer = _gated(0.9)
    first = asyncio.create_task(q.probability(infer, lambda: True))  # type: ignore[arg-type]
    await _until(started)
    assert await q.probability(lambda: 0.5, lambda: True) is None  # waited 50 ms: too late to help
    assert q.stats.expired == 1
    late = asyncio.create_task(q.probability(lambda: 0.6, lambda: True))  # its place is free again
    await asyncio.sleep(0.01)
    release.set()
    assert await first == 0.9 and await late == 0.6
    assert q.stats.declined == 0


async def test_a_request_unwanted_by_the_time_a_worker_takes_it_is_not_run() -> None:
    q = TurnModelQueue(running=2, waiting=0)
    ran: list[bool] = []
    assert await q.probability(lambda: ran.append(True) or 0.5, lambda: False) is None
    assert ran == [] and q.stats.dropped == 1


async def test_cancelled_waiters_and_failures_give_their_slot_back() -> None:
    q = TurnModelQueue(running=1, waiting=2)
    started, release, infer = _gated(0.9)
    first = asyncio.create_task(q.probability(infer, lambda: True))  # type: ignore[arg-type]
    await _until(started)
    gone = asyncio.create_task(q.probability(lambda: 0.5, lambda: True))
    await asyncio.sleep(0.01)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    release.set()
    assert await first == 0.9

    def broken() -> float:
        raise RuntimeError("inference failed")

    with pytest.raises(RuntimeError):
        await q.probability(broken, lambda: True)
    # Every slot is free again: two requests in a row run at once, nothing declined or waiting.
    assert await q.probability(lambda: 0.3, lambda: True) == 0.3
    assert q.stats.declined == 0 and q.stats.expired == 0


async def test_the_process_queue_is_one_per_loop_and_leaves_a_pool_thread_free() -> None:
    from voipbin.speech.executor import inference_workers

    q = turn_model_queue()
    assert q is turn_model_queue()
    assert q.running == max(1, inference_workers() - 1) and q.waiting == q.running
