"""Offline round trip TTS -> 8 kHz -> G.711 µ-law -> Whisper tiny.en, and TTS streaming/cancel.

Measured WER on this machine (see docs/bench-speech.md): Piper 0.0 (with number normalisation),
espeak-ng ~0.1 ("willing" for "billing"). Bounds keep head-room for run-to-run variation.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from speechutil import SENTENCE, frames, silence, ulaw_roundtrip, wer

from voipbin.speech.registry import create_stt, create_tts
from voipbin.speech.stt import SttEventType

pytestmark = pytest.mark.slow


async def transcribe(pcm: bytes, rate: int = 8000):
    stt = create_stt("whisper", language="en-US", sample_rate=rate)
    for f in frames(pcm, rate):
        await stt.feed(f)
    await stt.close()
    return [e async for e in stt]


@pytest.mark.parametrize(("engine", "bound"), [("piper", 0.2), ("espeak", 0.4)])
async def test_round_trip_through_g711(engine, bound, piper_clip_8k, espeak_clip_8k):
    clip = piper_clip_8k if engine == "piper" else espeak_clip_8k
    pcm = ulaw_roundtrip(silence(0.5, 8000) + clip + silence(1.0, 8000))
    events = await transcribe(pcm)
    kinds = [e.type for e in events]
    assert kinds[0] == SttEventType.SPEECH_STARTED
    assert SttEventType.SPEECH_ENDED in kinds
    finals = [e for e in events if e.type == SttEventType.FINAL]
    text = " ".join(e.text for e in finals)
    assert wer(SENTENCE, text) <= bound, text
    assert finals[0].start == pytest.approx(0.5, abs=0.2)
    assert finals[0].language == "en"


async def test_two_utterances_give_two_ordered_finals(piper_clip_8k):
    pcm = silence(0.3, 8000) + piper_clip_8k + silence(1.2, 8000) + piper_clip_8k + silence(1.0, 8000)
    finals = [e for e in await transcribe(pcm) if e.type == SttEventType.FINAL]
    assert len(finals) == 2
    assert finals[0].end <= finals[1].start
    assert all(wer(SENTENCE, f.text) <= 0.2 for f in finals)


@pytest.mark.parametrize("engine", ["piper", "espeak"])
async def test_streaming_text_gives_audio_before_end(engine):
    tts = create_tts(engine, sample_rate=16000)
    await tts.feed("Thank you for calling. ")
    it = tts.__aiter__()
    first = await asyncio.wait_for(it.__anext__(), 30)  # arrives although end() was not called
    assert len(first) > 0 and len(first) % 2 == 0
    await tts.feed("Your balance is ten dollars.")
    await tts.end()
    rest = b"".join([c async for c in it])
    assert (len(first) + len(rest)) / 32000 > 2.0  # two sentences of speech at 16 kHz


@pytest.mark.serial  # a real-time bound: run with nothing beside it (conftest)
@pytest.mark.parametrize("engine", ["piper", "espeak"])
async def test_cancel_stops_promptly(engine):
    tts = create_tts(engine)
    await tts.feed("This is a long answer. " * 20)
    it = tts.__aiter__()
    await asyncio.wait_for(it.__anext__(), 30)
    t0 = time.perf_counter()
    tts.cancel()
    rest = [c async for c in it]
    assert rest == []
    assert time.perf_counter() - t0 < 0.1
    await tts.aclose()
    with pytest.raises(RuntimeError):
        await tts.feed("more")


async def test_engine_process_failure_is_a_typed_error(monkeypatch):
    from voipbin.speech import tts_espeak
    from voipbin.speech.errors import SpeechServerError

    monkeypatch.setattr(tts_espeak, "BINARY", "false")  # exits 1 without audio
    tts = create_tts("espeak")
    with pytest.raises(SpeechServerError):
        await asyncio.wait_for(tts.read_all_of("hello"), 10)
