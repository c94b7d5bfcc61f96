"""VAD: boundaries of real TTS speech padded with silence, at 8 and 16 kHz."""

from __future__ import annotations

import pytest
from speechutil import silence, speech_bounds, ulaw_roundtrip

from voipbin.speech.vad import SileroVAD, VadConfig, VadSegmenter, silero_session

LEAD, TAIL = 1.0, 1.5


@pytest.mark.parametrize("rate", [8000, 16000])
def test_segmenter_finds_speech_boundaries(rate, piper_clip_8k, piper_clip_16k):
    clip = piper_clip_8k if rate == 8000 else piper_clip_16k
    first, last = speech_bounds(clip, rate)
    pcm = silence(LEAD, rate) + clip + silence(TAIL, rate)
    seg = VadSegmenter(rate, VadConfig(), collect=True)
    events = []
    for i in range(0, len(pcm), rate // 50 * 2):  # 20 ms RTP-sized chunks
        events += seg.feed(pcm[i : i + rate // 50 * 2])
    events += seg.flush()
    starts = [e for e in events if e.kind == "start"]
    ends = [e for e in events if e.kind == "end"]
    assert starts and ends
    assert abs(starts[0].time - (LEAD + first)) <= 0.15
    assert abs(ends[-1].time - (LEAD + last)) <= 0.15
    # The collected audio covers the utterance (pre-roll included).
    assert len(ends[-1].audio) / 2 / rate >= (last - first) * 0.9


def test_segmenter_through_g711(piper_clip_8k):
    first, last = speech_bounds(piper_clip_8k, 8000)
    pcm = ulaw_roundtrip(silence(LEAD, 8000) + piper_clip_8k + silence(TAIL, 8000))
    seg = VadSegmenter(8000)
    events = seg.feed(pcm) + seg.flush()
    assert events[0].kind == "start" and abs(events[0].time - (LEAD + first)) <= 0.15
    assert events[-1].kind == "end" and abs(events[-1].time - (LEAD + last)) <= 0.15


def test_silence_and_quiet_noise_are_not_speech_and_skip_silero():
    import numpy as np

    rng = np.random.default_rng(1)
    noise = (rng.normal(0, 30, 8000 * 3)).astype(np.int16).tobytes()  # ~ -60 dBFS hiss
    seg = VadSegmenter(8000)
    assert seg.feed(silence(2, 8000) + noise) + seg.flush() == []
    assert seg.silero_frames == 0  # the webrtcvad/volume gate kept Silero asleep


def test_stop_secs_hysteresis_bridges_short_pauses(piper_clip_8k):
    gap = silence(0.3, 8000)
    pcm = silence(0.5, 8000) + piper_clip_8k + gap + piper_clip_8k + silence(1, 8000)
    short = VadSegmenter(8000, VadConfig(stop_secs=0.1))
    long = VadSegmenter(8000, VadConfig(stop_secs=0.8))
    n_short = sum(e.kind == "start" for e in short.feed(pcm) + short.flush())
    n_long = sum(e.kind == "start" for e in long.feed(pcm) + long.flush())
    assert n_long == 1
    assert n_short >= 2


def test_one_shared_session_and_per_stream_state(piper_clip_8k):
    a, b = SileroVAD(8000), SileroVAD(8000)
    assert a._session is b._session is silero_session()
    frame = piper_clip_8k[8000:8512]
    for _ in range(5):
        a.probability(frame)
    b.reset()
    # b has never seen audio: its first answer must not depend on a's history
    fresh = SileroVAD(8000).probability(frame)
    assert b.probability(frame) == pytest.approx(fresh)


def test_vad_config_ranges():
    assert VadConfig.from_dict({"confidence": 0.5, "unknown": 1}).confidence == 0.5
    with pytest.raises(ValueError):
        VadConfig(confidence=1.5)
    with pytest.raises(ValueError):
        VadConfig(stop_secs=31)
    with pytest.raises(ValueError):
        SileroVAD(44100)


async def test_batched_segmenters_decide_like_separate_ones(piper_clip_8k):
    """Three calls on one loop, offset in time: Silero runs once per loop turn for all of them, and
    every stream gets the same probabilities, events and voice flags as when fed alone."""
    import asyncio

    import numpy as np

    from voipbin.speech.vad import SileroBatch

    streams = [
        silence(LEAD + k * 0.13, 8000) + ulaw_roundtrip(piper_clip_8k) + silence(TAIL, 8000) for k in range(3)
    ]
    chunk = 320  # 20 ms
    n = max(len(p) for p in streams) // chunk
    alone = [VadSegmenter(8000) for _ in streams]
    together = [VadSegmenter(8000) for _ in streams]
    batch = SileroBatch()
    expected: list[list[tuple[str, float]]] = [[] for _ in streams]
    got: list[list[tuple[str, float]]] = [[] for _ in streams]
    flags_alone: list[list[bool]] = [[] for _ in streams]
    flags_together: list[list[bool]] = [[] for _ in streams]

    async def one(k: int, pcm: bytes) -> None:
        got[k] += [(e.kind, e.time) for e in await together[k].feed_batched(pcm, batch)]
        flags_together[k].append(together[k].last_frame_speech)

    for i in range(n):
        parts = [p[i * chunk : (i + 1) * chunk] for p in streams]
        for k, pcm in enumerate(parts):
            if pcm:
                expected[k] += [(e.kind, e.time) for e in alone[k].feed(pcm)]
                flags_alone[k].append(alone[k].last_frame_speech)
        await asyncio.gather(*(one(k, pcm) for k, pcm in enumerate(parts) if pcm))
    for k in range(3):
        assert expected[k] and got[k] == expected[k], k
        assert flags_together[k] == flags_alone[k], k
        assert np.allclose(together[k].silero._state, alone[k].silero._state, atol=1e-4), k
    silero_frames = sum(s.silero_frames for s in together)
    assert batch.frames == silero_frames and batch.runs < silero_frames  # shared runs, none lost


async def test_a_stream_with_two_frames_in_one_turn_runs_them_in_order(piper_clip_8k):
    import asyncio

    from voipbin.speech.vad import SileroBatch

    x = ulaw_roundtrip(piper_clip_8k)[8000 : 8000 + 2 * 512]  # two 32 ms frames of speech
    ref = SileroVAD(8000)
    want = [ref.probability(x[:512]), ref.probability(x[512:])]
    vad, batch = SileroVAD(8000), SileroBatch()
    first, second = batch.probability(vad, x[:512]), batch.probability(vad, x[512:])
    assert await asyncio.gather(first, second) == pytest.approx(want, abs=1e-5)
    assert batch.runs == 2
