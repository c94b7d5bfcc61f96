"""Offers we can serve get media (IPv6 included, on ::1); offers we cannot get 488 before any 200."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from tests.calls.support import Telephony, route_number
from voipbin.calls.inbound import media_families
from voipbin.media import MediaSession
from voipbin.sip import SipEndpoint, build_sdp
from voipbin.store.tables import Call

NUMBER = "+15551234567"


def offer_with(address: str, port: int, *, codecs: str = "0 8 101", rtpmap: str = "") -> bytes:
    ip = "IP6" if ":" in address else "IP4"
    lines = [
        "v=0", f"o=peer 1 1 IN {ip} {address}", "s=-", f"c=IN {ip} {address}", "t=0 0",
        f"m=audio {port} RTP/AVP {codecs}", *([rtpmap] if rtpmap else []), "a=sendrecv",
    ]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n").encode()


async def invite(t: Telephony, ep: SipEndpoint, offer: bytes):  # -> InviteResult
    return await asyncio.wait_for(
        ep.invite(
            f"sip:{NUMBER}@127.0.0.1:{t.sip_port}",
            "sip:+15550001111@127.0.0.1",
            f"sip:{NUMBER}@127.0.0.1",
            offer,
        ),
        15,
    )


@pytest.mark.skipif(6 not in media_families(), reason="no IPv6 on this host")
async def test_ipv6_offer_is_answered_in_ipv6_and_audio_flows(telephony: Telephony) -> None:
    """linphone's default offer (c=IN IP6): answered with an IPv6 answer; RTP flows both ways on ::1."""
    await route_number(telephony, [{"type": "answer"}, {"type": "sleep", "option": {"duration": 20000}}])
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    peer = await MediaSession.create(host="::1")
    try:
        res = await invite(telephony, ep, build_sdp("::1", peer.local_port))
        assert res.ok, (res.status, res.reason)
        assert res.call is not None and res.call.media is not None
        m = res.call.media
        assert ":" in m.remote_addr  # our answer's c= is IPv6
        peer.negotiate(m.remote_addr, m.remote_port, m.payload_type)
        peer.start()
        # The platform sends (silence) to our IPv6 socket: a second of it (the test process's own GC
        # can stall the clock once; serve freezes the heap, tests do not).
        for _ in range(200):  # up to 10 s
            if peer.stats.packets_in >= 50:
                break
            await asyncio.sleep(0.05)
        assert peer.stats.packets_in >= 50
        await res.call.bye()
        async with telephony.platform.db.session() as s:
            row = (await s.execute(select(Call))).scalars().one()
        done = await telephony.wait_hangup(str(row.id))
        assert done["hangup_reason"] == "normal"
        rtp = done["metadata"]["rtp"]
        assert rtp["packets_in"] >= 20 and rtp["packets_out"] >= 20  # it heard us over IPv6 too
        for key in ("lost", "jitter_ms", "max_gap_ms", "max_gap_out_ms", "late_ticks", "skipped_ticks"):
            assert key in rtp, key  # metadata.rtp: loss, jitter, gaps both ways, clock health
        assert 0 < rtp["max_gap_out_ms"] < 10_000
    finally:
        await peer.close()
        await ep.stop()


@pytest.mark.parametrize(
    ("offer", "warn_code"),
    [
        (offer_with("127.0.0.1", 40000, codecs="9", rtpmap="a=rtpmap:9 G722/8000"), "305"),  # no G.711
        (offer_with("127.0.0.1", 40000).replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 pbx.example"), "301"),
        (offer_with("127.0.0.1", 40000).replace(b"RTP/AVP", b"RTP/SAVP"), "302"),  # SRTP only
        (offer_with("127.0.0.1", 0), "304"),  # audio disabled
    ],
    ids=["no-common-codec", "host-name-address", "srtp-only", "audio-disabled"],
)
async def test_unusable_offer_gets_488_with_warning_and_no_call(
    telephony: Telephony, offer: bytes, warn_code: str
) -> None:
    await route_number(telephony, [{"type": "answer"}, {"type": "sleep", "option": {"duration": 20000}}])
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    try:
        res = await invite(telephony, ep, offer)
        assert not res.ok and res.status == 488, (res.status, res.reason)
        assert res.response is not None
        warning = res.response.headers.get("Warning") or ""
        assert warning.startswith(f"{warn_code} "), warning
        async with telephony.platform.db.session() as s:
            assert (await s.execute(select(Call))).first() is None  # refused before any call existed
    finally:
        await ep.stop()
