"""The media worker process (media/worker.py, media/remote.py): a call's media in a process of its own.

Each test talks real RTP on loopback between a session in the worker and one in this process (the
peer), so what is checked is what a phone would hear and send.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
import wave
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from media_helpers import collect, pcm_of, peak_hz, rms, sine

from voipbin.media import MediaSession
from voipbin.media.errors import MediaError
from voipbin.media.jitter import JitterBuffer
from voipbin.media.remote import MediaPool, MediaWorker, RemoteMediaSession
from voipbin.media.taps import TapClosed


@pytest.fixture
async def worker() -> AsyncIterator[MediaWorker]:
    w = MediaWorker(port_min=41000, port_max=41199, realtime=True)  # as `voipbin serve` runs it
    await w.start()
    yield w
    await w.close()


async def linked(worker: MediaWorker, dtmf: int | None = 101) -> tuple[RemoteMediaSession, MediaSession]:
    """A worker session and a local peer, talking to each other (peer's jitter buffer may hold 1 s)."""
    remote = await worker.open_session("127.0.0.1")
    peer = await MediaSession.create(host="127.0.0.1", jitter=JitterBuffer(target=2, max_depth=50))
    remote.negotiate("127.0.0.1", peer.local_port, 8, dtmf)
    peer.negotiate("127.0.0.1", remote.local_port, 8, dtmf)
    remote.start()
    peer.start()
    return remote, peer


def voiced(x: np.ndarray) -> np.ndarray:
    """From the first loud sample to the last (contiguous, so its spectrum is the tone's)."""
    idx = np.flatnonzero(np.abs(x) > 1000)
    return x[idx[0] : idx[-1] + 1] if len(idx) else x[:0]


def write_wav(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(8000)
        wf.writeframes(pcm.astype("<i2").tobytes())


async def test_worker_plays_a_wav_file_the_peer_hears(worker: MediaWorker, tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_wav(path, sine(700, 1.0, 8000))
    remote, peer = await linked(worker)
    try:
        listening = asyncio.ensure_future(collect(peer.tap("in"), 1.5))
        assert await remote.play_wav(path) is True
        heard = pcm_of(await listening)
    finally:
        info = await remote.close()
        await peer.close()
    assert info is None  # nothing was recorded
    loud = voiced(heard)
    assert len(loud) > 7000 and abs(peak_hz(loud) - 700) < 15
    # the final stats come back with close(): about 50 packets a second went out, paced
    assert remote.stats.packets_out >= 60 and remote.stats.packets_in >= 60
    assert 0 < remote.stats.max_gap_out_ms < 200


async def test_streamed_pcm_reaches_the_peer_and_a_tap_gets_the_peer(worker: MediaWorker) -> None:
    remote, peer = await linked(worker)
    try:
        from_peer = asyncio.ensure_future(collect(remote.tap("in"), 1.5))
        at_peer = asyncio.ensure_future(collect(peer.tap("in"), 1.5))
        raw = sine(1000, 1.0, 8000).astype("<i2").tobytes()

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(raw), 960):  # 60 ms chunks, as a TTS stream
                yield raw[i : i + 960]
                await asyncio.sleep(0.01)

        said = asyncio.ensure_future(peer.play_pcm(sine(440, 1.0, 8000)))
        assert await remote.play_pcm(chunks(), rate=8000) is True
        assert remote.queued_frames == 0
        await said
        got, heard = pcm_of(await from_peer), pcm_of(await at_peer)
    finally:
        await remote.close()
        await peer.close()
    loud_in, loud_out = voiced(got), voiced(heard)
    assert len(loud_in) > 7000 and abs(peak_hz(loud_in) - 440) < 15
    assert len(loud_out) > 7000 and abs(peak_hz(loud_out) - 1000) < 15
    assert rms(loud_out) > 3000


async def test_enqueue_backpressure_flush_and_generation(worker: MediaWorker) -> None:
    remote, peer = await linked(worker)
    try:
        tone = sine(500, 3.0, 8000).astype("<i2").tobytes()
        chunks = [tone[i : i + 3200] for i in range(0, len(tone), 3200)]
        player = asyncio.ensure_future(remote.play_pcm(chunks))
        await asyncio.sleep(0.5)
        assert not player.done()  # 3 s of audio through a 1 s queue: the producer waits
        queued = remote.queued_frames  # the 1 s queue, and the chunk the producer waits to place
        assert 10 <= queued <= 50 + 10
        dropped = remote.flush()
        assert dropped >= 10
        assert await asyncio.wait_for(player, 2) is False  # flushed: the producer stops
        await asyncio.sleep(0.1)
        assert remote.queued_frames == 0
        # after the flush, new audio plays again
        assert await remote.enqueue(sine(300, 0.2, 8000).astype("<i2").tobytes(), final=True) is True
        await asyncio.wait_for(remote.wait_played(), 3)
    finally:
        await remote.close()
        await peer.close()


async def test_recording_in_the_worker_holds_both_directions(worker: MediaWorker, tmp_path: Path) -> None:
    remote, peer = await linked(worker)
    path = tmp_path / "rec.wav"
    try:
        await remote.record_start(path, "both", stereo=True)
        assert remote.recording
        with pytest.raises(RuntimeError):
            await remote.record_start(path)
        await asyncio.gather(remote.play_pcm(sine(440, 1.0, 6000)), peer.play_pcm(sine(1000, 1.0, 6000)))
        await asyncio.sleep(0.2)
        info = await remote.record_stop()
    finally:
        await remote.close()
        await peer.close()
    assert info is not None and info.channels == 2 and info.frames >= 50
    with wave.open(str(path), "rb") as wf:
        data = np.frombuffer(wf.readframes(wf.getnframes()), dtype="<i2").reshape(-1, 2)
    left, right = data[:, 0].astype(float), data[:, 1].astype(float)  # in = the peer, out = us
    assert abs(peak_hz(voiced(left)) - 1000) < 15 and len(voiced(left)) > 7000
    assert abs(peak_hz(voiced(right)) - 440) < 15 and len(voiced(right)) > 7000


async def test_dtmf_both_ways(worker: MediaWorker) -> None:
    remote, peer = await linked(worker)
    got: list[str] = []
    remote.on_dtmf(lambda d: got.append(d.digit))
    try:
        await peer.send_dtmf("12#")
        digits = [(await asyncio.wait_for(remote.next_dtmf(), 3)).digit for _ in range(3)]
        await remote.send_dtmf("7", 100)
        back = await asyncio.wait_for(peer.next_dtmf(), 3)
    finally:
        await remote.close()
        await peer.close()
    assert digits == ["1", "2", "#"] and got == digits
    assert back.digit == "7"


async def test_bridge_in_the_worker(worker: MediaWorker) -> None:
    a, pa = await linked(worker)
    b, pb = await linked(worker)
    try:
        a.bridge(b)
        with pytest.raises(RuntimeError):
            a.bridge(b)
        at_pb = pb.tap("in")
        await pa.play_pcm(sine(800, 1.0, 8000))
        heard = pcm_of(await collect(at_pb, 0.3))
        a.unbridge()
    finally:
        for s in (a, b, pa, pb):
            await s.close()
    loud = voiced(heard)
    assert len(loud) > 7000 and abs(peak_hz(loud) - 800) < 15


async def test_bad_remote_is_refused_here_and_bad_requests_fail_cleanly(worker: MediaWorker) -> None:
    remote = await worker.open_session("127.0.0.1")
    try:
        with pytest.raises(ValueError):
            remote.negotiate("::1", 4000)  # an IPv4 socket cannot reach an IPv6 peer
        with pytest.raises(ValueError):
            remote.negotiate("127.0.0.1", 4000, ptime=30)
        remote.negotiate("127.0.0.1", 4000)  # no telephone-event payload type
        with pytest.raises(RuntimeError, match="telephone-event"):  # the worker's error, raised here
            await remote.send_dtmf("1")
        with pytest.raises(FileNotFoundError):  # as in-process: a missing prompt is the caller's error
            await remote.play_wav("/nonexistent/x.wav")
    finally:
        await remote.close()
    # a closed session refuses work without hanging
    assert await remote.enqueue(b"\0" * 320) is False
    assert remote.tap("in").closed


async def test_a_blocked_control_process_does_not_stall_the_worker_clock(worker: MediaWorker) -> None:
    remote, peer = await linked(worker)
    try:
        at_peer = peer.tap("in")
        player = asyncio.ensure_future(remote.play_pcm(sine(600, 2.0, 8000)))
        await asyncio.sleep(0.3)
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:  # this process busy in Python: GIL held, loop stopped
            pass
        await player
        await collect(at_peer, 0.2)
    finally:
        await remote.close()
        await peer.close()
    assert remote.stats.skipped_ticks == 0 and remote.stats.max_gap_out_ms < 40
    # the peer's kernel stamped each packet's arrival: none came more than 40 ms after the last
    assert peer.stats.packets_in >= 100 and peer.stats.max_gap_ms < 40


async def test_a_dead_worker_ends_its_sessions_and_a_new_one_starts(worker: MediaWorker) -> None:
    remote, peer = await linked(worker)
    tap = remote.tap("in")
    player = asyncio.ensure_future(remote.play_pcm(sine(600, 5.0, 8000)))
    await asyncio.sleep(0.2)
    os.kill(worker.pid, signal.SIGKILL)
    assert await asyncio.wait_for(player, 5) is False
    with pytest.raises(TapClosed):  # what was received before is still there, then it ends
        while True:
            await asyncio.wait_for(tap.get(), 5)
    with pytest.raises(MediaError):
        await remote.send_dtmf("1")
    await remote.close()
    await peer.close()
    assert worker.restarts == 1
    again, peer2 = await linked(worker)  # the next session starts a new worker
    try:
        assert await again.play_pcm(sine(400, 0.2, 8000)) is True
    finally:
        await again.close()
        await peer2.close()


async def test_the_worker_reports_its_clock_and_loop_lag(worker: MediaWorker) -> None:
    remote, peer = await linked(worker)
    try:
        await asyncio.sleep(1.5)  # the worker reports each second
    finally:
        await remote.close()
        await peer.close()
    assert worker.metrics["media_clock"]["sessions"] >= 1 and worker.metrics["media_clock"]["ticks"] > 0
    assert "max_ms" in worker.metrics["media_loop_lag"] and "collections" in worker.metrics["gc"]


async def test_a_pool_spreads_sessions_and_keeps_bridged_calls_together() -> None:
    pool = MediaPool(2, port_min=41200, port_max=41399, spread_at=2)
    await pool.start()
    first, second = pool.workers
    assert first.running and not second.running  # the second starts when the first is busy
    opened: list[RemoteMediaSession] = []
    try:
        for _ in range(3):
            opened.append(await pool.open_session("127.0.0.1"))
        assert [s.worker for s in opened] == [first, first, second]
        assert 41200 <= opened[0].local_port < 41300 and 41300 <= opened[2].local_port <= 41399
        near = await pool.open_session("127.0.0.1", near=opened[0])  # joins a call on the busier worker
        opened.append(near)
        assert near.worker is first
        with pytest.raises(TypeError):  # frames cross between workers only through a bridge in one
            opened[2].bridge(opened[0])
        opened[0].bridge(near)
        opened[0].unbridge()
        await asyncio.sleep(1.2)  # each worker reports once a second
        m = pool.metrics()
        assert m["workers"] == 2 and m["media_clock"]["sessions"] == 0  # none started
    finally:
        for s in opened:
            await s.close()
        await pool.close()
    assert not pool.running


async def test_a_closed_session_is_freed_without_the_collector(tmp_path: Path) -> None:
    """In a media worker a collector pass holds the GIL the clock needs: sessions must not leave
    reference cycles behind (RtpSession._break_cycles)."""
    s = await MediaSession.create(host="127.0.0.1")
    s.negotiate("127.0.0.1", 9, 8, 101)
    s.start()
    s.tap("in")
    await s.record_start(tmp_path / "r.wav")
    await asyncio.sleep(0.1)
    await s.close()
    await asyncio.sleep(0.05)
    gone = weakref.ref(s.rtp)
    gc.disable()
    try:
        del s
        await asyncio.sleep(0)
        assert gone() is None
    finally:
        gc.enable()
