"""RFC 4733 telephone-events (DTMF over RTP): payload codec, a sans-I/O decoder and an encoder.

The decoder reports each digit exactly once. It never trusts the marker bit (start packets are often
lost): an event is identified by its RTP timestamp, and it ends on the E bit, on a packet with a new
timestamp, or after ``timeout`` seconds without updates (``poll``). The three redundant end packets,
retransmissions and stragglers of an already-reported event are recognised by timestamp and ignored.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from voipbin.media.errors import MediaParseError

log = logging.getLogger(__name__)

EVENT_CODES = "0123456789*#ABCD"
_PAYLOAD = struct.Struct("!BBH")


def digit_to_event(digit: str) -> int:
    code = EVENT_CODES.find(digit.upper())
    if len(digit) != 1 or code < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return code


def event_to_digit(event: int) -> str | None:
    return EVENT_CODES[event] if 0 <= event < len(EVENT_CODES) else None


@dataclass(slots=True, frozen=True)
class TelephoneEvent:
    """The 4-byte RFC 4733 payload."""

    event: int
    end: bool = False
    volume: int = 10  # -dBm0, 0..63
    duration: int = 0  # in timestamp units (8 kHz)

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        if len(data) < 4:
            raise MediaParseError("telephone-event payload shorter than 4 bytes")
        event, flags, duration = _PAYLOAD.unpack_from(data, 0)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        return _PAYLOAD.pack(
            self.event & 0xFF, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration
        )

    @property
    def digit(self) -> str | None:
        return event_to_digit(self.event)


@dataclass(slots=True, frozen=True)
class DtmfDigit:
    """A detected key press; ``duration_ms`` is the last duration seen (a lower bound after loss)."""

    digit: str
    duration_ms: int
    timestamp: int  # RTP timestamp of the event start


class DtmfDecoder:
    """Feed (rtp timestamp, payload, now) for each telephone-event packet; call ``poll(now)`` periodically."""

    def __init__(self, clock_rate: int = 8000, timeout: float = 0.3, memory: int = 16) -> None:
        self.clock_rate = clock_rate
        self.timeout = timeout
        self._reported: deque[int] = deque(maxlen=memory)  # timestamps of finished events
        self._ts: int | None = None  # timestamp of the event in progress
        self._event = 0
        self._duration = 0
        self._last_seen = 0.0

    @property
    def active(self) -> bool:
        """An event is in progress (``poll`` may finish it)."""
        return self._ts is not None

    def _finish(self) -> DtmfDigit | None:
        ts, self._ts = self._ts, None
        if ts is None:
            return None
        self._reported.append(ts)
        digit = event_to_digit(self._event)
        if digit is None:  # flash-hook and other non-DTMF events are tracked but not reported
            return None
        return DtmfDigit(digit, self._duration * 1000 // self.clock_rate, ts)

    def feed(self, timestamp: int, payload: bytes, now: float) -> list[DtmfDigit]:
        """Raises :class:`MediaParseError` for a short payload; returns digits that completed."""
        ev = TelephoneEvent.parse(payload)
        out: list[DtmfDigit] = []
        if timestamp in self._reported:
            return out  # redundant end packet or straggler of a reported event
        if self._ts is not None and timestamp != self._ts:
            done = self._finish()  # a new event began: the previous one ended (its end packets were lost)
            if done:
                out.append(done)
        if self._ts is None:
            self._ts, self._event, self._duration = timestamp, ev.event, ev.duration
        else:
            self._duration = max(self._duration, ev.duration)
        self._last_seen = now
        if ev.end:
            done = self._finish()
            if done:
                out.append(done)
        return out

    def poll(self, now: float) -> list[DtmfDigit]:
        """Finish an event whose updates stopped arriving (all end packets lost)."""
        if self._ts is not None and now - self._last_seen >= self.timeout:
            done = self._finish()
            return [done] if done else []
        return []


def encode_digit(
    digit: str, duration_ms: int = 100, ptime_ms: int = 20, volume: int = 10, clock_rate: int = 8000
) -> list[TelephoneEvent]:
    """One payload per packet interval: updates with growing duration, then the final packet three times.

    The caller sends them ``ptime_ms`` apart with one RTP timestamp (the event start), the marker bit on
    the first, and a fresh sequence number on each (RFC 4733 section 2.5.1).
    """
    code = digit_to_event(digit)
    step = clock_rate * ptime_ms // 1000
    total = max(step, clock_rate * duration_ms // 1000)
    total = min(total, 0xFFFF)
    out = [TelephoneEvent(code, False, volume, d) for d in range(step, total, step)]
    out += [TelephoneEvent(code, True, volume, total)] * 3
    return out


def deliver_digit(
    digit: DtmfDigit, queue: asyncio.Queue[DtmfDigit], callbacks: Iterable[Callable[[DtmfDigit], None]]
) -> None:
    """A received digit to a session's consumers: its bounded queue (the oldest digit gives way)
    and its callbacks (one failing does not stop the others)."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(digit)
    for cb in callbacks:
        try:
            cb(digit)
        except Exception:
            log.exception("rtp: dtmf callback failed")
