"""Recorder (in / out / both, mono mix or stereo) and bridging with PCMU<->PCMA transcoding."""

from __future__ import annotations

import asyncio
import itertools
import wave
from pathlib import Path

import numpy as np
import pytest
from media_helpers import collect, make_pair, pcm_of, peak_hz, rms, sine

from voipbin.media import MediaSession
from voipbin.media.wav import read_wav


def read(path: Path) -> tuple[np.ndarray, int, int]:
    with wave.open(str(path), "rb") as wf:
        assert wf.getsampwidth() == 2 and wf.getframerate() == 8000
        ch = wf.getnchannels()
        data = np.frombuffer(wf.readframes(wf.getnframes()), dtype="<i2")
        return data.reshape(-1, ch), ch, wf.getnframes()


def band_rms(x: np.ndarray, freq: float) -> float:
    """Amplitude of one tone in a signal (DFT bin energy), robust to the other tone being present."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64)))
    k = round(freq * len(x) / 8000)
    return float(spec[max(0, k - 3) : k + 4].max() * 2 / len(x))


@pytest.mark.parametrize(
    ("direction", "stereo"), [("in", False), ("out", False), ("both", False), ("both", True)]
)
async def test_recorder_directions(tmp_path: Path, direction: str, stereo: bool) -> None:
    a, b = await make_pair()
    path = tmp_path / f"{direction}-{stereo}.wav"
    try:
        await a.record_start(path, direction, stereo)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        # A says 440 Hz, B says 1000 Hz, at the same time, for 1 s.
        await asyncio.gather(a.play_pcm(sine(440, 1.0, 6000)), b.play_pcm(sine(1000, 1.0, 6000)))
        await asyncio.sleep(0.2)
        info = await a.record_stop()
        elapsed = loop.time() - t0
    finally:
        await a.close()
        await b.close()
    assert info is not None and info.frames > 0
    samples, ch, nframes = read(path)
    assert ch == (2 if stereo else 1) and nframes == info.frames * 160
    assert abs(nframes / 8000 - elapsed) < 0.1  # the file's duration is the recorded wall time
    if stereo:
        left, right = samples[:, 0], samples[:, 1]  # left = inbound (the peer), right = outbound (us)
        assert band_rms(left, 1000) > 3000 and band_rms(left, 440) < 300
        assert band_rms(right, 440) > 3000 and band_rms(right, 1000) < 300
        return
    x = samples[:, 0]
    s440, s1000 = band_rms(x, 440), band_rms(x, 1000)
    if direction == "in":
        assert s1000 > 3000 and s440 < 300
    elif direction == "out":
        assert s440 > 3000 and s1000 < 300
    else:
        assert s440 > 3000 and s1000 > 3000


async def test_recording_survives_close_and_is_finalised(tmp_path: Path) -> None:
    a, b = await make_pair()
    path = tmp_path / "close.wav"
    await a.record_start(path, "both")
    await b.play_pcm(sine(700, 0.4))
    # b's last frame is sent on b's clock: a closes once it has arrived and a's jitter buffer has
    # played it into the recording (with zero margin the count was 19 or 20 frames depending on the
    # two clocks' phase; a fixed 20 ms wait still lost it when the machine was loaded).
    sent = b.stats.packets_out
    async with asyncio.timeout(5):
        while a.stats.packets_in < sent:  # noqa: ASYNC110  (counters on the media thread: no event)
            await asyncio.sleep(0.005)
        arrived = a.rtp._n
        while a.rtp._n <= arrived + a.rtp.jitter.target + 1:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    info = await a.close()  # closing the session stops and finalises the recording
    await b.close()
    assert info is not None
    pcm = read_wav(path)
    assert len(pcm) == info.frames * 160 and info.duration >= 0.4
    audible = pcm[np.abs(pcm) > 100]
    assert len(audible) > 2500


async def test_bridge_carries_audio_both_ways_with_transcoding() -> None:
    # caller (PCMU) <-> [b  bridge  c] <-> callee (PCMA)
    caller, b = await make_pair(0, 0)
    c, callee = await make_pair(8, 8)
    try:
        br = b.bridge(c)
        to_callee = callee.tap("in", maxsize=500)
        to_caller = caller.tap("in", maxsize=500)
        await asyncio.gather(caller.play_pcm(sine(440, 1.0, 8000)), callee.play_pcm(sine(1200, 1.0, 8000)))
        heard_by_callee = pcm_of(await collect(to_callee, 0.3))
        heard_by_caller = pcm_of(await collect(to_caller, 0.3))
        for got, freq in ((heard_by_callee, 440), (heard_by_caller, 1200)):
            audible = np.flatnonzero(np.abs(got) > 200)
            seg = got[audible[0] : audible[-1]]
            assert abs(len(seg) - 8000) < 480  # the whole second crossed, give or take a few frames
            assert abs(peak_hz(seg) - freq) < 15
            assert 0.8 * rms(sine(freq, 1.0, 8000)) < rms(seg) < 1.2 * rms(sine(freq, 1.0, 8000))
        assert br.frames_a_to_b > 50 and br.frames_b_to_a > 50
        # unbridge: nothing crosses any more
        b.unbridge()
        assert not br.active
        await caller.play_pcm(sine(440, 0.5, 8000))
        after = pcm_of(await collect(to_callee, 0.3))
        assert rms(after) < 50
    finally:
        for s in (caller, b, c, callee):
            await s.close()


async def test_bridge_rejects_double_bridge() -> None:
    a = await MediaSession.create(host="127.0.0.1")
    b = await MediaSession.create(host="127.0.0.1")
    c = await MediaSession.create(host="127.0.0.1")
    try:
        a.bridge(b)
        with pytest.raises(RuntimeError):
            a.bridge(c)
    finally:
        for s in (a, b, c):
            await s.close()


async def test_recorder_aligns_ticks_and_fills_gaps(tmp_path: Path) -> None:
    """Frames missing from the tap (dropped, or a loop stall) become silence: the timeline is kept."""
    from voipbin.media.recorder import Recorder
    from voipbin.media.taps import Frame, Tap

    tap = Tap(frozenset({"in", "out"}), maxsize=100)
    rec = Recorder(tmp_path / "gaps.wav", tap, "both", stereo=True)
    rec.start()

    def pcm(v: int) -> bytes:
        return np.full(160, v, dtype="<i2").tobytes()

    for tick in (10, 11, 14):  # ticks 12 and 13 never arrived
        tap.put(Frame("in", tick, pcm(100 + tick)))
        tap.put(Frame("out", tick, pcm(-tick)))
    tap.put(Frame("out", 15, pcm(-15)))  # last tick has only the outbound side
    await asyncio.sleep(0)
    info = await rec.stop()
    samples, ch, nframes = read(tmp_path / "gaps.wav")
    assert ch == 2 and info.frames == 6 and nframes == 6 * 160
    left = samples[::160, 0].tolist()
    right = samples[::160, 1].tolist()
    assert left == [110, 111, 0, 0, 114, 0]
    assert right == [-10, -11, 0, 0, -14, -15]


@pytest.mark.parametrize("direction", ["in", "out", "both"])
async def test_recorder_batches_of_any_shape_write_the_same_timeline(tmp_path: Path, direction: str) -> None:
    """Whole ticks in order take the recorder's batch path, ticks split across batches, gaps and a
    missing direction the per-frame one: the file is the same frame-for-frame timeline either way."""
    from voipbin.media.recorder import _WRITER, Recorder
    from voipbin.media.taps import Frame, Tap

    def pcm(v: int) -> bytes:
        return np.full(160, v, dtype="<i2").tobytes()

    dirs = ["in", "out"] if direction == "both" else [direction]
    frames = [Frame(d, t, pcm((t + 1) * (1 if d == "in" else -1))) for t in range(60) for d in dirs]  # type: ignore[arg-type]
    del frames[70:74]  # a gap in the middle (a tap that dropped frames)
    expected: dict[int, dict[str, int]] = {}
    for f in frames:
        expected.setdefault(f.tick, {})[f.direction] = (f.tick + 1) * (1 if f.direction == "in" else -1)
    cuts = [0, 1, 8, 9, 30, 31, 45, 60, 61, 75, 77, 100, len(frames)]  # odd cuts split ticks
    tap = Tap(frozenset(dirs), maxsize=10)  # not started: the batches are handed over directly
    rec = Recorder(tmp_path / "shapes.wav", tap, direction, stereo=direction == "both")  # type: ignore[arg-type]
    for lo, hi in itertools.pairwise(cuts):
        rec._consume(frames[lo:hi])
    rec._write([rec._in], [rec._out])  # the held last tick, as stop() writes it
    await asyncio.wrap_future(_WRITER.submit(rec._finish_now))
    samples, _, nframes = read(tmp_path / "shapes.wav")
    assert nframes == 60 * 160
    for t in range(60):
        got = samples[t * 160]
        want = expected.get(t, {})
        if direction == "both":
            assert (int(got[0]), int(got[1])) == (want.get("in", 0), want.get("out", 0)), t
        else:
            assert int(got[0]) == want.get(direction, 0), t


def test_recorder_batch_path_equals_per_frame_path_on_random_streams(tmp_path: Path) -> None:
    """Random streams (lost ticks, a direction missing, ticks split across batches): the whole-tick
    batch path writes exactly what the per-frame path writes."""
    import random

    from voipbin.media.recorder import Recorder
    from voipbin.media.taps import Frame, Tap

    def pcm(v: int) -> bytes:
        return v.to_bytes(2, "little", signed=True) * 160

    def written(frames: list[Frame], cuts: list[int], direction: str, batch_path: bool) -> tuple:
        rec = Recorder(tmp_path / "p.wav", Tap(frozenset({"in", "out"}), 10), direction)  # type: ignore[arg-type]
        ins: list[bytes] = []
        outs: list[bytes] = []

        def capture(i: list[bytes], o: list[bytes]) -> None:
            ins.extend(i)
            outs.extend(o)

        rec._write = capture  # type: ignore[method-assign]
        if not batch_path:
            rec._consume_contiguous = lambda frames: False  # type: ignore[method-assign]
        for lo, hi in itertools.pairwise(cuts):
            rec._consume(frames[lo:hi])
        rec._write([rec._in], [rec._out])
        rec._fh.close()
        return ins, outs

    rng = random.Random(8)
    for _ in range(500):
        direction = rng.choice(["in", "out", "both"])
        dirs = ["in", "out"] if direction == "both" else [direction]
        frames: list[Frame] = []
        tick = rng.randint(0, 5)
        for _ in range(rng.randint(1, 60)):
            tick += 1 if rng.random() > 0.05 else rng.randint(2, 4)
            frames += [
                Frame(d, tick, pcm(tick if d == "in" else -tick))  # type: ignore[arg-type]
                for d in dirs
                if rng.random() > 0.05
            ]
        cuts = sorted({0, len(frames), *(rng.randint(0, len(frames)) for _ in range(rng.randint(0, 8)))})
        assert written(frames, cuts, direction, True) == written(frames, cuts, direction, False)


async def test_a_tick_whose_out_frame_comes_first_stays_aligned_in_the_recording(tmp_path: Path) -> None:
    """A tap may get a tick's outbound frame before its inbound one (out(t) then in(t)); the
    recording still pairs each tick's two directions."""
    from voipbin.media.recorder import _WRITER, Recorder
    from voipbin.media.taps import Frame, Tap

    def pcm(v: int) -> bytes:
        return np.full(160, v, dtype="<i2").tobytes()

    frames: list[Frame] = []
    for t in range(30):
        pair = [Frame("in", t, pcm(t + 1)), Frame("out", t, pcm(-(t + 1)))]
        if t in (5, 17, 18):  # this tick's outbound frame came first
            pair.reverse()
        frames += pair
    tap = Tap(frozenset(("in", "out")), maxsize=10)
    rec = Recorder(tmp_path / "early.wav", tap, "both", stereo=True)
    for lo in range(0, len(frames), 7):  # batches that also split ticks
        rec._consume(frames[lo : lo + 7])
    rec._write([rec._in], [rec._out])
    await asyncio.wrap_future(_WRITER.submit(rec._finish_now))
    samples, _, nframes = read(tmp_path / "early.wav")
    assert nframes == 30 * 160
    assert [(int(s[0]), int(s[1])) for s in samples[::160]] == [(t + 1, -(t + 1)) for t in range(30)]
