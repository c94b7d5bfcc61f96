"""Calls into an owned number (SIPp as the caller, RTP and DTMF from SIPp's packaged pcaps)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import select

from tests.calls.sipp_scenarios import caller_playing
from tests.calls.support import Telephony, read_wav
from tests.sip.conftest import SippLauncher, requires_sipp
from voipbin.store.tables import Call

pytestmark = requires_sipp


async def route_number(t: Telephony, actions: list) -> None:
    flow = (await t.client.post("/v1.0/flows", json={"name": "in", "actions": actions})).json()
    number = (await t.client.get("/v1.0/numbers")).json()["result"][0]
    r = await t.client.put(f"/v1.0/numbers/{number['id']}/flow_ids", json={"call_flow_id": flow["id"]})
    assert r.status_code == 200, r.text


async def incoming_call(t: Telephony) -> dict:
    async with t.platform.db.session() as s:
        row = (await s.execute(select(Call).where(Call.direction == "incoming"))).scalars().first()
    assert row is not None, "no incoming call was created"
    return await t.call(str(row.id))


async def flow_variables(t: Telephony, activeflow_id: str) -> dict[str, str]:
    """As the API sees them: the live state while the activeflow still runs, else the stored row."""
    af = await t.platform.flows.get(uuid.UUID(activeflow_id))
    assert af is not None
    return af.variables


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
