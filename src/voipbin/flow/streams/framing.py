"""VoIPBIN's external media encapsulations: ``rtp`` (RFC 3550 packets, G.711), ``audiosocket``
(Asterisk's AudioSocket frames) and ``none`` (bare G.711 payloads), one 20 ms frame per message.

Hand-written on purpose: each is a few bytes of header (``struct``), and the platform's RTP stack lives
in the media engine, which this layer must not reach into; G.711 comes from ``voipbin.media.g711``.
"""

from __future__ import annotations

import secrets
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from voipbin.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ENCAPSULATIONS = ("rtp", "audiosocket", "none")
FRAME_SAMPLES = 160  # 20 ms at 8 kHz

# AudioSocket message kinds (https://docs.asterisk.org/Configuration/Channel-Drivers/AudioSocket/)
AS_HANGUP = 0x00
AS_UUID = 0x01
AS_DTMF = 0x03
AS_AUDIO = 0x10  # signed linear 16-bit, 8 kHz, mono, little endian
AS_ERROR = 0xFF


@dataclass(frozen=True)
class G711:
    name: str
    payload_type: int
    encode: Callable[[bytes], bytes]
    decode: Callable[[bytes], bytes]


FORMATS = {
    "ulaw": G711("ulaw", 0, ulaw_encode, ulaw_decode),
    "alaw": G711("alaw", 8, alaw_encode, alaw_decode),
}


def g711(format_: str) -> G711:
    """VoIPBIN's ``format`` option (default ``ulaw``); ValueError for anything else."""
    name = (format_ or "ulaw").lower()
    if name not in FORMATS:
        raise ValueError(f"format {format_!r} is not supported (use ulaw or alaw)")
    return FORMATS[name]


class RtpPacketizer:
    """Our outgoing RTP stream: one packet per 20 ms frame, random SSRC and initial sequence/timestamp."""

    def __init__(self, payload_type: int) -> None:
        self.payload_type = payload_type
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)

    def packet(self, payload: bytes) -> bytes:
        header = struct.pack("!BBHII", 0x80, self.payload_type, self.seq, self.timestamp, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + len(payload)) & 0xFFFFFFFF
        return header + payload


def rtp_payload(packet: bytes, payload_type: int) -> bytes | None:
    """The payload of an RTP packet of ``payload_type`` (CSRCs, extension and padding skipped), else None
    (not RTP version 2, another payload type such as telephone-event, or truncated)."""
    if len(packet) < 12 or packet[0] >> 6 != 2 or packet[1] & 0x7F != payload_type:
        return None
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:  # header extension
        if len(packet) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", packet, offset + 2)[0]
    end = len(packet)
    if packet[0] & 0x20 and end > offset:  # padding
        end -= packet[-1]
    return packet[offset:end] if end > offset else None


def audiosocket_frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack("!BH", kind, len(payload)) + payload


def audiosocket_uuid(call_id: uuid.UUID) -> bytes:
    return audiosocket_frame(AS_UUID, call_id.bytes)


def parse_audiosocket(data: bytes) -> list[tuple[int, bytes]]:
    """The (kind, payload) frames in ``data``; ValueError if a frame is truncated."""
    frames = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 3:
            raise ValueError("truncated AudioSocket header")
        kind, length = struct.unpack_from("!BH", data, pos)
        pos += 3
        if len(data) - pos < length:
            raise ValueError("truncated AudioSocket payload")
        frames.append((kind, data[pos : pos + length]))
        pos += length
    return frames
