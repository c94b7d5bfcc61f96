"""RFC 4733 DTMF: SIPp's packaged captures, encoder→decoder with loss/reordering, fuzzing."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voipbin.media.dtmf import DtmfDecoder, TelephoneEvent, encode_digit
from voipbin.media.errors import MediaParseError
from voipbin.media.rtp import RtpPacket

PCAP_DIR = Path("/usr/share/sip-tester")
PCAPS = {f"dtmf_2833_{d}.pcap": d for d in "0123456789"} | {
    "dtmf_2833_pound.pcap": "#",
    "dtmf_2833_star.pcap": "*",
}


def read_pcap_udp(path: Path) -> list[tuple[float, bytes]]:
    """Tiny libpcap reader: (timestamp, UDP payload) for IPv4/UDP frames on Ethernet or raw IP links."""
    data = path.read_bytes()
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">"}[magic]
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from(endian + "IIII", data, off)
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = frame[14:] if linktype == 1 else frame
        if ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        out.append((sec + usec / 1e6, udp[8:]))
    return out


@pytest.mark.skipif(not PCAP_DIR.exists(), reason="sip-tester (SIPp) not installed")
@pytest.mark.parametrize(("name", "digit"), sorted(PCAPS.items()))
def test_sipp_pcaps_decode_to_one_digit(name: str, digit: str) -> None:
    dec = DtmfDecoder()
    found = []
    packets = read_pcap_udp(PCAP_DIR / name)
    assert len(packets) >= 4
    for t, payload in packets:
        pkt = RtpPacket.parse(payload)
        assert pkt.payload_type == 101
        found += dec.feed(pkt.timestamp, pkt.payload, t)
    found += dec.poll(packets[-1][0] + 10)
    assert [d.digit for d in found] == [digit]
    assert found[0].duration_ms == 280


@pytest.mark.skipif(not PCAP_DIR.exists(), reason="sip-tester (SIPp) not installed")
def test_sipp_pcap_without_start_or_end_packets() -> None:
    packets = read_pcap_udp(PCAP_DIR / "dtmf_2833_7.pcap")
    middle = packets[2:6]  # start lost, all three end packets lost
    dec = DtmfDecoder(timeout=0.3)
    found = []
    for t, payload in middle:
        pkt = RtpPacket.parse(payload)
        found += dec.feed(pkt.timestamp, pkt.payload, t)
    assert found == []
    assert dec.poll(middle[-1][0] + 0.1) == []
    found = dec.poll(middle[-1][0] + 0.31)
    assert [d.digit for d in found] == ["7"]
    assert dec.poll(middle[-1][0] + 5) == []


def test_telephone_event_round_trip() -> None:
    ev = TelephoneEvent(11, True, 10, 2240)
    assert ev.serialize() == bytes.fromhex("0b8a08c0")
    assert TelephoneEvent.parse(ev.serialize()) == ev
    assert ev.digit == "#"
    with pytest.raises(MediaParseError):
        TelephoneEvent.parse(b"\x01\x02")


def test_encoder_shape() -> None:
    pkts = encode_digit("5", duration_ms=100)
    assert [p.duration for p in pkts] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.end for p in pkts] == [False] * 4 + [True] * 3
    assert all(p.event == 5 for p in pkts)
    with pytest.raises(ValueError):
        encode_digit("x")


def _stream(digits: str, duration_ms: int = 100, gap_packets: int = 3) -> list[tuple[int, float, bytes]]:
    """(rtp timestamp, send time, payload) for a digit sequence, 20 ms apart."""
    out, t, ts = [], 0.0, 1000
    for d in digits:
        for ev in encode_digit(d, duration_ms):
            out.append((ts, t, ev.serialize()))
            t += 0.02
        t += 0.02 * gap_packets
        ts += int((len(encode_digit(d, duration_ms)) + gap_packets) * 160)
    return out


@settings(max_examples=300, deadline=None)
@given(
    digits=st.text(alphabet="0123456789*#ABCD", min_size=1, max_size=8),
    drop=st.lists(st.booleans(), min_size=80, max_size=80),
    swaps=st.lists(st.integers(0, 79), max_size=10),
)
def test_encoder_decoder_with_loss_and_reordering(digits: str, drop: list[bool], swaps: list[int]) -> None:
    stream = _stream(digits)
    # neighbouring packets of one event swapped (reordering by one slot), then losses
    for i in swaps:
        if i + 1 < len(stream) and stream[i][0] == stream[i + 1][0]:
            stream[i], stream[i + 1] = stream[i + 1], stream[i]
    survivors = [p for i, p in enumerate(stream) if not drop[i % len(drop)]]
    dec = DtmfDecoder(timeout=0.3)
    found = []
    for ts, t, payload in survivors:
        found += dec.feed(ts, payload, t)
        found += dec.poll(t)
    found += dec.poll(1e9)
    delivered = sorted({ts for ts, _, _ in survivors})
    starts = sorted({ts for ts, _, _ in stream})
    expected_digits = [digits[i] for i, ts0 in enumerate(starts) if ts0 in delivered]
    assert [d.digit for d in found] == expected_digits  # each surviving digit exactly once, in order


def test_repeated_same_digit_is_two_events() -> None:
    dec = DtmfDecoder()
    found = []
    for ts, t, payload in _stream("11"):
        found += dec.feed(ts, payload, t)
    assert [d.digit for d in found] == ["1", "1"]


@given(st.binary(max_size=12), st.integers(0, 0xFFFFFFFF))
def test_decoder_fuzz(payload: bytes, ts: int) -> None:
    dec = DtmfDecoder()
    try:
        dec.feed(ts, payload, 0.0)
    except MediaParseError:
        pass
    dec.poll(10.0)
