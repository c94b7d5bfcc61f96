"""The seed's "Real-Time AI Summary" example, verbatim, over SIP/RTP: the platform calls a phone, starts a
live transcription and a real-time summary of the call, and connects the phone to a second phone. The
summary fills in while the call is up and is final once it ends."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

from tests.calls.support import Telephony, eventually
from tests.transcribe.support import CALLER, speech
from voipbin.phone import TestPhone

SEED_EXAMPLE_5 = {
    "source": {"type": "tel", "target": "+15551234567"},
    "destinations": [{"type": "tel", "target": "+15559876543"}],
    "actions": [
        {"type": "answer"},
        {"type": "transcribe_start", "option": {"language": "en-US", "real_time": True}},
        {
            "type": "ai_summary",
            "option": {"source_type": "call", "source_id": "${voipbin.call.id}", "real_time": True},
        },
        {
            "type": "connect",
            "option": {
                "source": {"type": "tel", "target": "+15551234567"},
                "destinations": [{"type": "tel", "target": "+15551111111"}],
            },
        },
    ],
}


async def test_seed_real_time_ai_summary(tele: Telephony, tmp_path: Path) -> None:
    said = tmp_path / "said.wav"
    with wave.open(str(said), "wb") as w:  # a moment of silence, then the customer talks
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(8000 * 2 * 2) + await speech(CALLER))
    customer = TestPhone("+15559876543", server=("127.0.0.1", tele.sip_port), play=said)
    agent = TestPhone(
        "+15551111111", server=("127.0.0.1", tele.sip_port), record=tmp_path / "agent.wav", hangup_after=14.0
    )
    await customer.start()
    await agent.start()
    client = tele.client
    try:
        r = await client.post("/v1.0/calls", json=SEED_EXAMPLE_5)
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]

        async def progressing_summary() -> bool:
            found = (await client.get("/v1.0/aisummaries")).json()["result"]
            return bool(found) and found[0]["status"] == "progressing"

        await eventually(progressing_summary, within=15)  # real time: it exists while the call is up
        call = await tele.wait_hangup(call_id, within=60)
        assert call["hangup_reason"] == "normal", call
        leg = await tele.call(call["chained_call_ids"][0])
        assert leg["destination"]["target"] == "+15551111111" and leg["hangup_by"] == "remote"
        handle = await agent.wait_call(5)
        await asyncio.wait_for(handle.ended, 10)
    finally:
        await customer.stop()
        await agent.stop()

    async def summary_done() -> bool:
        return (await client.get("/v1.0/aisummaries")).json()["result"][0]["status"] == "done"

    await eventually(summary_done, within=60)
    (s,) = (await client.get("/v1.0/aisummaries")).json()["result"]
    assert s["reference_type"] == "call" and s["reference_id"] == call_id
    assert "billing" in s["content"].lower(), s  # what the customer said, summarized
