"""RTP packets (RFC 3550 section 5.1): a dataclass with a ``parse``/``serialize`` pair.

Hand-written because aiortc's RTP is bound to WebRTC (DTLS-SRTP, ICE); plain-RTP telephony needs only
this small, allocation-light codec. Header extensions are kept opaque (profile + raw bytes).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from voipbin.media.errors import MediaParseError

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


@dataclass(slots=True)
class RtpPacket:
    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None  # None -> no header extension
    extension: bytes = b""  # raw extension body, a multiple of 4 bytes
    padding_size: int = 0  # bytes of padding (including the count byte) on the wire

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < 12:
            raise MediaParseError("RTP packet shorter than the 12-byte header")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data, 0)
        if b0 >> 6 != RTP_VERSION:
            raise MediaParseError(f"RTP version {b0 >> 6} is not 2")
        cc = b0 & 0x0F
        pos = 12 + 4 * cc
        if len(data) < pos:
            raise MediaParseError("RTP packet truncated in CSRC list")
        csrc = list(struct.unpack_from(f"!{cc}I", data, 12)) if cc else []
        ext_profile: int | None = None
        ext = b""
        if b0 & 0x10:
            if len(data) < pos + 4:
                raise MediaParseError("RTP packet truncated in extension header")
            ext_profile, ext_words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            end = pos + 4 * ext_words
            if len(data) < end:
                raise MediaParseError("RTP packet truncated in extension body")
            ext = bytes(data[pos:end])
            pos = end
        end = len(data)
        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or end - padding < pos:
                raise MediaParseError("RTP padding length is invalid")
            end -= padding
        return cls(
            payload_type=b1 & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(b1 & 0x80),
            csrc=csrc,
            extension_profile=ext_profile,
            extension=ext,
            padding_size=padding,
        )

    def serialize(self) -> bytes:
        cc = len(self.csrc)
        if cc > 15:
            raise ValueError("at most 15 CSRCs fit in an RTP header")
        b0 = (RTP_VERSION << 6) | cc
        if self.padding_size:
            b0 |= 0x20
        if self.extension_profile is not None:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        parts = [
            _HEADER.pack(
                b0, b1, self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF
            )
        ]
        if cc:
            parts.append(struct.pack(f"!{cc}I", *self.csrc))
        if self.extension_profile is not None:
            if len(self.extension) % 4:
                raise ValueError("RTP header extension must be a multiple of 4 bytes")
            parts.append(_EXT_HEADER.pack(self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding_size:
            if not 1 <= self.padding_size <= 255:
                raise ValueError("RTP padding must be 1..255 bytes")
            parts.append(bytes(self.padding_size - 1) + bytes([self.padding_size]))
        return b"".join(parts)


def build_header(payload_type: int, seq: int, timestamp: int, ssrc: int, marker: bool = False) -> bytes:
    """Fast path for the 12-byte header of a plain packet (no CSRC, extension or padding)."""
    return _HEADER.pack(
        0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    )


def parse_plain(data: bytes) -> tuple[int, bool, int, int, int, bytes] | None:
    """Fast path for the common packet (V=2, no padding/extension/CSRC): (pt, marker, seq, ts, ssrc,
    payload). None means "use :meth:`RtpPacket.parse`" — it validates and handles the rest."""
    if len(data) < 12 or data[0] != 0x80:
        return None
    _, b1, seq, ts, ssrc = _HEADER.unpack_from(data, 0)
    return b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, data[12:]


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192..223 occupy the RTP marker+PT byte."""
    return len(data) >= 2 and 192 <= data[1] <= 223
