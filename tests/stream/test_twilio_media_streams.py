"""Twilio Media Streams mode end to end: a real SIP test phone on loopback calls through the platform to
a Twilio-style bot (tests/stream/twilio_bot.py) over a real WebSocket."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection

from tests.calls.support import Telephony, heard_fraction
from tests.stream.support import AFTER_STREAM, PHONE, call_body
from tests.stream.twilio_bot import Bot, echo, payload, tone_ulaw, twilio_bot
from voipbin.phone import TestPhone

pytestmark = pytest.mark.serial  # asserts real time: run with nothing beside it (conftest)


def voiced_frames(pcm: np.ndarray, threshold: float = 800.0) -> int:
    """20 ms frames louder than ``threshold`` RMS."""
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64)
    return int((np.sqrt((frames**2).mean(axis=1)) > threshold).sum())


async def test_bot_echoes_the_caller_who_hears_their_own_speech(telephony: Telephony, tmp_path: Path) -> None:
    async with twilio_bot(echo) as bot:
        phone = TestPhone(PHONE, server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
        await phone.start()
        try:
            body = call_body(bot.url, '{"customer_ref": "abc-123", "lang": "en"}', *AFTER_STREAM)
            r = await telephony.client.post("/v1.0/calls", json=body)
            assert r.status_code == 200, r.text
            call_id = r.json()["id"]
            handle = await phone.wait_call(10)
            assert await asyncio.wait_for(handle.answered, 10)
            await bot.wait_for(lambda b: bool(b.events("start")))
            await handle.say("The quick brown fox jumps over the lazy dog.", tts_type="piper")
            await asyncio.sleep(1.0)  # the echo of the last words plays out
            await handle.send_dtmf("5")
            await bot.wait_for(lambda b: bool(b.events("dtmf")))
            await bot.wait_for(lambda b: any(m["mark"]["name"] == "one-second" for m in b.events("mark")))
            await handle.send_dtmf("#")  # the bot hangs its stream up on '#'
            await asyncio.wait_for(bot.closed.wait(), 10)
            call = await telephony.wait_hangup(call_id, within=15)  # the flow went on, then hung up
            text = (await handle.heard_text(stt_type="whisper")).lower()
        finally:
            await phone.stop()

    assert call["hangup_by"] == "local" and call["hangup_reason"] == "normal", call
    assert not call["metadata"].get("flow_error"), call["metadata"]
    af = (await telephony.client.get(f"/v1.0/activeflows/{call['activeflow_id']}")).json()
    assert af["status"] == "ended"
    assert [a["type"] for a in af["executed_actions"]] == [
        "external_media_start",
        "variable_set",
        "sleep",
        "hangup",
    ]
    # The caller heard their own words, through G.711 both ways and the bot.
    assert heard_fraction(text, "the quick brown fox jumps over the lazy dog") >= 0.6, text

    # The protocol as Twilio speaks it.
    assert [m["event"] for m in bot.received[:2]] == ["connected", "start"]
    assert bot.received[0]["protocol"] == "Call" and bot.received[0]["version"] == "1.0.0"
    start = bot.received[1]["start"]
    assert start["callSid"] == call_id and start["streamSid"].startswith("MZ")
    assert start["accountSid"] == str(telephony.admin.customer.id)
    assert start["customParameters"] == {"customer_ref": "abc-123", "lang": "en"}
    assert start["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert start["tracks"] == ["inbound"]
    media = bot.events("media")
    assert len(media) > 100 and all(len(payload(m)) == 160 for m in media)  # 20 ms of µ-law each
    assert [int(m["media"]["chunk"]) for m in media[:3]] == [1, 2, 3]
    assert [m["media"]["timestamp"] for m in media[:3]] == ["0", "20", "40"]
    assert all(m["streamSid"] == start["streamSid"] for m in bot.received[1:])
    seqs = [int(m["sequenceNumber"]) for m in bot.received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [m["dtmf"]["digit"] for m in bot.events("dtmf")] == ["5", "#"]
    assert bot.events("dtmf")[0]["dtmf"]["track"] == "inbound_track"
    assert [m["mark"]["name"] for m in bot.events("mark")] == ["one-second"]


async def test_clear_from_the_bot_stops_our_playout(telephony: Telephony, tmp_path: Path) -> None:
    sent_at: dict[str, float] = {}

    async def talk_then_clear(bot: Bot, ws: ServerConnection, message: dict[str, Any]) -> bool:
        sid = message.get("streamSid")
        if message["event"] == "start":
            audio = tone_ulaw(6.0, 1000.0)
            for i in range(0, len(audio), 160):  # 6 s of tone queued at once, as TTS bots do
                chunk = {"payload": base64.b64encode(audio[i : i + 160]).decode()}
                await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": chunk}))
            await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "end-of-tone"}}))
            await asyncio.sleep(1.0)
            sent_at["clear"] = asyncio.get_running_loop().time()
            await ws.send(json.dumps({"event": "clear", "streamSid": sid}))
        if message["event"] == "mark":
            sent_at["mark"] = asyncio.get_running_loop().time()
            await asyncio.sleep(1.0)
            return False  # done: close the stream, the flow hangs up
        return True

    async with twilio_bot(talk_then_clear) as bot:
        phone = TestPhone(PHONE, server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
        await phone.start()
        try:
            r = await telephony.client.post(
                "/v1.0/calls", json=call_body(bot.url, "plain text", *AFTER_STREAM)
            )
            assert r.status_code == 200, r.text
            call_id = r.json()["id"]
            handle = await phone.wait_call(10)
            assert await asyncio.wait_for(handle.answered, 10)
            call = await telephony.wait_hangup(call_id, within=20)
            await asyncio.wait_for(asyncio.shield(handle.ended), 10)
            heard = handle.heard_pcm()
        finally:
            await phone.stop()
    assert not call["metadata"].get("flow_error"), call["metadata"]
    assert bot.events("start")[0]["start"]["customParameters"] == {"data": "plain text"}
    # The pending mark comes back at the clear (the audio before it was dropped), not after 6 s.
    assert [m["mark"]["name"] for m in bot.events("mark")] == ["end-of-tone"]
    assert sent_at["mark"] - sent_at["clear"] < 0.5
    # About one second of the six was played before the clear cut it.
    loud = voiced_frames(heard)
    assert 20 <= loud <= 90, loud


async def test_unreachable_bot_fails_the_action(telephony: Telephony, tmp_path: Path) -> None:
    phone = TestPhone(PHONE, server=("127.0.0.1", telephony.sip_port))
    await phone.start()
    try:
        from tests.conftest import free_port

        r = await telephony.client.post("/v1.0/calls", json=call_body(f"ws://127.0.0.1:{free_port()}/none"))
        assert r.status_code == 200, r.text
        call = await telephony.wait_hangup(r.json()["id"], within=15)
    finally:
        await phone.stop()
    assert call["hangup_reason"] == "failed"
    assert "external_media_start" in call["metadata"]["flow_error"], call["metadata"]
