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
