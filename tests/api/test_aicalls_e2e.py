"""``/v1.0/aicalls`` and ``/v1.0/aimessages`` end to end over SIP/RTP with the offline engines: the
tutorial's ``ai`` call leaves an aicall whose messages are what the caller said and what the phone
heard (with each answer's timings and usage), ``POST /aimessages`` is spoken into the live call,
``POST /aicalls/{id}/terminate`` continues the flow (the phone hears the next ``talk``); another
customer sees none of it and bad ids answer 400."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.ai_session.support import Events
from tests.api.support import assert_envelope, client_for
from tests.calls import support as calls_support
from tests.calls.support import Telephony, heard_fraction
from voipbin.phone import TestPhone

telephony = calls_support.telephony  # the fixture (a real platform with SIP on loopback)

ACTIONS = [
    {"type": "answer"},
    {
        "type": "ai",
        "option": {
            "initial_prompt": "You are a helpful customer service assistant.",
            "language": "en-US",
            "voice_type": "female",
        },
    },
    {"type": "talk", "option": {"text": "Goodbye from the flow.", "language": "en-US"}},
    {"type": "sleep", "option": {"duration": 5000}},
]


async def test_aicall_record_inject_and_terminate_over_sip(telephony: Telephony, tmp_path: Path) -> None:
    client = telephony.client
    events = Events(telephony.platform.events)
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    await phone.start()
    other = client_for(telephony.app, (await telephony.other_tenant()).accesskey)
    try:
        r = await client.post(
            "/v1.0/calls",
            json={
                "source": {"type": "tel", "target": "+15551234567"},
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "actions": ACTIONS,
            },
        )
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        handle = await phone.wait_call(10)
        assert await asyncio.wait_for(handle.answered, 10)
        await events.wait_for(lambda e: bool(e.of("aicall_status_progressing")), within=10)
        listed = (await client.get("/v1.0/aicalls")).json()["result"]
        (aicall,) = [a for a in listed if a["reference_id"] == call_id]
        aicall_id = aicall["id"]
        assert aicall["status"] == "progressing" and aicall["ai_engine_model"] == "offline.scripted"
        await asyncio.sleep(0.5)
        await handle.say("What time do you open?", tts_type="piper")
        await events.wait_for(lambda e: bool(e.messages("assistant")), within=30)

        msgs = (await client.get("/v1.0/aimessages", params={"aicall_id": aicall_id})).json()["result"]
        by_role = {m["role"]: m for m in reversed(msgs)}  # newest first: keep the first of each role
        assert "open" in by_role["user"]["content"].lower() and by_role["user"]["direction"] == "incoming"
        answer = by_role["assistant"]
        assert answer["content"] == "We are open from nine to five, Monday to Friday."
        turn = answer["turn"]
        assert turn["origin"] == "caller_speech_end" and turn["interrupted"] is False
        for stage in ("stt_final_ms", "llm_first_token_ms", "tts_first_audio_ms", "first_audio_out_ms"):
            assert isinstance(turn[stage], int) and 0 <= turn[stage] < 10_000, (stage, turn)
        assert turn["stt_final_ms"] <= turn["llm_first_token_ms"] <= turn["tts_first_audio_ms"]
        assert turn["usage"]["output_tokens"] == len(answer["content"].split())
        assert turn["usage"]["tts_characters"] == len(answer["content"]) and turn["llm"] == "offline.scripted"
        assert (await client.get(f"/v1.0/aimessages/{answer['id']}")).json()["id"] == answer["id"]
        pieces = [d for d in events.of("aimessage_intermediate") if d["aicall_id"] == aicall_id]
        assert "".join(d["content"] for d in pieces) == answer["content"]
        assert [d["sequence"] for d in pieces] == list(range(1, len(pieces) + 1))

        # Tenancy and validation while it runs.
        assert_envelope(await other.get(f"/v1.0/aicalls/{aicall_id}"), 404, "AICALL_NOT_FOUND")
        assert_envelope(await other.post(f"/v1.0/aicalls/{aicall_id}/terminate"), 404, "AICALL_NOT_FOUND")
        listing = await other.get("/v1.0/aimessages", params={"aicall_id": aicall_id})
        assert_envelope(listing, 404, "AICALL_NOT_FOUND")
        assert_envelope(await other.get(f"/v1.0/aimessages/{answer['id']}"), 404, "AIMESSAGE_NOT_FOUND")
        body = {"aicall_id": aicall_id, "role": "assistant", "content": "Injected."}
        assert_envelope(await other.post("/v1.0/aimessages", json=body), 404, "AICALL_NOT_FOUND")
        assert aicall_id not in {a["id"] for a in (await other.get("/v1.0/aicalls")).json()["result"]}
        assert_envelope(await client.get("/v1.0/aicalls/not-a-uuid"), 400, "INVALID_ID")
        assert_envelope(await client.get("/v1.0/aimessages", params={"aicall_id": "x"}), 400, "INVALID_ID")
        assert_envelope(await client.get("/v1.0/aimessages"), 400, "MISSING_REQUEST_PARAMETER")

        # An operator speaks through the AI.
        heard_before = len(events.messages("assistant"))
        r = await client.post(
            "/v1.0/aimessages",
            json={"aicall_id": aicall_id, "role": "assistant", "content": "Your order number is forty two."},
        )
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "assistant" and r.json()["aicall_id"] == aicall_id
        await asyncio.sleep(4.0)  # spoken in real time
        assert len(events.messages("assistant")) == heard_before + 1

        # Terminate: the flow goes on with its next action (talk).
        r = await client.post(f"/v1.0/aicalls/{aicall_id}/terminate")
        assert r.status_code == 200, r.text
        await events.wait_for(lambda e: bool(e.of("aicall_status_terminated")), within=10)
        await asyncio.sleep(3.0)  # "Goodbye from the flow."
        assert await handle.hangup() == "local"
        await telephony.wait_hangup(call_id, within=10)
        text = (await handle.heard_text(stt_type="whisper")).lower()
        assert heard_fraction(text, "we are open from 9 to 5") >= 0.6, text
        assert heard_fraction(text, "your order number is forty two") >= 0.6, text
        assert heard_fraction(text, "goodbye from the flow") >= 0.6, text

        done = (await client.get(f"/v1.0/aicalls/{aicall_id}")).json()
        assert done["status"] == "terminated" and done["tm_end"]
        assert done["metadata"]["end_reason"] == "terminated"
        usage = done["metadata"]["usage"]
        assert usage["output_tokens"] >= len(answer["content"].split()) and usage["stt_seconds"] > 1
        assert usage["tts_characters"] >= len(answer["content"])
        parts = (await client.get(f"/v1.0/aicalls/{aicall_id}/participants")).json()["result"]
        assert parts[0]["aicall_id"] == aicall_id
        # The POST of an ended aicall is refused; deleting it hides it and its messages.
        assert_envelope(await client.post("/v1.0/aimessages", json=body), 409, "AICALL_STATE_INVALID")
        assert (await client.delete(f"/v1.0/aicalls/{aicall_id}")).status_code == 200
        assert_envelope(await client.get(f"/v1.0/aicalls/{aicall_id}"), 404, "AICALL_NOT_FOUND")
        assert_envelope(await client.get(f"/v1.0/aimessages/{answer['id']}"), 404, "AIMESSAGE_NOT_FOUND")
    finally:
        events.close()
        await other.aclose()
        await phone.stop()


async def test_post_aicall_starts_a_conversation_on_a_live_call(telephony: Telephony, tmp_path: Path) -> None:
    client = telephony.client
    events = Events(telephony.platform.events)
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    await phone.start()
    try:
        prompt = "You answer questions about our shop."
        desk = {"name": "desk", "engine_model": "offline.scripted", "init_prompt": prompt}
        ai = await client.post("/v1.0/ais", json=desk)
        assert ai.status_code == 200, ai.text
        r = await client.post(
            "/v1.0/calls",
            json={
                "source": {"type": "tel", "target": "+15551234567"},
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "actions": [{"type": "answer"}, {"type": "sleep", "option": {"duration": 30000}}],
            },
        )
        call_id = r.json()["id"]
        handle = await phone.wait_call(10)
        assert await asyncio.wait_for(handle.answered, 10)
        body = {"assistance_type": "ai", "assistance_id": ai.json()["id"], "reference_type": "call",
                "reference_id": call_id}  # fmt: skip
        r = await client.post("/v1.0/aicalls", json=body)
        assert r.status_code == 200, r.text
        aicall = r.json()
        assert aicall["reference_id"] == call_id and aicall["assistance_id"] == ai.json()["id"]
        await events.wait_for(lambda e: bool(e.of("aicall_status_progressing")), within=10)
        await asyncio.sleep(0.5)
        await handle.say("What time do you open?", tts_type="piper")
        await events.wait_for(lambda e: bool(e.messages("assistant")), within=30)
        r = await client.post(f"/v1.0/aicalls/{aicall['id']}/terminate")
        assert r.status_code == 200
        await events.wait_for(lambda e: bool(e.of("aicall_status_terminated")), within=10)
        assert (await telephony.call(call_id))["status"] == "progressing"  # the call's flow goes on
        assert await handle.hangup() == "local"
        text = (await handle.heard_text(stt_type="whisper")).lower()
        assert heard_fraction(text, "we are open from 9 to 5") >= 0.6, text
        msgs = (await client.get("/v1.0/aimessages", params={"aicall_id": aicall["id"]})).json()["result"]
        system = [m["content"] for m in msgs if m["role"] == "system"]
        assert "You answer questions about our shop." in system
    finally:
        events.close()
        await phone.stop()
