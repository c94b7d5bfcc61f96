"""OpenAI / Deepgram Aura / Cartesia TTS and OpenAI / ElevenLabs STT against wire-faithful fakes.

Each adapter goes through its real client (openai SDK, deepgram-sdk, elevenlabs SDK, httpx) to a
local server speaking the provider's HTTP protocol, selected through the registry with the key and
base URL from ``VOIPBIN_<P>_API_KEY`` / ``VOIPBIN_<P>_BASE_URL``. Faults: 401, 429 (retry-after),
500, stall (timeout), connection dropped mid-stream, connection refused; plus cancel mid-stream.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest
from speechutil import frames, silence

from fakeproviders.speech_cartesia import FakeCartesia
from fakeproviders.speech_deepgram import FakeDeepgram
from fakeproviders.speech_elevenlabs import FakeElevenLabs
from fakeproviders.speech_openai import FakeOpenAIAudio
from fakeproviders.speech_server import FakeHttpServer
from voipbin.speech.errors import (
    SpeechAuthError,
    SpeechConnectionError,
    SpeechRateLimited,
    SpeechServerError,
    SpeechTimeout,
)
from voipbin.speech.registry import create_stt, create_tts, validate_stt_type, validate_tts_type
from voipbin.speech.stt import SttEventType

FAULTS = [
    ("auth", SpeechAuthError),
    ("ratelimit", SpeechRateLimited),
    ("server", SpeechServerError),
    ("stall", SpeechTimeout),
    ("drop", SpeechConnectionError),
]


@dataclass
class Cloud:
    name: str
    fake: object
    http: FakeHttpServer
    base_url: str
    api_key: str

    def env(self, monkeypatch, key: str | None = None, base_url: str | None = None) -> None:
        p = self.name.upper()
        monkeypatch.setenv(f"VOIPBIN_{p}_API_KEY", key or self.api_key)
        monkeypatch.setenv(f"VOIPBIN_{p}_BASE_URL", base_url or self.base_url)


async def _start(name: str) -> tuple[Cloud, object]:
    if name == "openai":
        fake = FakeOpenAIAudio()
        await fake.__aenter__()
        return Cloud(name, fake, fake.http, fake.base_url, fake.api_key), fake
    if name == "deepgram":
        fake = FakeDeepgram()
        await fake.__aenter__()
        return Cloud(name, fake, fake.http, fake.http.base_url, fake.api_key), fake
    if name == "cartesia":
        fake = FakeCartesia()
        await fake.__aenter__()
        return Cloud(name, fake, fake.http, fake.http.base_url, fake.api_key), fake
    fake = FakeElevenLabs()
    await fake.__aenter__()
    return Cloud(name, fake, fake.http, fake.http.base_url, fake.api_key), fake


@pytest.fixture(params=["openai", "deepgram", "cartesia"])
async def tts_cloud(request):
    cloud, fake = await _start(request.param)
    yield cloud
    await fake.__aexit__(None, None, None)


@pytest.fixture(params=["openai", "elevenlabs"])
async def stt_cloud(request):
    cloud, fake = await _start(request.param)
    yield cloud
    await fake.__aexit__(None, None, None)


# -- TTS ------------------------------------------------------------------------------------------


def test_registry_accepts_the_cloud_adapters():
    for name in ("openai", "deepgram", "cartesia", "elevenlabs"):
        validate_tts_type(name)
    for name in ("openai", "elevenlabs", "deepgram"):
        validate_stt_type(name, language="ja-JP")


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_tts_streams_first_clause_before_end(tts_cloud, monkeypatch, rate):
    tts_cloud.env(monkeypatch)
    tts = create_tts(tts_cloud.name, language="en-US", sample_rate=rate)
    await tts.feed("Hello there. How can")
    it = tts.__aiter__()
    first = await asyncio.wait_for(it.__anext__(), 5)  # audio for clause 1 before end()
    await tts.feed(" I help you today?")
    await tts.end()
    rest = b"".join([c async for c in it])
    total = len(first) + len(rest)
    # every fake speaks 60 ms per character; lengths survive resampling (openai: 24 kHz -> rate)
    expected = 0.06 * (len("Hello there.") + len("How can I help you today?")) * rate * 2
    assert abs(total - expected) < 0.01 * rate * 2 * 2, (total, expected)
    assert len(first) % 2 == 0 and total % 2 == 0
    assert tts_cloud.http.completed == 2


async def test_openai_tts_wire(monkeypatch):
    cloud, fake = await _start("openai")
    try:
        cloud.env(monkeypatch)
        assert await create_tts("openai").read_all_of("Good morning.")
        assert await create_tts("openai", voice_id="nova").read_all_of("Hi.")
        req = fake.http.requests[0]
        assert req.path == "/v1/audio/speech" and req.headers["authorization"] == "Bearer sk-test"
        assert fake.speech[0] == {
            "model": "gpt-4o-mini-tts",
            "voice": "alloy",
            "input": "Good morning.",
            "response_format": "pcm",
        }
        assert fake.speech[1]["voice"] == "nova"
    finally:
        await fake.__aexit__(None, None, None)


async def test_deepgram_aura_wire(monkeypatch):
    cloud, fake = await _start("deepgram")
    try:
        cloud.env(monkeypatch)
        pcm = await create_tts("deepgram", sample_rate=16000).read_all_of("Good morning.")
        req = fake.speak_requests[0]
        assert req.path == "/v1/speak" and req.headers["authorization"] == "Token dg-key"
        assert req.query["model"] == "aura-2-thalia-en" and req.query["encoding"] == "linear16"
        assert req.query["container"] == "none" and float(req.query["sample_rate"]) == 16000
        assert req.json() == {"text": "Good morning."}
        assert not pcm.startswith(b"RIFF")  # raw PCM: no WAV header leaks into the call audio
        assert len(pcm) == int(0.06 * len("Good morning.") * 16000) * 2
        await create_tts("deepgram", voice_id="aura-2-orion-en").read_all_of("Hi.")
        assert fake.speak_requests[1].query["model"] == "aura-2-orion-en"
    finally:
        await fake.__aexit__(None, None, None)


async def test_cartesia_wire(monkeypatch):
    cloud, fake = await _start("cartesia")
    try:
        cloud.env(monkeypatch)
        pcm = await create_tts("cartesia", language="es-MX", sample_rate=8000).read_all_of("Hola.")
        assert len(pcm) == int(0.06 * len("Hola.") * 8000) * 2
        assert fake.headers[0]["x-api-key"] == "cartesia-key" and fake.headers[0]["cartesia-version"]
        assert fake.bodies[0] == {
            "model_id": "sonic-2",
            "transcript": "Hola.",
            "voice": {"mode": "id", "id": "71a7ad14-091c-4e8e-a314-022ece01c121"},
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 8000},
            "language": "es",
        }
    finally:
        await fake.__aexit__(None, None, None)


@pytest.mark.parametrize(("fault", "error"), FAULTS)
async def test_tts_faults_are_typed_and_bounded(tts_cloud, monkeypatch, fault, error):
    tts_cloud.env(monkeypatch)
    tts_cloud.http.fault = fault
    tts_cloud.http.retry_after = "7"
    tts = create_tts(tts_cloud.name, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(error) as info:
        await tts.read_all_of("Hello there, this is a longer sentence to speak.")
    assert time.monotonic() - t0 < 4
    assert info.value.provider == tts_cloud.name
    if fault == "ratelimit":
        assert info.value.status == 429 and info.value.retry_after == 7.0
    if fault in ("auth", "server"):
        assert info.value.status in (401, 500)
    assert len(tts_cloud.http.requests) == 1  # no hidden SDK retries


async def test_tts_bad_key(tts_cloud, monkeypatch):
    tts_cloud.env(monkeypatch, key="wrong")
    with pytest.raises(SpeechAuthError):
        await asyncio.wait_for(create_tts(tts_cloud.name).read_all_of("Hello."), 5)


async def test_tts_connection_refused(tts_cloud, monkeypatch):
    tts_cloud.env(monkeypatch, base_url="http://127.0.0.1:9")
    with pytest.raises(SpeechConnectionError):
        await asyncio.wait_for(create_tts(tts_cloud.name, timeout=2.0).read_all_of("Hello."), 5)


@pytest.mark.serial  # a real-time bound: run with nothing beside it (conftest)
async def test_tts_cancel_hangs_up_the_stream(tts_cloud, monkeypatch):
    tts_cloud.env(monkeypatch)
    tts_cloud.http.chunk_delay = 0.05  # paced like a synthesiser: the body is still coming
    tts = create_tts(tts_cloud.name)
    await tts.feed("First sentence here, long enough to take a while to speak out loud. ")
    await tts.flush()
    it = tts.__aiter__()
    await asyncio.wait_for(it.__anext__(), 5)
    t0 = time.monotonic()
    tts.cancel()
    assert [c async for c in it] == []
    assert time.monotonic() - t0 < 0.1
    await tts.aclose()
    # the server sees the connection closed, not read to the end
    await asyncio.wait_for(tts_cloud.http.hung_up.wait(), 2)
    assert tts_cloud.http.completed == 0


# -- STT ------------------------------------------------------------------------------------------


async def _run_stt(stt, pcm: bytes) -> list:
    for f in frames(pcm, 8000):
        await stt.feed(f)
    await stt.close()
    return await asyncio.wait_for(stt.events(), 10)


async def test_stt_segments_and_transcribes_each_utterance(stt_cloud, monkeypatch, espeak_clip_8k):
    stt_cloud.env(monkeypatch)
    stt_cloud.fake.script = ["i need help with my bill", "thank you"]
    pcm = silence(0.4, 8000) + espeak_clip_8k + silence(1.2, 8000) + espeak_clip_8k + silence(1.0, 8000)
    events = await _run_stt(create_stt(stt_cloud.name, language="en-US"), pcm)
    kinds = [e.type for e in events]
    finals = [e for e in events if e.type == SttEventType.FINAL]
    assert [f.text for f in finals] == ["i need help with my bill", "thank you"]
    assert kinds[0] == SttEventType.SPEECH_STARTED and kinds.count(SttEventType.SPEECH_ENDED) == 2
    assert finals[0].start == pytest.approx(0.4, abs=0.2) and finals[0].end <= finals[1].start
    assert finals[0].language == "en-US"
    clip_secs = len(espeak_clip_8k) / 16000
    assert len(stt_cloud.fake.upload_wavs) == 2
    for rate, secs in stt_cloud.fake.upload_wavs:  # real WAV uploads holding the utterance
        assert rate == 8000 and clip_secs - 0.3 < secs < clip_secs + 1.0


async def test_openai_stt_wire(monkeypatch, espeak_clip_8k):
    cloud, fake = await _start("openai")
    try:
        cloud.env(monkeypatch)
        await _run_stt(create_stt("openai", language="es-MX"), espeak_clip_8k + silence(1.0, 8000))
        req = fake.http.requests[0]
        assert req.path == "/v1/audio/transcriptions" and req.headers["authorization"] == "Bearer sk-test"
        assert req.headers["content-type"].startswith("multipart/form-data")
        parts = fake.uploads[0]
        assert parts["model"] == b"gpt-4o-mini-transcribe" and parts["language"] == b"es"
        assert parts["response_format"] == b"json"
    finally:
        await fake.__aexit__(None, None, None)


async def test_elevenlabs_stt_wire(monkeypatch, espeak_clip_8k):
    cloud, fake = await _start("elevenlabs")
    try:
        cloud.env(monkeypatch)
        await _run_stt(create_stt("elevenlabs", language="de-DE"), espeak_clip_8k + silence(1.0, 8000))
        req = fake.http.requests[0]
        assert req.path == "/v1/speech-to-text" and req.headers["xi-api-key"] == "xi-key"
        parts = fake.uploads[0]
        assert parts["model_id"] == b"scribe_v1" and parts["language_code"] == b"de"
        assert parts["tag_audio_events"] == b"false"
    finally:
        await fake.__aexit__(None, None, None)


@pytest.mark.parametrize(("fault", "error"), FAULTS)
async def test_stt_faults_are_typed_and_bounded(stt_cloud, monkeypatch, espeak_clip_8k, fault, error):
    stt_cloud.env(monkeypatch)
    stt_cloud.http.fault = fault
    stt = create_stt(stt_cloud.name, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(error) as info:
        await _run_stt(stt, espeak_clip_8k + silence(1.0, 8000))
    assert time.monotonic() - t0 < 6
    if fault == "ratelimit":
        assert info.value.retry_after == 1.0
    assert len(stt_cloud.http.requests) == 1  # no hidden SDK retries


async def test_stt_connection_refused(stt_cloud, monkeypatch, espeak_clip_8k):
    stt_cloud.env(monkeypatch, base_url="http://127.0.0.1:9")
    with pytest.raises(SpeechConnectionError):
        await _run_stt(create_stt(stt_cloud.name, timeout=2.0), espeak_clip_8k + silence(1.0, 8000))


@pytest.mark.serial  # a real-time bound: run with nothing beside it (conftest)
async def test_stt_cancel_aborts_the_upload(stt_cloud, monkeypatch, espeak_clip_8k):
    stt_cloud.env(monkeypatch)
    stt_cloud.http.fault = "stall"  # the upload is in flight when we cancel
    stt = create_stt(stt_cloud.name, timeout=30.0)
    for f in frames(espeak_clip_8k + silence(1.0, 8000), 8000):
        await stt.feed(f)
    await asyncio.wait_for(stt_cloud.http.request_seen.wait(), 5)
    t0 = time.monotonic()
    stt.cancel()
    assert await asyncio.wait_for(stt.events(), 1) == []
    assert time.monotonic() - t0 < 0.2
    await asyncio.sleep(0.05)
    assert not stt._tasks  # the worker and its upload are gone


# -- pooled clients -------------------------------------------------------------------------------


async def test_clients_are_pooled_per_loop_and_replaced_once_closed():
    from voipbin.speech.httpclients import close_shared_clients, shared_httpx
    from voipbin.speech.openai_client import openai_client

    http = shared_httpx()
    assert shared_httpx() is http
    oa = openai_client("k", "http://127.0.0.1:9/v1")
    assert openai_client("k", "http://127.0.0.1:9/v1") is oa  # is_closed() is a method there
    assert openai_client("other", "http://127.0.0.1:9/v1") is not oa
    await close_shared_clients()
    assert http.is_closed and oa.is_closed()
    assert shared_httpx() is not http and not shared_httpx().is_closed
    await close_shared_clients()


async def test_tts_streams_share_one_client(monkeypatch):
    cloud, fake = await _start("cartesia")
    try:
        cloud.env(monkeypatch)
        from voipbin.speech.httpclients import shared_httpx

        before = shared_httpx()
        assert await create_tts("cartesia").read_all_of("One.")
        assert await create_tts("cartesia").read_all_of("Two.")
        assert shared_httpx() is before and not before.is_closed
        assert len(fake.bodies) == 2
    finally:
        await fake.__aexit__(None, None, None)
