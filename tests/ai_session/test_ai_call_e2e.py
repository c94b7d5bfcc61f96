"""The seed's "Simple AI Voice Assistant" end to end: POST /v1.0/calls with its actions verbatim rings
the built-in test phone over SIP/RTP on loopback; the phone asks a question out loud, the platform's
AI answers (offline VAD + Whisper + scripted LLM + Piper), the phone records what it hears, hangs up,
and Whisper checks what it heard."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.ai_session.support import Events
from tests.calls.support import Telephony, heard_fraction
from voipbin.phone import TestPhone

SEED_CALL = {
    "source": {"type": "tel", "target": "+15551234567"},
    "destinations": [{"type": "tel", "target": "+15559876543"}],
    "actions": [
        {"type": "answer"},
        {
            "type": "ai",
            "option": {
                "initial_prompt": "You are a helpful customer service assistant. "
                "Answer questions politely and concisely.",
                "language": "en-US",
                "voice_type": "female",
            },
        },
    ],
}


async def test_seed_simple_ai_voice_assistant(telephony: Telephony, tmp_path: Path) -> None:
    events = Events(telephony.platform.events)
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    await phone.start()
    try:
        r = await telephony.client.post("/v1.0/calls", json=SEED_CALL)
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        handle = await phone.wait_call(10)
        assert await asyncio.wait_for(handle.answered, 10)
        await events.wait_for(lambda e: bool(e.of("aicall_status_progressing")), within=10)
        await asyncio.sleep(0.5)
        await handle.say("What time do you open?", tts_type="piper")
        await events.wait_for(lambda e: bool(e.messages("assistant")), within=30)  # published once played
        await asyncio.sleep(0.3)
        assert await handle.hangup() == "local"
        call = await telephony.wait_hangup(call_id, within=10)
        assert call["hangup_by"] == "remote" and call["hangup_reason"] == "normal", call
        assert not call["metadata"].get("flow_error"), call["metadata"]
        text = (await handle.heard_text(stt_type="whisper")).lower()
        # The scripted model's answer; through G.711 and Whisper tiny.en most of its words must survive.
        assert heard_fraction(text, "we are open from 9 to 5 monday to friday") >= 0.7, text
        assert any("open" in m.lower() for m in events.messages("user")), events.messages("user")
        await events.wait_for(lambda e: bool(e.of("aicall_status_terminated")), within=10)
        (terminated,) = events.of("aicall_status_terminated")
        assert terminated["reference_id"] == call_id and terminated["ai_engine_model"] == "offline.scripted"
        af = (await telephony.client.get(f"/v1.0/activeflows/{call['activeflow_id']}")).json()
        assert af["status"] == "ended"
    finally:
        events.close()
        await phone.stop()
