"""The seed's "AI Talk with Real-Time Conversation" and "AI with Custom Voice ID" examples, verbatim, over
SIP/RTP to the test phone (offline engines; without an ElevenLabs key the voice id variable is kept for
ElevenLabs and Piper speaks)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.ai_session.support import Events
from tests.calls.support import Telephony
from voipbin.phone import TestPhone

ROUTE = {
    "source": {"type": "tel", "target": "+15551234567"},
    "destinations": [{"type": "tel", "target": "+15559876543"}],
}
SEED_AI_TALK = [
    {"type": "answer"},
    {
        "type": "ai_talk",
        "option": {
            "initial_prompt": "You are an expert sales representative for VoIPBIN. Help customers understand "
            "our calling and messaging platform. Be enthusiastic but professional.",
            "language": "en-US",
            "voice_type": "male",
        },
    },
]
SEED_CUSTOM_VOICE = [
    {"type": "answer"},
    {
        "type": "variable_set",
        "option": {"key": "voipbin.tts.elevenlabs.voice_id", "value": "21m00Tcm4TlvDq8ikWAM"},
    },
    {
        "type": "ai_talk",
        "option": {
            "initial_prompt": "You are a friendly receptionist. "
            "Greet callers warmly and help them with their inquiries.",
            "language": "en-US",
        },
    },
]


@pytest.mark.parametrize("actions", [SEED_AI_TALK, SEED_CUSTOM_VOICE], ids=["ai_talk", "custom_voice"])
async def test_seed_ai_talk_examples(telephony: Telephony, tmp_path: Path, actions: list) -> None:
    events = Events(telephony.platform.events)
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    await phone.start()
    try:
        r = await telephony.client.post("/v1.0/calls", json={**ROUTE, "actions": actions})
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        handle = await phone.wait_call(10)
        assert await asyncio.wait_for(handle.answered, 10)
        await events.wait_for(lambda e: bool(e.of("aicall_status_progressing")), within=10)
        await asyncio.sleep(0.5)
        await handle.say("What time do you open?", tts_type="piper")
        await events.wait_for(lambda e: bool(e.messages("assistant")), within=30)
        await asyncio.sleep(0.3)
        assert await handle.hangup() == "local"
        call = await telephony.wait_hangup(call_id, within=10)
        assert call["hangup_reason"] == "normal" and not call["metadata"].get("flow_error"), call
        text = (await handle.heard_text(stt_type="whisper")).lower()
        assert "open" in text, text
        af = (await telephony.client.get(f"/v1.0/activeflows/{call['activeflow_id']}")).json()
        assert [a["type"] for a in af["executed_actions"]] == [a["type"] for a in actions]
    finally:
        events.close()
        await phone.stop()
