"""Barge-in over real SIP/RTP: the test phone cuts into an ``ai_talk`` answer and hears silence.

POST /v1.0/calls rings the built-in test phone on loopback; it asks a long question, and one second
into the answer says "Stop, stop, stop.". What the phone receives goes quiet soon after its voice
starts (the bound is generous: bench/barge_in.py measures the latency), the answer is recorded as
interrupted with only its spoken part kept, and the AI answers the interruption.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.ai_session.support import Events
from tests.calls.support import Telephony
from voipbin.phone import TestPhone
from voipbin.phone.speech import synthesize
from voipbin.speech.audio import dbfs

pytestmark = pytest.mark.serial  # asserts real time: run with nothing beside it (conftest)

QUESTION = "Please tell me about the weather in Paris and in London and in Berlin tomorrow morning."
CALL = {
    "source": {"type": "tel", "target": "+15551234567"},
    "destinations": [{"type": "tel", "target": "+15559876543"}],
    "actions": [
        {"type": "answer"},
        {
            "type": "ai_talk",
            "option": {"initial_prompt": "You are a helpful assistant.", "language": "en-US"},
        },
    ],
}


async def test_barge_in_over_sip_silences_our_audio(telephony: Telephony, tmp_path: Path) -> None:
    events = Events(telephony.platform.events)
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port))
    await phone.start()
    question = await synthesize(QUESTION, "piper")
    stop = await synthesize("Stop, stop, stop.", "piper")
    try:
        r = await telephony.client.post("/v1.0/calls", json=CALL)
        assert r.status_code == 200, r.text
        handle = await phone.wait_call(10)
        assert await asyncio.wait_for(handle.answered, 10)
        assert handle.media is not None
        heard: list[tuple[float, float]] = []  # (time, dBFS) of each frame the phone plays
        tap = handle.media.tap("in", maxsize=500)

        async def listen() -> None:
            while True:
                for f in await tap.get_batch(1):
                    heard.append((time.monotonic(), dbfs(f.pcm)))

        listener = asyncio.create_task(listen())
        await events.wait_for(lambda e: bool(e.of("aicall_status_progressing")), within=10)
        await asyncio.sleep(0.5)
        assert handle.media is not None
        await handle.media.play_pcm(question)
        asked = time.monotonic()
        async with asyncio.timeout(30):  # the answer plays for a second
            while sum(0.02 for t, d in heard if t > asked and d > -40) < 1.0:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        spoke = time.monotonic()
        await handle.media.play_pcm(stop)
        await events.wait_for(lambda e: len(e.messages("assistant")) >= 2, within=30)
        listener.cancel()
        await handle.hangup()
    finally:
        await phone.stop()

    # The phone hears a run of silence starting within a second of its voice (its own 80 ms jitter
    # buffer and our playout included; a loaded CI machine adds its lag).
    after = [(t, d) for t, d in heard if t >= spoke]
    quiet_at = next(
        (after[i][0] for i in range(len(after) - 10) if all(d < -55 for _, d in after[i : i + 10])), None
    )
    assert quiet_at is not None and quiet_at - spoke < 1.0, quiet_at and quiet_at - spoke
    interrupted, answer = events.messages("assistant")[:2]
    assert interrupted.startswith("You said: Please tell me") and "stop" in answer.lower()
    turn = next(m for m in events.of("aimessage_created") if m["role"] == "assistant")["turn"]
    assert turn["interrupted"] is True and interrupted.startswith(turn["spoken_text"])
    assert 0 < len(turn["spoken_text"]) < len(interrupted)
    events.close()
