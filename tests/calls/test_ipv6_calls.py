"""Calls over IPv6 end to end: signalling and media on ::1 (the platform listens on both families with
the default ``VOIPBIN_SIP_HOST6=auto``), with SIPp as the caller and as the called party."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.calls.sipp_scenarios import caller_playing
from tests.calls.support import Telephony, incoming_call, read_wav, route_number, write_sine
from tests.sip.conftest import SippLauncher, requires_ipv6, requires_sipp
from voipbin.calls.leg import sdp_address
from voipbin.calls.manager import sip_ipv6_host

pytestmark = [requires_sipp, requires_ipv6]


async def test_ipv6_caller_is_answered_and_recorded(
    telephony: Telephony, sipp: SippLauncher, tmp_path: Path
) -> None:
    assert telephony.platform.calls.endpoint.ipv6  # auto: 127.0.0.1 -> also ::1
    await route_number(
        telephony,
        [
            {"type": "answer"},
            {"type": "recording_start", "option": {"format": "wav"}},
            {"type": "sleep", "option": {"duration": 20000}},
        ],
    )
    scenario = caller_playing(tmp_path / "caller.xml", [("g711a.pcap", 8000)])
    run = await sipp.start(
        f"[::1]:{telephony.sip_port}", "-s", "+15551234567", "-m", "1", scenario=str(scenario), host="::1"
    )
    assert await run.wait(40) == 0, run.errors()
    call = await telephony.wait_hangup((await incoming_call(telephony))["id"])
    assert (call["hangup_reason"], call["hangup_by"]) == ("normal", "remote"), call
    messages = run.messages()
    assert f"@[::1]:{telephony.sip_port}" in messages  # our Contact is our IPv6 one
    assert "c=IN IP6 ::1" in messages  # and so is our SDP answer
    assert call["metadata"]["rtp"]["packets_in"] >= 230  # g711a.pcap: 236 packets (7 s) over IPv6

    recordings = (await telephony.client.get("/v1.0/recordings")).json()["result"]
    r = await telephony.client.get(f"/v1.0/recordings/{recordings[0]['id']}/file")
    assert r.status_code == 200
    wav = tmp_path / "rec.wav"
    wav.write_bytes(r.content)
    pcm, rate = read_wav(wav)
    speech = pcm[: int(7.5 * rate)]
    assert np.sqrt(np.mean(speech.astype(np.float64) ** 2)) > 300  # real audio, not silence


async def test_outgoing_call_to_an_ipv6_peer_offers_ipv6(telephony: Telephony, sipp: SippLauncher) -> None:
    write_sine(telephony.media_dir / "tone.wav", 0.5)
    run = await sipp.start_server("-sn", "uas", "-m", "1", host="::1")
    r = await telephony.client.post(
        "/v1.0/calls",
        json={
            "source": {"type": "tel", "target": "+15551234567"},
            "destinations": [{"type": "sip", "target": f"sip:bob@[::1]:{run.port}"}],
            "actions": [
                {"type": "answer"},
                {"type": "play", "option": {"stream_urls": [str(telephony.media_dir / "tone.wav")]}},
                {"type": "hangup"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    call = await telephony.wait_hangup(r.json()["id"])
    assert (call["hangup_reason"], call["hangup_by"]) == ("normal", "local"), call
    assert call["tm_progressing"]
    assert await run.wait() == 0, run.errors()  # SIPp got our INVITE, ACK and BYE over IPv6
    messages = run.messages()
    assert f"SIP/2.0/UDP [::1]:{telephony.sip_port}" in messages  # our Via is our IPv6 one
    assert "c=IN IP6 ::1" in messages  # our offer's media address is IPv6
    assert call["metadata"]["rtp"]["packets_out"] >= 20  # the tone went out over IPv6


def test_sip_host6_setting() -> None:
    assert sip_ipv6_host("0.0.0.0", "auto") == "::"
    assert sip_ipv6_host("127.0.0.1", "auto") == "::1"
    assert sip_ipv6_host("192.0.2.10", "auto") is None  # a specific IPv4 address: IPv4 only
    assert sip_ipv6_host("0.0.0.0", "off") is None
    assert sip_ipv6_host("0.0.0.0", "[2001:db8::5]") == "2001:db8::5"


def test_sdp_address_towards_each_family() -> None:
    """Offers and answers share one rule: IPv4 peers get the IPv4 public host; IPv6 peers get
    VOIPBIN_SIP_PUBLIC_HOST6 when set, else our route's source towards them (never a guessed ::1)."""
    assert sdp_address("198.51.100.7", "192.0.2.1", "2001:db8::5") == "192.0.2.1"
    assert sdp_address("2001:db8::1", "192.0.2.1", "2001:db8::5") == "2001:db8::5"
    assert sdp_address("::1", "192.0.2.1", None) == "::1"  # the route source towards ::1
    assert sdp_address("2001:db8::1", "2001:db8::9", None) == "2001:db8::9"  # an IPv6 public host
    assert sdp_address("", "192.0.2.1", "2001:db8::5") == "192.0.2.1"  # no offer address
