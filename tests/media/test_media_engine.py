"""The media clock lives on its own thread: a stalled control loop must not stall the audio."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time

import numpy as np
from media_helpers import make_pair, sine

from voipbin.media import MediaSession
from voipbin.media.engine import MediaEngine, media_metrics, start_loop_lag_probe, stop_loop_lag_probe
from voipbin.media.rtp import parse_plain


async def block_control_loop(seconds: float) -> tuple[float, float]:
    """Run a callback on this (the control) loop that holds it for ``seconds`` in ``time.sleep``, as a
    slow synchronous call would; returns when it was blocked (monotonic start, end)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[float, float]] = loop.create_future()

    def hog() -> None:
        start = time.monotonic()
        time.sleep(seconds)
        done.set_result((start, time.monotonic()))

    loop.call_soon(hog)
    return await done


class _Receiver:
    """A bare UDP peer on its own thread that timestamps every RTP packet as it arrives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.arrivals: list[tuple[float, int]] = []  # (monotonic time, RTP timestamp)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            parsed = parse_plain(data)
            if parsed is not None:
                self.arrivals.append((time.monotonic(), parsed[3]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def max_gap_ms(self, since: float, until: float) -> float:
        times = [t for t, _ in self.arrivals if since <= t <= until]
        return max((b - a) * 1000 for a, b in itertools.pairwise(times)) if len(times) > 1 else 1e9


async def test_blocked_control_loop_does_not_stall_playout() -> None:
    """The control loop sleeps 200 ms in a callback (as a slow DB call or a GC pause on it would):
    the peer keeps receiving a packet every 20 ms, with contiguous timestamps and the queued audio."""
    rx = _Receiver()
    ms = await MediaSession.create(host="127.0.0.1")
    try:
        ms.negotiate("127.0.0.1", rx.port, 0)
        ms.start()
        assert await ms.enqueue(sine(440, 1.0), final=True)
        await asyncio.sleep(0.2)
        before = len(rx.arrivals)
        t_block, t_unblock = await block_control_loop(0.2)  # no callback, no task runs meanwhile
        await asyncio.sleep(0.1)
        during = [t for t, _ in rx.arrivals if t_block <= t <= t_unblock]
        assert len(during) >= 7, f"only {len(during)} packets arrived while the control loop was blocked"
        assert rx.max_gap_ms(t_block - 0.05, t_unblock + 0.05) <= 40
        stamps = [ts for _, ts in rx.arrivals[before:]]
        assert all((b - a) % 2**32 == 160 for a, b in itertools.pairwise(stamps))
        assert ms.stats.skipped_ticks == 0
        assert ms.stats.max_gap_out_ms < 1000  # tracked (the bound is the machine's, not asserted)
    finally:
        await ms.close()
        rx.close()


async def test_blocked_control_loop_keeps_inbound_frames_flowing() -> None:
    """Both ends on the media thread: while the control loop is blocked, frames still flow A -> B and
    B's tap has them all (none lost or concealed) once the loop runs again."""
    a, b = await make_pair()
    try:
        tap = b.tap("in", maxsize=200)
        assert await a.enqueue(sine(300, 1.0), final=True)
        await asyncio.sleep(0.1)
        await block_control_loop(0.3)
        frames = await tap.get_batch(10)
        await asyncio.sleep(0.6)
        frames += await tap.get_batch(1)
        ticks = [f.tick for f in frames]
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))  # no tick missing: gap-free
        assert b.stats.max_gap_ms < 1000 and b.stats.lost == 0
        assert tap.dropped == 0
        loud = np.frombuffer(b"".join(f.pcm for f in frames), dtype=np.int16)
        assert np.abs(loud).max() > 1000
    finally:
        await a.close()
        await b.close()


async def test_one_engine_clock_serves_every_session_and_idles_without_them() -> None:
    engine = MediaEngine(name="test-media")
    sessions = [await MediaSession.create(host="127.0.0.1", engine=engine) for _ in range(5)]
    try:
        for s in sessions:
            s.negotiate("127.0.0.1", sessions[0].local_port, 0)
            s.start()
        await asyncio.sleep(0.3)
        assert engine.sessions == 5
        ticks = engine.ticks
        assert 5 <= ticks <= 40  # about 15: one clock, not one per session
        assert all(s.stats.packets_out >= 5 for s in sessions)
    finally:
        for s in sessions:
            await s.close()
    assert engine.sessions == 0
    idle = engine.ticks
    await asyncio.sleep(0.1)
    assert engine.ticks == idle  # no wake-ups without sessions
    engine.close()


async def test_metrics_report_loop_lag_of_both_loops() -> None:
    start_loop_lag_probe()
    a, b = await make_pair()
    try:
        await asyncio.sleep(0.15)
        await block_control_loop(0.15)
        await asyncio.sleep(0.15)
        m = media_metrics()
        assert m["control_loop_lag"]["max_ms"] >= 50  # the control loop was blocked
        assert m["media_clock"]["sessions"] >= 2 and m["media_clock"]["ticks"] > 0
        assert "max_ms" in m["media_loop_lag"]
    finally:
        stop_loop_lag_probe()
        await a.close()
        await b.close()
