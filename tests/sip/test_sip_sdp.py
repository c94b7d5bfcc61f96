"""SDP parse/build and offer/answer."""

from __future__ import annotations

import pytest

from voipbin.sip import SdpNegotiationError, SdpParseError, answer_offer, build_sdp, parse_answer, parse_sdp

OFFER = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 10.0.0.5\r\n"
    b"s=-\r\n"
    b"c=IN IP4 10.0.0.5\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 18 8 0 96\r\n"
    b"a=rtpmap:18 G729/8000\r\n"
    b"a=rtpmap:96 telephone-event/8000\r\n"
    b"a=fmtp:96 0-15\r\n"
    b"a=ptime:30\r\n"
    b"a=sendonly\r\n"
)


def test_answer_picks_first_supported_codec_and_keeps_dtmf_pt() -> None:
    body, media = answer_offer(OFFER, "127.0.0.1", 40000)
    assert media.codec == "PCMA" and media.payload_type == 8
    assert (media.remote_addr, media.remote_port) == ("10.0.0.5", 49170)
    assert media.ptime == 30
    assert media.dtmf_payload_type == 96
    assert media.direction == "recvonly"  # they only send
    ans = parse_sdp(body)
    m = ans.media[0]
    assert m.port == 40000 and m.formats == ["8", "96"]
    assert m.direction == "recvonly"
    assert ans.connection == "127.0.0.1"


def test_offer_then_answer_round_trip() -> None:
    offer = build_sdp("127.0.0.1", 30000, codecs=("PCMU", "PCMA"), dtmf_payload_type=101)
    answer, theirs = answer_offer(offer, "127.0.0.2", 30002, supported=("PCMU",))
    assert theirs.codec == "PCMU"
    ours = parse_answer(answer, offer)
    assert ours.codec == "PCMU" and ours.payload_type == 0
    assert (ours.remote_addr, ours.remote_port) == ("127.0.0.2", 30002)
    assert ours.dtmf_payload_type == 101 and ours.ptime == 20 and ours.direction == "sendrecv"


def test_media_level_connection_and_static_pt_without_rtpmap() -> None:
    sdp = b"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\nc=IN IP4 2.2.2.2\r\n"
    _, media = answer_offer(sdp, "127.0.0.1", 4000)
    assert media.codec == "PCMU" and media.remote_addr == "2.2.2.2"


@pytest.mark.parametrize("address", ["2001:db8::7", "[2001:db8::7]"])
def test_ipv6_connection_address_plain_or_bracketed(address: str) -> None:
    """RFC 4566 writes IPv6 bare; SIPp (and some phones) bracket it: both are the same address."""
    sdp = f"v=0\r\nc=IN IP6 {address}\r\nm=audio 5000 RTP/AVP 0\r\n".encode()
    _, media = answer_offer(sdp, "::1", 4000)
    assert media.remote_addr == "2001:db8::7"


def test_no_common_codec() -> None:
    sdp = b"v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
    with pytest.raises(SdpNegotiationError):
        answer_offer(sdp, "127.0.0.1", 4000)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"x",
        b"o=foo\r\n",
        b"v=1\r\n",
        b"v=0\r\nm=audio\r\n",
        b"v=0\r\nc=IN IP4\r\n",
        b"v=0\r\nm=audio x RTP/AVP 0",
    ],
)
def test_bad_sdp(data: bytes) -> None:
    with pytest.raises(SdpParseError):
        parse_sdp(data)
