"""transcribe_start / transcribe_stop / ai_summary inside call flows (engine + in-memory call with media)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from tests.flow.conftest import Env
from tests.transcribe.support import AGENT, CALLER, FakeMedia, speech
from voipbin.events.bus import Subscription
from voipbin.store.tables import Activeflow, Summary, Transcribe, Transcript
from voipbin.tenants import create_customer


async def next_event(sub: Subscription, type_: str, within: float = 30.0, **match: Any) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            ev = await sub.get()
            if ev.type == type_ and all(ev.data.get(k) == v for k, v in match.items()):
                return ev.data


async def rows(env: Env, model: Any, *where: Any) -> list[Any]:
    async with env.platform.db.session() as session:
        return list((await session.execute(select(model).where(*where))).scalars().all())


async def test_seed_example_4_transcribe_then_summary_in_the_flow(flowenv: Env) -> None:
    """The seed's "AI Summary for Call Transcription" actions, sleep shortened (see test_seed_e2e)."""
    caller = await speech(CALLER)
    media = FakeMedia()
    sub = flowenv.platform.events.subscribe()
    call = await flowenv.call(
        [
            {"type": "answer"},
            {"type": "transcribe_start", "option": {"language": "en-US"}},
            {
                "type": "talk",
                "option": {"text": "Hello! Please tell me about your experience.", "language": "en-US"},
            },
            {"type": "sleep", "option": {"duration": 3000}},
            {
                "type": "ai_summary",
                "option": {"source_type": "transcribe", "source_id": "${voipbin.transcribe.id}"},
            },
            {"type": "talk", "option": {"text": "${voipbin.ai_summary.content}", "language": "en-US"}},
        ]
    )
    call.media = media  # type: ignore[attr-defined]
    media.start()
    af_id = await flowenv.start(call)
    created = await next_event(sub, "transcribe_created")
    media.say("in", caller)  # no pause after it: ai_summary must flush what VAD still holds
    await flowenv.wait(af_id, 60)
    af = await flowenv.activeflow(af_id)
    assert af.error == "", af.error
    v = af.variables
    assert v["voipbin.transcribe.id"] == created["id"] and v["voipbin.transcribe.language"] == "en-US"
    assert v["voipbin.transcribe.direction"] == "both"
    content = v["voipbin.ai_summary.content"]
    assert "billing" in content.lower() and "support" in content.lower(), content
    assert ("tts", content) in call.log  # the last talk spoke the summary
    summary = await next_event(sub, "summary_created")
    assert summary["status"] == "done" and summary["reference_type"] == "transcribe"
    assert summary["reference_id"] == created["id"] and summary["id"] == v["voipbin.ai_summary.id"]
    assert summary["activeflow_id"] == str(af_id) and summary["content"] == content
    # the flow ended -> call hung up -> the transcribe finishes
    done = await next_event(sub, "transcribe_done", id=created["id"])
    assert done["status"] == "done"
    (t,) = await rows(flowenv, Transcribe, Transcribe.id == uuid.UUID(created["id"]))
    assert t.status == "done" and t.reference_type == "call" and t.reference_id == call.call_id
    assert t.activeflow_id == af_id
    said = await rows(flowenv, Transcript, Transcript.transcribe_id == t.id)
    assert any("billing" in s.message.lower() and s.direction == "in" for s in said), said


