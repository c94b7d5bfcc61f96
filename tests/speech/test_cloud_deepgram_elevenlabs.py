"""Deepgram live STT (official SDK) and ElevenLabs stream-input TTS against wire-faithful fakes."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from speechutil import frames, silence

from fakeproviders.speech_deepgram import FakeDeepgram
from fakeproviders.speech_elevenlabs import FakeElevenLabs
from fakeproviders.speech_server import tone
from voipbin.speech.errors import (
    SpeechAuthError,
    SpeechConnectionError,
    SpeechRateLimited,
    SpeechServerError,
    SpeechTimeout,
)
from voipbin.speech.registry import create_stt, create_tts
from voipbin.speech.stt import SttEventType

FAULTS = [
    ("auth", SpeechAuthError),
    ("ratelimit", SpeechRateLimited),
    ("server", SpeechServerError),
    ("stall", SpeechTimeout),
]


@pytest.fixture
async def deepgram():
    async with FakeDeepgram() as fake:
        yield fake


@pytest.fixture
async def elevenlabs():
    async with FakeElevenLabs() as fake:
        yield fake


def dg_stt(fake: FakeDeepgram, monkeypatch, key: str | None = None, **kw):
    monkeypatch.setenv("VOIPBIN_DEEPGRAM_API_KEY", key or fake.api_key)
    monkeypatch.setenv("VOIPBIN_DEEPGRAM_BASE_URL", fake.ws.base_url)
    return create_stt("deepgram", language="en-US", sample_rate=8000, **kw)


def utterances(n: int, rate: int = 8000) -> bytes:
    return silence(0.4, rate) + (tone(1.2, rate) + silence(0.8, rate)) * n


async def test_deepgram_streaming_events(deepgram, monkeypatch):
    deepgram.script = ["i need help with my bill", "thank you"]
    stt = dg_stt(deepgram, monkeypatch)
    for f in frames(utterances(2), 8000):
        await stt.feed(f)
    await stt.close()
    events = await asyncio.wait_for(stt.events(), 10)
    kinds = [e.type for e in events]
    finals = [e for e in events if e.type == SttEventType.FINAL]
    assert [f.text for f in finals] == ["i need help with my bill", "thank you"]
    assert kinds[0] == SttEventType.SPEECH_STARTED
    assert SttEventType.INTERIM in kinds
    assert kinds.count(SttEventType.SPEECH_STARTED) == 2 and kinds.count(SttEventType.SPEECH_ENDED) == 2
    assert finals[0].start == pytest.approx(0.4, abs=0.1) and finals[0].confidence == pytest.approx(0.97)
    assert finals[1].start > finals[0].end
    # what went over the wire
    hs = deepgram.ws.handshakes[0]
    assert hs.headers["Authorization"] == "Token dg-key"
    for part in ("encoding=linear16", "sample_rate=8000", "interim_results=true", "language=en-US"):
        assert part in hs.path
    assert deepgram.received_audio == len(utterances(2))
    assert deepgram.control[-1] == {"type": "CloseStream"}


@pytest.mark.parametrize(("fault", "error"), FAULTS)
async def test_deepgram_faults_are_typed_and_bounded(deepgram, monkeypatch, fault, error):
    deepgram.ws.fault = fault
    stt = dg_stt(deepgram, monkeypatch, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(error):
        for f in frames(utterances(1), 8000):
            await stt.feed(f)
        await stt.close()
        await stt.events()
    assert time.monotonic() - t0 < 5


async def test_deepgram_bad_key(deepgram, monkeypatch):
    stt = dg_stt(deepgram, monkeypatch, key="wrong")
    with pytest.raises(SpeechAuthError):
        await stt.feed(silence(0.02, 8000))


async def test_deepgram_dropped_connection(deepgram, monkeypatch):
    deepgram.drop_after_results = True
    stt = dg_stt(deepgram, monkeypatch, timeout=2.0)
    with pytest.raises(SpeechConnectionError):
        async with asyncio.timeout(5):
            for f in frames(utterances(3), 8000):
                await stt.feed(f)
                await asyncio.sleep(0)
            await stt.close()
            await stt.events()


async def test_deepgram_connection_refused(monkeypatch):
    monkeypatch.setenv("VOIPBIN_DEEPGRAM_API_KEY", "k")
    monkeypatch.setenv("VOIPBIN_DEEPGRAM_BASE_URL", "http://127.0.0.1:9")
    stt = create_stt("deepgram", timeout=2.0)
    with pytest.raises(SpeechConnectionError):
        await stt.feed(silence(0.02, 8000))


def el_tts(fake: FakeElevenLabs, monkeypatch, key: str | None = None, **kw):
    monkeypatch.setenv("VOIPBIN_ELEVENLABS_API_KEY", key or fake.api_key)
    monkeypatch.setenv("VOIPBIN_ELEVENLABS_BASE_URL", fake.ws.base_url)
    return create_tts("elevenlabs", language="en-US", voice_type="male", sample_rate=8000, **kw)


async def test_elevenlabs_streams_clauses_and_audio(elevenlabs, monkeypatch):
    tts = el_tts(elevenlabs, monkeypatch)
    await tts.feed("Hello there. How can")
    it = tts.__aiter__()
    first = await asyncio.wait_for(it.__anext__(), 5)  # audio for the first clause before end()
    await tts.feed(" I help you today?")
    await tts.end()
    rest = b"".join([c async for c in it])
    total = len(first) + len(rest)
    expected = 0.05 * (len("Hello there. ") + len("How can I help you today? ")) * 8000 * 2
    assert abs(total - expected) < 0.05 * 8000 * 2 * 4  # resampled 16k -> 8k, lengths preserved
    hs = elevenlabs.ws.handshakes[0]
    assert hs.path.startswith("/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input?")  # en-US + male
    assert "model_id=eleven_multilingual_v2" in hs.path and "output_format=pcm_16000" in hs.path
    msgs = elevenlabs.messages
    assert msgs[0]["text"] == " " and msgs[0]["xi_api_key"] == "xi-key" and "voice_settings" in msgs[0]
    assert msgs[1]["text"] == "Hello there. "
    assert msgs[-1] == {"text": ""}


async def test_elevenlabs_voice_from_variables(elevenlabs, monkeypatch):
    monkeypatch.setenv("VOIPBIN_ELEVENLABS_API_KEY", elevenlabs.api_key)
    monkeypatch.setenv("VOIPBIN_ELEVENLABS_BASE_URL", elevenlabs.ws.base_url)
    variables = {"voipbin.tts.elevenlabs.voice_id": "pNInz6obpgDQGcFmaJgB"}
    tts = create_tts("elevenlabs", language="en-US", variables=variables)
    assert await tts.read_all_of("Hi.")
    assert "/pNInz6obpgDQGcFmaJgB/" in elevenlabs.ws.handshakes[0].path


async def test_elevenlabs_flush_sends_flush_message(elevenlabs, monkeypatch):
    tts = el_tts(elevenlabs, monkeypatch)
    await tts.feed("no punctuation yet")
    await tts.flush()
    chunk = await asyncio.wait_for(tts.__aiter__().__anext__(), 5)
    assert chunk
    assert {"text": " ", "flush": True} in elevenlabs.messages
    tts.cancel()


@pytest.mark.parametrize(("fault", "error"), FAULTS)
async def test_elevenlabs_faults_are_typed_and_bounded(elevenlabs, monkeypatch, fault, error):
    elevenlabs.ws.fault = fault
    tts = el_tts(elevenlabs, monkeypatch, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(error):
        await tts.read_all_of("Hello there.")
    assert time.monotonic() - t0 < 5


async def test_elevenlabs_bad_key_in_first_message(elevenlabs, monkeypatch):
    tts = el_tts(elevenlabs, monkeypatch, key="wrong")
    with pytest.raises(SpeechAuthError):
        await asyncio.wait_for(tts.read_all_of("Hello."), 5)


async def test_elevenlabs_dropped_mid_stream(elevenlabs, monkeypatch):
    elevenlabs.drop_after_audio = True
    tts = el_tts(elevenlabs, monkeypatch, timeout=2.0)
    with pytest.raises(SpeechConnectionError):
        await asyncio.wait_for(tts.read_all_of("Hello there, this is a longer sentence."), 5)


@pytest.mark.serial  # a real-time bound: run with nothing beside it (conftest)
async def test_elevenlabs_cancel_closes_stream_at_once(elevenlabs, monkeypatch):
    tts = el_tts(elevenlabs, monkeypatch)
    await tts.feed("First sentence here. Second one follows. " * 5)
    it = tts.__aiter__()
    await asyncio.wait_for(it.__anext__(), 5)
    t0 = time.monotonic()
    tts.cancel()
    assert [c async for c in it] == []
    assert time.monotonic() - t0 < 0.1
    await tts.aclose()
    json.dumps(elevenlabs.messages)  # the server saw well-formed JSON only
