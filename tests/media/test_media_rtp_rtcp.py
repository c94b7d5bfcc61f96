"""RTP/RTCP packet codecs: round trips, malformed input, fuzzing (only MediaParseError may escape)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voipbin.media import rtcp
from voipbin.media.errors import MediaParseError
from voipbin.media.rtp import RtpPacket, build_header, is_rtcp

packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=400),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    extension_profile=st.one_of(st.none(), st.integers(0, 0xFFFF)),
    extension=st.binary(max_size=40).map(lambda b: b[: len(b) - len(b) % 4]),
    padding_size=st.integers(0, 255),
)


@given(packets)
def test_rtp_round_trip(pkt: RtpPacket) -> None:
    if pkt.extension_profile is None:
        pkt.extension = b""
    assert RtpPacket.parse(pkt.serialize()) == pkt


def test_rtp_known_bytes() -> None:
    data = bytes.fromhex("80e52f31000044e0a1b2c3d4") + b"\x00\x0a\x01\x40"
    pkt = RtpPacket.parse(data)
    assert (pkt.payload_type, pkt.marker, pkt.sequence_number, pkt.timestamp) == (101, True, 12081, 17632)
    assert pkt.ssrc == 0xA1B2C3D4 and pkt.payload == b"\x00\x0a\x01\x40"
    assert pkt.serialize() == data
    assert build_header(101, 12081, 17632, 0xA1B2C3D4, True) == data[:12]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00",
        bytes(12),  # version 0
        b"\x8f" + bytes(11),  # 15 CSRCs announced, none present
        b"\x90" + bytes(11) + b"\x00\x00\x00\x05",  # extension longer than packet
        b"\xa0" + bytes(11) + b"\x00",  # padding count 0
        b"\xa0" + bytes(11) + b"\x09",  # padding longer than payload
    ],
)
def test_rtp_malformed(data: bytes) -> None:
    with pytest.raises(MediaParseError):
        RtpPacket.parse(data)


@given(st.binary(max_size=200))
def test_rtp_fuzz(data: bytes) -> None:
    try:
        RtpPacket.parse(data)
    except MediaParseError:
        pass


def test_rtcp_compound_round_trip() -> None:
    blocks = [rtcp.ReportBlock(0x1234, 25, -3, 70000, 80, 0xABCD1234, 65536)]
    sr = rtcp.SenderReport(0xAABBCCDD, 3900000000, 123456, 160000, 1000, 160000, blocks)
    rr = rtcp.ReceiverReport(0x11111111, [rtcp.ReportBlock(0xAABBCCDD, 0, 5, 123, 4)])
    sdes = rtcp.SourceDescription([(0xAABBCCDD, "voipbin@127.0.0.1"), (0x11111111, "x")])
    bye = rtcp.Bye([0xAABBCCDD], "hangup")
    data = rtcp.serialize_compound([sr, rr, sdes, bye])
    assert len(data) % 4 == 0
    assert rtcp.parse_compound(data) == [sr, rr, sdes, bye]


def test_rtcp_skips_unknown_types_and_handles_padding() -> None:
    app = struct.pack("!BBH", 0x80, 204, 2) + b"name" + b"data"
    rr = rtcp.ReceiverReport(7).serialize()
    padded = bytearray(rtcp.Bye([9]).serialize() + b"\x00\x00\x00\x04")
    padded[0] |= 0x20
    padded[2:4] = struct.pack("!H", 2)
    assert rtcp.parse_compound(rr + app + bytes(padded)) == [rtcp.ReceiverReport(7), rtcp.Bye([9])]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x81\xc9\x00",
        b"\x00\xc9\x00\x01\x00\x00\x00\x00",
        b"\x81\xc9\x00\x01\x00\x00\x00\x00",
        b"\x81\xc8\x00\x02" + bytes(8),
    ],
)
def test_rtcp_malformed(data: bytes) -> None:
    with pytest.raises(MediaParseError):
        rtcp.parse_compound(data)


@given(st.binary(max_size=300))
def test_rtcp_fuzz(data: bytes) -> None:
    try:
        rtcp.parse_compound(data)
    except MediaParseError:
        pass


@given(st.binary(min_size=4, max_size=120))
def test_rtcp_fuzz_valid_header(body: bytes) -> None:
    """Bodies behind a plausible header reach the per-type parsers."""
    for pt in (200, 201, 202, 203):
        data = struct.pack("!BBH", 0x80 | (body[0] & 0x1F), pt, len(body) // 4) + body[: len(body) // 4 * 4]
        try:
            rtcp.parse_compound(data)
        except MediaParseError:
            pass


def test_rtcp_demux() -> None:
    assert is_rtcp(rtcp.ReceiverReport(1).serialize())
    assert not is_rtcp(build_header(0, 1, 1, 1) + b"\xff" * 160)
    assert not is_rtcp(build_header(8, 1, 1, 1, marker=True))