async def test_seed_example_5_real_time_summary_of_the_call(
    flowenv: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    flowenv.platform.summaries.update_every = 1  # VOIPBIN_SUMMARY_UPDATE_EVERY=1
    caller, agent = await speech(CALLER), await speech(AGENT)
    media = FakeMedia()
    sub = flowenv.platform.events.subscribe()
    call = await flowenv.call(
        [
            {"type": "answer"},
            {"type": "transcribe_start", "option": {"language": "en-US", "real_time": True}},
            {
                "type": "ai_summary",
                "option": {"source_type": "call", "source_id": "${voipbin.call.id}", "real_time": True},
            },
            {"type": "sleep", "option": {"duration": 20000}},
        ]
    )
    call.media = media  # type: ignore[attr-defined]
    media.start()
    af_id = await flowenv.start(call)
    created = await next_event(sub, "summary_created")
    assert created["status"] == "progressing" and created["reference_type"] == "call"
    assert created["reference_id"] == str(call.call_id)
    media.say("out", agent, silence_after=0.6)
    media.say("in", bytes(16000 * 3) + caller, silence_after=0.6)
    live = await next_event(sub, "summary_updated", id=created["id"], within=60)
    assert live["status"] == "progressing" and live["content"], live
    assert flowenv.platform.flows.is_live(af_id)  # updated while the call is up
    await media.drained()
    await call.remote_hangup()
    final = await next_event(sub, "summary_updated", id=created["id"], status="done", within=60)
    text = final["content"].lower()
    assert "weather" in text and "billing" in text, final
    # one transcribe: ai_summary reused the one transcribe_start began
    transcribes = await rows(flowenv, Transcribe, Transcribe.reference_id == call.call_id)
    assert len(transcribes) == 1 and transcribes[0].status == "done"
    (s,) = await rows(flowenv, Summary, Summary.reference_id == call.call_id)
    assert s.transcribe_id == transcribes[0].id and s.status == "done"
    af = await flowenv.activeflow(af_id)
    assert af.variables["voipbin.ai_summary.id"] == created["id"]


async def test_transcribe_stop_stores_the_last_words_before_the_flow_goes_on(flowenv: Env) -> None:
    caller = await speech(CALLER)
    media = FakeMedia()
    sub = flowenv.platform.events.subscribe()
    call = await flowenv.call(
        [
            {"type": "transcribe_start", "option": {"language": "en-US", "direction": "in"}},
            {"type": "sleep", "option": {"duration": 2500}},
            {"type": "transcribe_stop"},
            {"type": "variable_set", "option": {"key": "stopped", "value": "yes"}},
            {"type": "sleep", "option": {"duration": 200}},
        ]
    )
    call.media = media  # type: ignore[attr-defined]
    media.start()
    af_id = await flowenv.start(call)
    created = await next_event(sub, "transcribe_created")
    assert created["direction"] == "in"
    media.say("in", caller)
    done = await next_event(sub, "transcribe_done", id=created["id"])
    said = await rows(flowenv, Transcript, Transcript.transcribe_id == uuid.UUID(done["id"]))
    assert said and all(s.direction == "in" for s in said)
    assert "billing" in " ".join(s.message.lower() for s in said)
    assert not call.is_hungup  # stopping the transcribe does not end the call
    await flowenv.wait(af_id, 30)
    assert (await flowenv.activeflow(af_id)).variables["stopped"] == "yes"


async def test_ai_summary_of_a_foreign_transcribe_fails_loudly(flowenv: Env) -> None:
    async with flowenv.platform.db.session() as session:
        other = await create_customer(
            session,
            passwords=flowenv.platform.passwords,
            initial_balance=flowenv.platform.settings.initial_balance,
            name="other",
            username="other",
            password="other-pass-1",
        )
        await session.commit()
        foreign = Transcribe(customer_id=other.customer.id, reference_id=uuid.uuid4(), status="done")
        session.add(foreign)
        await session.commit()
    call, af = await flowenv.run(
        [{"type": "ai_summary", "option": {"source_type": "transcribe", "source_id": str(foreign.id)}}]
    )
    assert "not found" in af.error and call.hangup_reason == "failed", af.error
    assert await rows(flowenv, Summary) == []


async def test_ai_summary_fails_loudly_when_the_model_fails(flowenv: Env) -> None:
    async with flowenv.platform.db.session() as session:
        t = Transcribe(customer_id=flowenv.customer_id, reference_id=uuid.uuid4(), status="done")
        session.add(t)
        await session.flush()
        session.add(
            Transcript(customer_id=flowenv.customer_id, transcribe_id=t.id, direction="in", message="Hi")
        )
        await session.commit()
    flowenv.platform.summaries.engine_model = "openai.gpt-4o"  # no key configured: unusable
    _, af = await flowenv.run(
        [{"type": "ai_summary", "option": {"reference_type": "transcribe", "reference_id": str(t.id)}}]
    )
    assert "summary model" in af.error, af.error
    assert await rows(flowenv, Summary) == []


async def test_transcribe_start_needs_call_media(flowenv: Env) -> None:
    call, af = await flowenv.run([{"type": "transcribe_start", "option": {"language": "en-US"}}])
    assert "no media" in af.error and call.hangup_reason == "failed", af.error


async def test_on_end_flow_of_a_transcribe_summarizes_it(flowenv: Env) -> None:
    """VoIPBIN's way: the transcribe's on_end_flow_id runs ai_summary on its own reference."""
    caller = await speech(CALLER)
    on_end = await flowenv.flow([{"type": "ai_summary", "option": {}}])
    media = FakeMedia()
    sub = flowenv.platform.events.subscribe()
    call = await flowenv.call(
        [
            {"type": "variable_set", "option": {"key": "customer.tier", "value": "gold"}},
            {"type": "transcribe_start", "option": {"language": "en-US", "on_end_flow_id": str(on_end.id)}},
            {"type": "sleep", "option": {"duration": 2500}},
        ]
    )
    call.media = media  # type: ignore[attr-defined]
    media.start()
    af_id = await flowenv.start(call)
    created = await next_event(sub, "transcribe_created")
    assert created["on_end_flow_id"] == str(on_end.id)
    media.say("in", caller)
    summary = await next_event(sub, "summary_created", within=60)
    assert summary["reference_type"] == "transcribe" and summary["reference_id"] == created["id"]
    assert "billing" in summary["content"].lower(), summary
    (derived,) = [a for a in await rows(flowenv, Activeflow) if a.reference_type == "transcribe"]
    assert derived.reference_id == uuid.UUID(created["id"]) and derived.reference_activeflow_id == af_id
    assert derived.variables["customer.tier"] == "gold"  # copied from the call's activeflow
    assert derived.variables["voipbin.transcribe.id"] == created["id"]
