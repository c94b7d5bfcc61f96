"""Provider faults never strand or hang up the caller: retries within the turn's budget, the fallback
engine, then a spoken apology and the flow's next action; the aicall records what went wrong.

In-memory calls (real VAD, Whisper, Piper) and the OpenAI SDK pointed at the local fake server."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from fakeproviders.llm_openai import FakeOpenAI
from fakeproviders.llm_server import Fault, Reply
from tests.ai_session.support import Events
from tests.calls.support import heard_fraction
from tests.flow.conftest import Env
from tests.sip.conftest import free_port
from voipbin.speech.stt_whisper import transcribe_pcm

APOLOGY = "I'm sorry, I'm having technical trouble right now. Let me pass you on."
PROMPT = "You are a helpful assistant."


def flow(engine: str, **option: object) -> list[dict]:
    return [
        {
            "type": "ai_talk",
            "option": {"initial_prompt": PROMPT, "engine_model": engine, "greeting": True, **option},
        },
        {"type": "variable_set", "option": {"key": "after_ai", "value": "ran"}},
    ]


async def run_fault(
    env: Env, monkeypatch: pytest.MonkeyPatch, base_url: str, **option: object
) -> tuple[Events, object, object]:
    monkeypatch.setenv("VOIPBIN_OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("VOIPBIN_OPENAI_BASE_URL", base_url)
    events = Events(env.platform.events)
    call, af = await env.run(flow("openai.gpt-4o-mini", **option), within=40)
    return events, call, af


async def check_apology_and_next_action(env: Env, events: Events, call, af, error_part: str) -> dict:  # type: ignore[no-untyped-def]
    assert af.variables["after_ai"] == "ran" and not af.error, af.error  # the flow went on
    assert call.hangup_reason == "normal"  # hung up by the flow's end, not as failed
    assert events.messages("assistant") == [APOLOGY]
    heard = (await transcribe_pcm(call.heard_pcm(), 8000)).text.lower()
    assert heard_fraction(heard, APOLOGY) >= 0.6, heard
    await env.platform.writer.flush()
    aicall_id = uuid.UUID(af.variables["voipbin.aicall.id"])
    row = await env.platform.aicalls.get(aicall_id)
    assert row is not None and row.status == "terminated"
    meta = row.metadata_
    assert meta["end_reason"] == "error" and any(error_part in e for e in meta["errors"]), meta
    return meta


async def test_dead_base_url_gives_the_apology_and_the_next_action(
    ai_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, call, af = await run_fault(ai_env, monkeypatch, f"http://127.0.0.1:{free_port()}/v1")
    await check_apology_and_next_action(ai_env, events, call, af, "openai.gpt-4o-mini")
    events.close()


async def test_429_storm_is_retried_then_apologised(ai_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeOpenAI() as fake:
        fake.default = Reply(fault=Fault.http(429, "rate limited", retry_after="0.2"))
        events, call, af = await run_fault(ai_env, monkeypatch, fake.base_url)
        meta = await check_apology_and_next_action(ai_env, events, call, af, "429")
        assert len(fake.requests) >= 3  # retried (within the 3 s budget), not given up at once
        assert len([e for e in meta["errors"] if "429" in e]) == len(fake.requests)
    events.close()


async def test_stalled_stream_gives_the_apology(ai_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeOpenAI() as fake:
        fake.default = Reply(fault=Fault.stall(after=0))
        events, call, af = await run_fault(ai_env, monkeypatch, fake.base_url)
        await check_apology_and_next_action(ai_env, events, call, af, "no first token")
    events.close()


@pytest.mark.parametrize("ai_env", [{"fallback_engine_model": "offline.scripted"}], indirect=True)
async def test_fallback_engine_answers_when_the_primary_fails(
    ai_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeOpenAI() as fake:
        fake.default = Reply(fault=Fault.http(500, "boom"))
        events, call, af = await run_fault(ai_env, monkeypatch, fake.base_url, duration=5)
    assert af.variables["after_ai"] == "ran"
    (assistant,) = [m for m in events.of("aimessage_created") if m["role"] == "assistant"]
    assert assistant["content"] == "Hello! How can I help you today?"  # the scripted engine's greeting
    assert assistant["turn"]["llm"] == "offline.scripted" and any(
        "500" in e for e in assistant["turn"]["errors"]
    )
    assert np.frombuffer(call.heard_pcm(), dtype="<i2").size > 8000
    events.close()


async def test_rejected_voice_falls_back_to_the_default_voice(ai_env: Env) -> None:
    events = Events(ai_env.platform.events)
    call, af = await ai_env.run(
        [{"type": "ai", "option": {"initial_prompt": PROMPT, "greeting": "Hello there, how are you?",
                                   "tts_type": "piper", "tts_voice_id": "no-such-voice", "duration": 4}}],
        within=15,
    )  # fmt: skip
    heard = (await transcribe_pcm(call.heard_pcm(), 8000)).text.lower()
    assert heard_fraction(heard, "hello there how are you") >= 0.6, heard
    await ai_env.platform.writer.flush()
    row = await ai_env.platform.aicalls.get(uuid.UUID(af.variables["voipbin.aicall.id"]))
    assert row is not None
    (warning,) = row.metadata_["warnings"]
    assert "no-such-voice" in warning and "default voice" in warning
    assert "errors" not in row.metadata_ and row.metadata_["end_reason"] == "duration"
    events.close()


@pytest.mark.parametrize("ai_env", [{"fallback_tts_type": "piper"}], indirect=True)
async def test_a_dead_tts_gives_way_to_the_fallback_tts(ai_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOIPBIN_ELEVENLABS_API_KEY", "xi-test")
    monkeypatch.setenv("VOIPBIN_ELEVENLABS_BASE_URL", f"http://127.0.0.1:{free_port()}")
    call, af = await ai_env.run(
        [{"type": "ai", "option": {"initial_prompt": PROMPT, "greeting": "Hello there, how are you?",
                                   "tts_type": "elevenlabs", "duration": 6}}],
        within=20,
    )  # fmt: skip
    heard = (await transcribe_pcm(call.heard_pcm(), 8000)).text.lower()
    assert heard_fraction(heard, "hello there how are you") >= 0.6, heard
    await ai_env.platform.writer.flush()
    row = await ai_env.platform.aicalls.get(uuid.UUID(af.variables["voipbin.aicall.id"]))
    assert row is not None
    assert any("fallback piper" in w for w in row.metadata_["warnings"]), row.metadata_
    assert any("elevenlabs" in e for e in row.metadata_["errors"]), row.metadata_
    messages = await ai_env.platform.aicalls.messages(row.id)
    (greeting,) = [m for m in messages if m.role == "assistant"]
    assert greeting.turn["tts"] == "piper"
