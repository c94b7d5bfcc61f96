"""Calls into an owned number (SIPp as the caller, RTP and DTMF from SIPp's packaged pcaps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tests.calls.sipp_scenarios import caller_playing
from tests.calls.support import Telephony, flow_variables, incoming_call, read_wav, route_number
from tests.sip.conftest import SippLauncher, requires_sipp
from voipbin.store.tables import Call

pytestmark = requires_sipp


@pytest.mark.serial  # a real-time bound: run with nothing beside it (conftest)
async def test_inbound_records_pcap_audio_and_dtmf(
    telephony: Telephony, sipp: SippLauncher, tmp_path: Path
) -> None:
    await route_number(
        telephony,
        [
            {"type": "answer"},
            {"type": "recording_start", "option": {"format": "wav"}},
            {"type": "digits_receive", "option": {"duration": 15000, "length": 1}},
            {"type": "sleep", "option": {"duration": 20000}},
        ],
    )
    scenario = caller_playing(tmp_path / "caller.xml", [("g711a.pcap", 8000), ("dtmf_2833_1.pcap", 1000)])
    run = await sipp.start(
        f"127.0.0.1:{telephony.sip_port}", "-s", "+15551234567", "-m", "1", scenario=str(scenario)
    )
    assert await run.wait(40) == 0, run.errors()
    call = await telephony.wait_hangup((await incoming_call(telephony))["id"])
    assert (call["direction"], call["hangup_reason"], call["hangup_by"]) == ("incoming", "normal", "remote")
    assert call["destination"]["target"] == "+15551234567"
    assert (await flow_variables(telephony, call["activeflow_id"]))["voipbin.call.digits"] == "1"

    recordings = (await telephony.client.get("/v1.0/recordings")).json()["result"]
    assert len(recordings) == 1 and recordings[0]["reference_id"] == call["id"]
    assert recordings[0]["status"] == "ended"
    r = await telephony.client.get(f"/v1.0/recordings/{recordings[0]['id']}/file")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    wav = tmp_path / "rec.wav"
    wav.write_bytes(r.content)
    pcm, rate = read_wav(wav)
    seconds = len(pcm) / rate
    assert 8.0 <= seconds <= 11.5, seconds  # g711a.pcap is ~8 s of speech, then the DTMF and the BYE
    speech = pcm[: int(7.5 * rate)]
    assert np.sqrt(np.mean(speech.astype(np.float64) ** 2)) > 300  # real audio, not silence


async def test_inbound_dtmf_sequence(telephony: Telephony, sipp: SippLauncher, tmp_path: Path) -> None:
    await route_number(
        telephony,
        [
            {"type": "answer"},
            {"type": "digits_receive", "option": {"duration": 10000, "length": 10, "key": "#"}},
            {"type": "sleep", "option": {"duration": 10000}},
        ],
    )
    digits = ["1", "5", "9", "star", "0", "pound"]
    steps = [(f"dtmf_2833_{d}.pcap", 400) for d in digits]
    scenario = caller_playing(tmp_path / "dtmf.xml", [*steps, ("dtmf_2833_2.pcap", 300)])
    run = await sipp.start(
        f"127.0.0.1:{telephony.sip_port}", "-s", "+15551234567", "-m", "1", scenario=str(scenario)
    )
    assert await run.wait(40) == 0, run.errors()
    call = await telephony.wait_hangup((await incoming_call(telephony))["id"])
    assert (await flow_variables(telephony, call["activeflow_id"]))["voipbin.call.digits"] == "159*0"


async def test_unknown_number_is_404_and_no_flow_480(
    telephony: Telephony, sipp: SippLauncher, tmp_path: Path
) -> None:
    scenario = caller_playing(tmp_path / "x.xml", [])
    run = await sipp.start(
        f"127.0.0.1:{telephony.sip_port}", "-s", "+15550001234", "-m", "1", scenario=str(scenario)
    )
    assert await run.wait(30) != 0
    assert "SIP/2.0 404" in run.messages()
    run = await sipp.start(
        f"127.0.0.1:{telephony.sip_port}", "-s", "+15551234567", "-m", "1", scenario=str(scenario)
    )
    assert await run.wait(30) != 0
    assert "SIP/2.0 480" in run.messages()
    async with telephony.platform.db.session() as s:
        assert (await s.execute(select(Call))).first() is None
