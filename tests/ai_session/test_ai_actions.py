"""``ai`` / ``ai_talk`` on the in-memory call: real VAD, Whisper, Piper and the scripted LLM.

The caller's words are Piper speech delivered in real time through ``MemoryCall.audio_in``;
what the AI says is played in real time into ``MemoryCall.played`` and transcribed with Whisper.
"""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest

from tests.ai_session.support import Events, caller_speech
from tests.calls.support import heard_fraction
from tests.flow.conftest import Env
from voipbin.ai.llm.base import Message
from voipbin.ai.llm.scripted import ScriptedLLM
from voipbin.ai.session.responder import Responder
from voipbin.speech.audio import volume
from voipbin.speech.registry import create_tts
from voipbin.speech.stt_whisper import transcribe_pcm
from voipbin.store.tables import AI

pytestmark = pytest.mark.serial  # asserts real time: run with nothing beside it (conftest)

PROMPT = "You are a helpful customer service assistant. Answer questions politely and concisely."


def voiced_seconds(call) -> float:  # type: ignore[no-untyped-def]
    return sum(0.02 for _, f in call.played if volume(f) > 0.3)


async def wait_until(check, within: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110  (polls state that has no event)
            await asyncio.sleep(0.02)


async def start(env: Env, actions: list[dict], events: Events):  # type: ignore[no-untyped-def]
    call = await env.call(actions)
    af_id = await env.start(call)
    await events.wait_for(lambda e: bool(e.of("aicall_status_progressing")), within=10)
    return call, af_id


async def test_ai_turn_answers_the_caller(env: Env) -> None:
    events = Events(env.platform.events)
    call, af_id = await start(
        env,
        [{"type": "ai", "option": {"initial_prompt": PROMPT, "language": "en-US", "voice_type": "female"}}],
        events,
    )
    call.speak(await caller_speech("What time do you open?"), "question")
    await events.wait_for(lambda e: bool(e.messages("assistant")), within=30)
    await call.remote_hangup()
    await env.wait(af_id, 10)

    assert any("open" in m.lower() for m in events.messages("user")), events.messages("user")
    assert events.messages("assistant") == ["We are open from nine to five, Monday to Friday."]
    heard = (await transcribe_pcm(call.heard_pcm(), 8000)).text.lower()
    # Through G.711 and Whisper tiny.en most words of the answer must survive ("monday" -> "1 day" happens).
    assert heard_fraction(heard, "we are open from nine to five monday to friday") >= 0.7, heard
    system = events.messages("system")
    assert "phone call" in system[0] and system[1] == PROMPT
    af = await env.activeflow(af_id)
    aicall_id = af.variables["voipbin.aicall.id"]
    assert uuid.UUID(aicall_id) and af.variables["voipbin.aicall.ai_engine_model"] == "offline.scripted"
    (terminated,) = events.of("aicall_status_terminated")
    assert terminated["id"] == aicall_id and terminated["status"] == "terminated" and terminated["tm_end"]
    assert terminated["reference_id"] == str(call.call_id)
    latency = terminated["metadata"]["turn_latency_ms"]
    assert len(latency) == 1 and 0 < latency[0] < 5000, latency
    for m in events.of("aimessage_created"):
        assert m["aicall_id"] == aicall_id and m["activeflow_id"] == str(af_id)
    events.close()


async def test_ai_talk_barge_in_flushes_and_cancels(env: Env) -> None:
    events = Events(env.platform.events)
    call, af_id = await start(env, [{"type": "ai_talk", "option": {"initial_prompt": PROMPT}}], events)
    question = "Please tell me about the weather in Paris and in London and in Berlin tomorrow morning."
    call.speak(await caller_speech(question), "question")
    await wait_until(lambda: voiced_seconds(call) > 1.0)  # the AI is talking
    interrupt = await caller_speech("Stop, stop, stop.")
    call.speak(interrupt, "interrupt")
    await wait_until(lambda: bool(call.flushes), within=5)
    await wait_until(lambda: len(events.messages("assistant")) >= 2, within=30)  # it answered "stop"
    await call.remote_hangup()
    await env.wait(af_id, 10)

    # Caller's voice onset (first loud frame of the interruption) -> playout flushed.
    lead = next(i for i in range(0, len(interrupt), 320) if volume(interrupt[i : i + 320]) > 0.6) / 16000
    onset = call.onsets["interrupt"] + lead
    flushed_at = call.flushes[0][0]
    barge = events.of("aicall_status_terminated")[0]["metadata"]["barge_ins"]
    # Voice onset detected -> our audio silenced (paused at once, flushed once confirmed): the
    # pipeline's own reaction.
    assert len(barge) >= 1 and barge[0]["reaction_ms"] < 300, barge
    # Voice onset -> silence: the reaction plus the VAD's start_secs (0.2 s by default), the minimum
    # speech that interrupts (so a cough does not).
    assert flushed_at - onset < 0.2 + 0.3, (flushed_at - onset, barge)
    # Nothing of the first answer is heard after the flush (allow the frame in flight).
    first_reply_frames = [t for t, f in call.played if t > flushed_at + 0.03 and volume(f) > 0.3]
    next_reply_start = min(first_reply_frames) if first_reply_frames else float("inf")
    assert next_reply_start > flushed_at + 0.2, next_reply_start - flushed_at
    interrupted, answer = events.messages("assistant")[:2]
    assert interrupted.startswith("You said: Please tell me") and "stop" in answer.lower()
    # The interrupted answer records that it was cut, when, and what the caller heard of it.
    turn = next(m for m in events.of("aimessage_created") if m["role"] == "assistant")["turn"]
    assert turn["interrupted"] is True and turn["interrupted_ms"] > turn["first_audio_out_ms"]
    assert 0 < len(turn["spoken_text"]) < len(interrupted) and interrupted.startswith(turn["spoken_text"])
    assert turn["usage"]["tts_characters"] == len(turn["spoken_text"])
    # The first answer is ~6 s of speech; the caller heard only what played before the flush.
    heard_before = sum(0.02 for t, f in call.played if t <= flushed_at and volume(f) > 0.3)
    assert 1.0 <= heard_before < 3.0, heard_before
    events.close()


async def test_stop_service_continues_the_flow(env: Env) -> None:
    events = Events(env.platform.events)
    call, af_id = await start(
        env,
        [
            {"type": "ai_talk", "option": {"initial_prompt": PROMPT, "tool_names": ["stop_service"]}},
            {"type": "variable_set", "option": {"key": "after_ai", "value": "${voipbin.aicall.id}"}},
        ],
        events,
    )
    # One breath: after "Thank you," (a 0.32 s pause) Smart Turn says 0.98 complete, and a short turn
    # ends after 0.3 s of silence, so that phrase is two turns or one by a frame's margin.
    call.speak(await caller_speech("Thank you and goodbye."), "bye")
    await env.wait(af_id, 30)
    af = await env.activeflow(af_id)
    assert af.variables["after_ai"] == af.variables["voipbin.aicall.id"] and af.status == "ended"
    assert call.hangup_reason == "normal"  # the flow ended after variable_set, not on an error
    assert events.messages("assistant") == ["Goodbye! Have a nice day."]
    (tool,) = [m for m in events.of("aimessage_created") if m["role"] == "tool"]
    assert '"result": "success"' in tool["content"]
    assert voiced_seconds(call) > 0.8  # the goodbye was played before the flow moved on
    events.close()


async def test_missing_provider_key_fails_the_call(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOIPBIN_OPENAI_API_KEY", raising=False)
    call, af = await env.run(
        [{"type": "ai_talk", "option": {"initial_prompt": PROMPT, "engine_model": "openai.gpt-5-mini"}}],
        within=5,
    )
    assert call.hangup_reason == "failed"
    row = await env.call_row(call.call_id)
    assert "VOIPBIN_OPENAI_API_KEY" in row.metadata_["flow_error"], row.metadata_
    assert "VOIPBIN_OPENAI_API_KEY" in af.error


async def test_unknown_or_foreign_ai_fails(env: Env) -> None:
    missing = uuid.uuid4()
    call, af = await env.run([{"type": "ai_talk", "option": {"ai_id": str(missing)}}], within=5)
    assert call.hangup_reason == "failed" and f"ai {missing} not found" in af.error


async def test_ai_row_prompt_tools_and_duration(env: Env) -> None:
    ai = AI(
        customer_id=env.customer_id,
        name="support",
        engine_model="offline.scripted",
        init_prompt="You help ${voipbin.call.source.name}.",
        tool_names=["stop_service"],
        parameter={"shop": "north"},
    )
    async with env.platform.db.session() as session:
        session.add(ai)
        await session.commit()
    events = Events(env.platform.events)
    _call, af = await env.run(
        [
            {
                "type": "ai_talk",
                "option": {"assistance_type": "ai", "assistance_id": str(ai.id), "duration": 1},
            },
            {"type": "variable_set", "option": {"key": "next", "value": "ran"}},
        ],
        within=10,
    )
    assert af.variables["next"] == "ran" and af.variables["voipbin.aicall.ai_id"] == str(ai.id)
    system = events.messages("system")
    assert system[1] == "You help Alice." and '"shop": "north"' in system[2]
    (progressing,) = events.of("aicall_status_progressing")
    assert progressing["assistance_id"] == str(ai.id) and progressing["ai_stt_type"] == "whisper"
    events.close()


async def test_greeting_is_spoken_first(env: Env) -> None:
    events = Events(env.platform.events)
    call = await env.call(
        [{"type": "ai", "option": {"initial_prompt": PROMPT, "greeting": True, "duration": 6}}]
    )
    af_id = await env.start(call)
    await env.wait(af_id, 15)
    assert events.messages("assistant") == ["Hello! How can I help you today?"]
    assert np.frombuffer(call.heard_pcm(), dtype="<i2").size > 8000  # over a second of audio
    events.close()


async def test_cancelling_a_reply_stops_generation_synthesis_and_playout(env: Env) -> None:
    call = await env.call([])
    await caller_speech("Warm up.")  # loads the Piper voice, so synthesis keeps up with the model
    llm = ScriptedLLM(token_delay=0.15)  # a model that is still writing when the caller interrupts
    responder = Responder(llm, lambda: create_tts("piper"), call)
    said = "Please tell me about the weather in Paris, in London, in Berlin and in Rome tomorrow morning"
    task = asyncio.create_task(responder.run([Message.user(said)], []))
    await wait_until(lambda: voiced_seconds(call) > 0.3)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    call.flush_playout()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert loop.time() - t0 < 0.3
    assert task.cancelled() and len(responder.reply.text) < len("You said: " + said)
    frames = len(call.played)
    await asyncio.sleep(0.3)
    assert len(call.played) == frames  # nothing more is played
