"""The development carrier: with no trunk, a `tel` call rings the built-in test phone that registered the
number — the way the tutorial's calls work offline — and the phone hears what the flow says."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.calls.support import Telephony, heard_fraction
from voipbin.phone import TestPhone

pytestmark = pytest.mark.serial  # asserts real time: run with nothing beside it (conftest)

SOURCE = {"type": "tel", "target": "+15551234567"}


async def test_talk_to_a_registered_phone(telephony: Telephony, tmp_path: Path) -> None:
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    await phone.start()
    try:
        r = await telephony.client.post(
            "/v1.0/calls",
            json={
                "source": SOURCE,
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "actions": [
                    {"type": "answer"},
                    {
                        "type": "talk",
                        "option": {
                            "text": "Please transfer me to the billing department.",
                            "language": "en-US",
                        },
                    },
                    {"type": "hangup"},
                ],
            },
        )
        assert r.status_code == 200, r.text
        call = await telephony.wait_hangup(r.json()["id"], within=30)
        assert call["hangup_reason"] == "normal" and call["metadata"]["route"] == "devcarrier", call
        handle = await phone.wait_call(5)
        assert await asyncio.wait_for(handle.ended, 10) == "remote"
        text = (await handle.heard_text(stt_type="whisper")).lower()
        assert heard_fraction(text, "please transfer me to the billing department") >= 0.7, text
    finally:
        await phone.stop()


@pytest.mark.parametrize("telephony", [{"dial_timeout": 1.0}], indirect=True)
async def test_phone_busy_and_no_answer(telephony: Telephony) -> None:
    busy = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), reject_with=486)
    await busy.start()
    try:
        r = await telephony.client.post(
            "/v1.0/calls",
            json={
                "source": SOURCE,
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "actions": [],
            },
        )
        call = await telephony.wait_hangup(r.json()["id"])
        assert call["hangup_reason"] == "busy", call
    finally:
        await busy.stop()
    silent = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), no_answer=True)
    await silent.start()
    try:
        r = await telephony.client.post(
            "/v1.0/calls",
            json={
                "source": SOURCE,
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "actions": [],
            },
        )
        call = await telephony.wait_hangup(r.json()["id"])
        assert call["hangup_reason"] == "dialout" and call["tm_ringing"], call
    finally:
        await silent.stop()


async def test_phone_calls_a_number_and_presses_keys(telephony: Telephony) -> None:
    flow = (
        await telephony.client.post(
            "/v1.0/flows",
            json={
                "actions": [
                    {"type": "answer"},
                    {"type": "digits_receive", "option": {"duration": 8000, "length": 3}},
                    {"type": "branch", "option": {"target_ids": {}, "default_target_id": None}},
                    {"type": "hangup", "option": {"reason": "normal"}},
                ]
            },
        )
    ).json()
    number = (await telephony.client.get("/v1.0/numbers")).json()["result"][0]
    await telephony.client.put(f"/v1.0/numbers/{number['id']}/flow_ids", json={"call_flow_id": flow["id"]})
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port))
    await phone.start()
    try:
        handle = phone.dial("+15551234567", dtmf="123")
        assert await asyncio.wait_for(handle.answered, 10)
        assert await asyncio.wait_for(handle.ended, 15) == "remote"
    finally:
        await phone.stop()
    calls = (await telephony.client.get("/v1.0/calls")).json()["result"]
    incoming = next(c for c in calls if c["direction"] == "incoming")
    incoming = await telephony.wait_hangup(incoming["id"])  # the phone saw our BYE; the row follows
    assert incoming["source"] == {"type": "tel", "target": "+15559876543"}
    assert incoming["hangup_reason"] == "normal" and incoming["hangup_by"] == "local"


@pytest.mark.parametrize("mode", ["cancel"])
async def test_caller_cancels_before_answer(telephony: Telephony, mode: str) -> None:
    flow = (
        await telephony.client.post(
            "/v1.0/flows",
            json={"actions": [{"type": "sleep", "option": {"duration": 20000}}, {"type": "answer"}]},
        )
    ).json()
    number = (await telephony.client.get("/v1.0/numbers")).json()["result"][0]
    await telephony.client.put(f"/v1.0/numbers/{number['id']}/flow_ids", json={"call_flow_id": flow["id"]})
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port))
    await phone.start()
    try:
        handle = phone.dial("+15551234567")
        await asyncio.sleep(1.0)
        await handle.hangup()
        assert await asyncio.wait_for(handle.ended, 10) in ("cancelled", "local")
    finally:
        await phone.stop()
    calls = (await telephony.client.get("/v1.0/calls")).json()["result"]
    call = await telephony.wait_hangup(calls[0]["id"])
    assert call["hangup_reason"] == "cancel" and call["hangup_by"] == "remote", call


async def test_connect_bridges_the_caller_to_another_phone(telephony: Telephony, tmp_path: Path) -> None:
    """Seed-style: a call to one phone runs `connect` to a second phone; the second phone hears the first."""
    first = TestPhone(
        "+15559876543",
        server=("127.0.0.1", telephony.sip_port),
        say="Hello from the first phone.",
        answer_delay=0.2,
    )
    second = TestPhone(
        "+15551111111",
        server=("127.0.0.1", telephony.sip_port),
        record=tmp_path / "second.wav",
        hangup_after=4.0,
    )
    await first.start()
    await second.start()
    try:
        r = await telephony.client.post(
            "/v1.0/calls",
            json={
                "source": SOURCE,
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "actions": [
                    {"type": "answer"},
                    {
                        "type": "connect",
                        "option": {
                            "source": {"type": "tel", "target": "+15551234567"},
                            "destinations": [{"type": "tel", "target": "+15551111111"}],
                        },
                    },
                    {"type": "talk", "option": {"text": "Goodbye.", "language": "en-US"}},
                ],
            },
        )
        assert r.status_code == 200, r.text
        master = await telephony.wait_hangup(r.json()["id"], within=30)
        assert master["hangup_reason"] == "normal", master
        assert len(master["chained_call_ids"]) == 1
        leg = await telephony.call(master["chained_call_ids"][0])
        assert leg["master_call_id"] == master["id"] and leg["hangup_by"] == "remote"
        handle = await second.wait_call(5)
        await asyncio.wait_for(handle.ended, 10)
        from tests.calls.support import read_wav

        pcm, rate = read_wav(handle.recording_path)
        assert len(pcm) > rate and abs(pcm).max() > 1000  # the first phone's voice crossed the bridge
    finally:
        await first.stop()
        await second.stop()


async def test_played_wav_arrives_sample_exact(telephony: Telephony, tmp_path: Path) -> None:
    """The WAV a flow plays reaches the phone as the same samples, within G.711's quantisation."""
    import numpy as np

    from tests.calls.support import read_wav, write_sine
    from voipbin.media.g711 import ulaw_decode, ulaw_encode

    write_sine(telephony.media_dir / "sine.wav", seconds=1.0, freq=440.0, amp=0.5)
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    await phone.start()
    try:
        r = await telephony.client.post(
            "/v1.0/calls",
            json={
                "source": SOURCE,
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "actions": [
                    {"type": "play", "option": {"stream_urls": [str(telephony.media_dir / "sine.wav")]}},
                    {"type": "sleep", "option": {"duration": 300}},
                    {"type": "hangup"},
                ],
            },
        )
        assert r.status_code == 200, r.text
        await telephony.wait_hangup(r.json()["id"], within=20)
        handle = await phone.wait_call(5)
        await asyncio.wait_for(handle.ended, 10)
    finally:
        await phone.stop()
    heard, _ = read_wav(handle.recording_path)
    sent, _ = read_wav(telephony.media_dir / "sine.wav")
    # What PCMU can carry of the source (our codec is bit-exact with ITU G.711, see tests/media).
    reference = np.frombuffer(ulaw_decode(ulaw_encode(sent.astype("<i2").tobytes())), dtype="<i2").astype(
        np.float64
    )
    start = int(np.argmax(np.abs(heard) > 1000))  # first non-silent sample
    window = heard[start : start + len(reference)].astype(np.float64)
    assert len(window) == len(reference), "the whole tone must arrive"
    best = min(
        range(-40, 41), key=lambda k: np.abs(np.roll(reference, k)[100:-100] - window[100:-100]).mean()
    )
    noise = np.roll(reference, best)[100:-100] - window[100:-100]
    snr = 10 * np.log10(np.mean(reference**2) / max(np.mean(noise**2), 1e-9))
    assert snr > 30, snr
