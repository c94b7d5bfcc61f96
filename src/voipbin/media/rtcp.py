"""RTCP (RFC 3550 section 6): SR, RR, SDES (CNAME) and BYE, parsed and serialised as compound packets.

Enough to send periodic reports and read the peer's; other packet types (APP, feedback, XR) are
skipped on parse. Hand-written for the same reason as :mod:`voipbin.media.rtp`.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

from voipbin.media.errors import MediaParseError

PT_SR, PT_RR, PT_SDES, PT_BYE = 200, 201, 202, 203
SDES_CNAME = 1
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970

_HDR = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IB3sIIII")
_SENDER = struct.Struct("!IIIII")


def ntp_now(now: float | None = None) -> tuple[int, int]:
    t = time.time() if now is None else now
    sec = int(t) + NTP_EPOCH_OFFSET
    return sec & 0xFFFFFFFF, int((t % 1) * (1 << 32)) & 0xFFFFFFFF


@dataclass(slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int = 0  # 0..255, fixed point /256
    packets_lost: int = 0  # cumulative, signed 24-bit
    highest_sequence: int = 0  # extended highest sequence number received
    jitter: int = 0  # timestamp units
    lsr: int = 0  # middle 32 bits of the last SR's NTP timestamp
    dlsr: int = 0  # delay since last SR, 1/65536 s

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, frac, lost, high, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        lost_i = int.from_bytes(lost, "big", signed=True)
        return cls(ssrc, frac, lost_i, high, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        lost = max(-(1 << 23), min((1 << 23) - 1, self.packets_lost)).to_bytes(3, "big", signed=True)
        return _BLOCK.pack(
            self.ssrc,
            self.fraction_lost & 0xFF,
            lost,
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )


@dataclass(slots=True)
class SenderReport:
    ssrc: int
    ntp_sec: int = 0
    ntp_frac: int = 0
    rtp_timestamp: int = 0
    packet_count: int = 0
    octet_count: int = 0
    reports: list[ReportBlock] = field(default_factory=list)

    def serialize(self) -> bytes:
        body = (
            struct.pack("!I", self.ssrc)
            + _SENDER.pack(
                self.ntp_sec,
                self.ntp_frac,
                self.rtp_timestamp & 0xFFFFFFFF,
                self.packet_count & 0xFFFFFFFF,
                self.octet_count & 0xFFFFFFFF,
            )
            + b"".join(r.serialize() for r in self.reports)
        )
        return _header(PT_SR, len(self.reports), body)


@dataclass(slots=True)
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(r.serialize() for r in self.reports)
        return _header(PT_RR, len(self.reports), body)


@dataclass(slots=True)
class SourceDescription:
    chunks: list[tuple[int, str]] = field(default_factory=list)  # (ssrc, cname)

    def serialize(self) -> bytes:
        body = b""
        for ssrc, cname in self.chunks:
            text = cname.encode()[:255]
            chunk = struct.pack("!IBB", ssrc, SDES_CNAME, len(text)) + text + b"\x00"
            chunk += b"\x00" * (-len(chunk) % 4)
            body += chunk
        return _header(PT_SDES, len(self.chunks), body)


@dataclass(slots=True)
class Bye:
    sources: list[int] = field(default_factory=list)
    reason: str = ""

    def serialize(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.sources)
        if self.reason:
            r = self.reason.encode()[:255]
            body += bytes([len(r)]) + r
            body += b"\x00" * (-len(body) % 4)
        return _header(PT_BYE, len(self.sources), body)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye


def _header(pt: int, count: int, body: bytes) -> bytes:
    if count > 31:
        raise ValueError("at most 31 items per RTCP packet")
    return _HDR.pack(0x80 | count, pt, len(body) // 4) + body


def serialize_compound(packets: list[RtcpPacket]) -> bytes:
    return b"".join(p.serialize() for p in packets)


def _blocks(data: bytes, pos: int, count: int, end: int) -> list[ReportBlock]:
    if pos + count * 24 > end:
        raise MediaParseError("RTCP report blocks overrun the packet")
    return [ReportBlock.parse(data, pos + 24 * i) for i in range(count)]


def _parse_sdes(data: bytes, pos: int, count: int, end: int) -> SourceDescription:
    chunks: list[tuple[int, str]] = []
    for _ in range(count):
        if pos + 4 > end:
            raise MediaParseError("RTCP SDES chunk truncated")
        ssrc = struct.unpack_from("!I", data, pos)[0]
        pos += 4
        cname = ""
        while True:
            if pos >= end:
                raise MediaParseError("RTCP SDES items unterminated")
            item = data[pos]
            if item == 0:
                pos += 1
                pos += -(pos) % 4  # chunks end on a 32-bit boundary (packets start aligned)
                break
            if pos + 2 > end or pos + 2 + data[pos + 1] > end:
                raise MediaParseError("RTCP SDES item truncated")
            length = data[pos + 1]
            if item == SDES_CNAME:
                cname = data[pos + 2 : pos + 2 + length].decode("utf-8", "replace")
            pos += 2 + length
        chunks.append((ssrc, cname))
    return SourceDescription(chunks)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a (compound) RTCP datagram; raises :class:`MediaParseError` when malformed."""
    out: list[RtcpPacket] = []
    pos = 0
    if len(data) < 4:
        raise MediaParseError("RTCP packet shorter than its header")
    while pos < len(data):
        if pos + 4 > len(data):
            raise MediaParseError("RTCP trailing bytes")
        b0, pt, words = _HDR.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise MediaParseError("RTCP version is not 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise MediaParseError("RTCP length overruns the datagram")
        if b0 & 0x20:  # padding (only legal on the last packet)
            if words == 0 or data[end - 1] == 0 or data[end - 1] > 4 * words:
                raise MediaParseError("RTCP padding invalid")
            body_end = end - data[end - 1]
        else:
            body_end = end
        count = b0 & 0x1F
        body = pos + 4
        if pt == PT_SR:
            if body + 24 > body_end:
                raise MediaParseError("RTCP SR truncated")
            ssrc = struct.unpack_from("!I", data, body)[0]
            ntp_sec, ntp_frac, rtp_ts, pc, oc = _SENDER.unpack_from(data, body + 4)
            out.append(
                SenderReport(
                    ssrc, ntp_sec, ntp_frac, rtp_ts, pc, oc, _blocks(data, body + 24, count, body_end)
                )
            )
        elif pt == PT_RR:
            if body + 4 > body_end:
                raise MediaParseError("RTCP RR truncated")
            ssrc = struct.unpack_from("!I", data, body)[0]
            out.append(ReceiverReport(ssrc, _blocks(data, body + 4, count, body_end)))
        elif pt == PT_SDES:
            out.append(_parse_sdes(data, body, count, body_end))
        elif pt == PT_BYE:
            if body + 4 * count > body_end:
                raise MediaParseError("RTCP BYE truncated")
            sources = list(struct.unpack_from(f"!{count}I", data, body))
            rpos = body + 4 * count
            reason = ""
            if rpos < body_end:
                n = data[rpos]
                if rpos + 1 + n > body_end:
                    raise MediaParseError("RTCP BYE reason truncated")
                reason = data[rpos + 1 : rpos + 1 + n].decode("utf-8", "replace")
            out.append(Bye(sources, reason))
        pos = end
    return out
