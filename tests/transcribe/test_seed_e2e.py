"""The seed's "AI Summary for Call Transcription" example, verbatim, over SIP/RTP to a test phone.

The platform calls the test phone (development carrier), transcribes both directions while it talks,
sleeps the seed's 30 s while the phone's person speaks, summarizes with the offline scripted model and
speaks the closing line; the call then ends, and the closing line (said just before the hangup) must
still be in the transcript. About 45 s: most of it is the seed's own 30 s sleep.
"""

from __future__ import annotations

import uuid
import wave
from pathlib import Path

from sqlalchemy import select

from tests.calls.support import Telephony, eventually
from tests.transcribe.support import CALLER, speech
from voipbin.phone import TestPhone
from voipbin.store.tables import Activeflow

SEED_EXAMPLE_4 = {
    "source": {"type": "tel", "target": "+15551234567"},
    "destinations": [{"type": "tel", "target": "+15559876543"}],
    "actions": [
        {"type": "answer"},
        {"type": "transcribe_start", "option": {"language": "en-US"}},
        {
            "type": "talk",
            "option": {
                "text": "Hello! This call is being transcribed and summarized. Please tell me about your "
                "experience with our service.",
                "language": "en-US",
            },
        },
        {"type": "sleep", "option": {"duration": 30000}},
        {
            "type": "ai_summary",
            "option": {"source_type": "transcribe", "source_id": "${voipbin.transcribe.id}"},
        },
        {
            "type": "talk",
            "option": {
                "text": "Thank you for your feedback. We have recorded and summarized your call.",
                "language": "en-US",
            },
        },
    ],
}


async def test_seed_ai_summary_for_call_transcription(tele: Telephony, tmp_path: Path) -> None:
    # The person answers, listens to the greeting (~7 s), then talks about their experience.
    said = tmp_path / "said.wav"
    with wave.open(str(said), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(8000 * 2 * 8) + await speech(CALLER))
    phone = TestPhone("+15559876543", server=("127.0.0.1", tele.sip_port), play=said)
    await phone.start()
    client = tele.client
    try:
        r = await client.post("/v1.0/calls", json=SEED_EXAMPLE_4)
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        call = await tele.wait_hangup(call_id, within=75)
        assert call["hangup_reason"] == "normal" and call["hangup_by"] == "local", call
    finally:
        await phone.stop()

    # the transcribe of the call finishes after the hangup with the last utterance included
    listed = await client.get("/v1.0/transcribes", params={"reference_type": "call", "reference_id": call_id})
    (t,) = listed.json()["result"]

    async def transcribe_done() -> bool:
        return (await client.get(f"/v1.0/transcribes/{t['id']}")).json()["status"] == "done"

    await eventually(transcribe_done, within=60)
    transcripts = (await client.get("/v1.0/transcripts", params={"transcribe_id": t["id"]})).json()["result"]
    heard = " ".join(x["message"] for x in transcripts if x["direction"] == "in").lower()
    spoke = " ".join(x["message"] for x in transcripts if x["direction"] == "out").lower()
    assert "experience" in heard and "billing" in heard and "problem" in heard, transcripts
    assert "transcribed" in spoke and "experience" in spoke, transcripts
    assert "feedback" in spoke, transcripts  # the closing talk, right before the hangup

    # the summary exists, mentions what the person said, and was in ${voipbin.ai_summary.content}
    (s,) = (await client.get("/v1.0/aisummaries")).json()["result"]
    assert s["status"] == "done" and s["reference_type"] == "transcribe" and s["reference_id"] == t["id"]
    assert "billing" in s["content"].lower(), s
    async with tele.platform.db.session() as session:
        af = (
            await session.execute(select(Activeflow).where(Activeflow.reference_id == uuid.UUID(call_id)))
        ).scalar_one()
    assert af.error == "" and af.variables["voipbin.ai_summary.content"] == s["content"]
    assert af.variables["voipbin.transcribe.id"] == t["id"]
    assert [a["type"] for a in af.executed_actions] == [a["type"] for a in SEED_EXAMPLE_4["actions"]]
