"""``connect_call`` end to end over SIP/RTP: the model (the OpenAI SDK against the local fake server)
says it will connect and calls ``connect_call`` with a destination; the caller leaves the AI, is
bridged to a second phone and both hear each other; when the second phone hangs up, the flow goes on
with its next action (the first phone hears it). The tool call and its result are aimessages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fakeproviders.llm_openai import FakeOpenAI
from fakeproviders.llm_server import FakeToolCall, Reply
from tests.ai_session.support import Events
from tests.calls.support import Telephony, heard_fraction
from voipbin.phone import TestPhone

SECOND = "+15551111111"


def actions(tools: list[str], allowed: list[str] | None = None) -> list[dict]:
    option: dict = {
        "initial_prompt": "Connect the caller to sales when asked.",
        "engine_model": "openai.gpt-4o-mini",
        "greeting": True,
        "tool_names": tools,
    }
    return [
        {"type": "answer"},
        {"type": "ai_talk", "option": option},
        {"type": "talk", "option": {"text": "Back in the flow now.", "language": "en-US"}},
        {"type": "sleep", "option": {"duration": 4000}},
    ]


def connect_reply(target: str) -> Reply:
    arguments = json.dumps({"destinations": [{"type": "tel", "target": target}]})
    return Reply(
        text=["One moment, ", "I will connect you now."],
        tool_calls=[FakeToolCall("call_1", "connect_call", [arguments[:20], arguments[20:]])],
    )


async def test_connect_call_bridges_the_caller_and_the_flow_continues(
    telephony: Telephony, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = Events(telephony.platform.events)
    first = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), record=tmp_path / "first.wav")
    second = TestPhone(SECOND, server=("127.0.0.1", telephony.sip_port), record=tmp_path / "second.wav")
    async with FakeOpenAI() as fake:
        fake.push(connect_reply(SECOND))
        monkeypatch.setenv("VOIPBIN_OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("VOIPBIN_OPENAI_BASE_URL", fake.base_url)
        await first.start()
        await second.start()
        try:
            r = await telephony.client.post(
                "/v1.0/calls",
                json={
                    "source": {"type": "tel", "target": "+15551234567"},
                    "destinations": [{"type": "tel", "target": "+15559876543"}],
                    "actions": actions(["connect_call"]),
                },
            )
            assert r.status_code == 200, r.text
            call_id = r.json()["id"]
            a = await first.wait_call(10)
            assert await asyncio.wait_for(a.answered, 10)
            b = await second.wait_call(20)  # dialled once the AI said its sentence and called the tool
            assert await asyncio.wait_for(b.answered, 10)
            await asyncio.sleep(0.5)
            await a.say("Hello from the first phone.", tts_type="piper")
            await b.say("Hi, this is the second phone.", tts_type="piper")
            assert await b.hangup() == "local"
            await asyncio.sleep(3.0)  # "Back in the flow now."
            assert await a.hangup() == "local"
            await telephony.wait_hangup(call_id, within=10)

            heard_a = (await a.heard_text(stt_type="whisper")).lower()
            heard_b = (await b.heard_text(stt_type="whisper")).lower()
            assert heard_fraction(heard_a, "i will connect you now") >= 0.6, heard_a
            assert heard_fraction(heard_a, "this is the second phone") >= 0.6, heard_a
            assert heard_fraction(heard_a, "back in the flow now") >= 0.6, heard_a
            assert heard_fraction(heard_b, "hello from the first phone") >= 0.6, heard_b

            created = events.of("aimessage_created")
            (assistant,) = [m for m in created if m["role"] == "assistant"]
            assert assistant["tool_calls"][0]["function"]["name"] == "connect_call"
            (tool,) = [m for m in created if m["role"] == "tool"]
            assert json.loads(tool["content"])["result"] == "success" and tool["tool_call_id"] == "call_1"
            (terminated,) = events.of("aicall_status_terminated")
            assert terminated["metadata"]["end_reason"] == "connect_call"
            master = await telephony.call(call_id)
            assert len(master["chained_call_ids"]) == 1 and not master["metadata"].get("flow_error")
            offered = fake.requests[0].json()["tools"]
            assert [t["function"]["name"] for t in offered] == ["connect_call"]
        finally:
            events.close()
            await first.stop()
            await second.stop()
