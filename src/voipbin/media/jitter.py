"""A small jitter buffer (sans-I/O): orders packets by extended sequence number, drops late and
duplicate packets, and hands out one packet per playout tick.

Playout starts once ``target`` packets are buffered. A hole at the head is reported as ``LOST``
(the caller conceals it); an empty buffer is ``EMPTY`` and re-arms prefill, and in adaptive mode
raises the target depth (up to ``max_depth``); a long run without underruns lowers it again. When
the buffer grows past ``max_depth`` (sender clock faster than ours, or a burst) the oldest packets
are dropped, so latency stays bounded.
"""

from __future__ import annotations

from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")

_SEQ_MOD = 1 << 16
_RESYNC_GAP = 3000  # a jump this large is a new stream (sender restart), not loss


class Playout(Enum):
    OK = "ok"
    LOST = "lost"
    EMPTY = "empty"


class JitterBuffer(Generic[T]):
    """Items are opaque (payload bytes, or whatever the caller needs to decode them later)."""

    def __init__(
        self,
        target: int = 2,
        min_depth: int = 1,
        max_depth: int = 10,
        adaptive: bool = True,
        calm_ticks: int = 500,
    ) -> None:
        if not 1 <= min_depth <= target <= max_depth:
            raise ValueError("need 1 <= min_depth <= target <= max_depth")
        self.target = target
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.adaptive = adaptive
        self.calm_ticks = calm_ticks
        self._buf: dict[int, T] = {}
        self._highest: int | None = None  # highest extended seq received
        self._next: int | None = None  # next extended seq to play
        self._playing = False
        self._calm = 0
        # counters
        self.received = 0
        self.late = 0
        self.duplicates = 0
        self.lost = 0
        self.overflow_dropped = 0
        self.underruns = 0

    def __len__(self) -> int:
        return len(self._buf)

    def _extend(self, seq: int) -> int:
        if self._highest is None:
            return seq + _SEQ_MOD  # room below for reordered packets right after the first
        delta = (seq - self._highest) % _SEQ_MOD
        if delta >= _SEQ_MOD // 2:
            delta -= _SEQ_MOD
        return self._highest + delta

    def reset(self) -> None:
        self._buf.clear()
        self._highest = self._next = None
        self._playing = False

    def push(self, seq: int, payload: T) -> bool:
        """Store a packet; False if it was late, a duplicate, or the buffer resynchronised on it."""
        ext = self._extend(seq & 0xFFFF)
        if self._highest is not None and abs(ext - self._highest) > _RESYNC_GAP:
            self.reset()
            ext = self._extend(seq & 0xFFFF)
        if self._next is not None and ext < self._next:
            self.late += 1
            return False
        if ext in self._buf:
            self.duplicates += 1
            return False
        self._buf[ext] = payload
        self.received += 1
        if self._highest is None or ext > self._highest:
            self._highest = ext
        if len(self._buf) > self.max_depth:
            for old in sorted(self._buf)[: len(self._buf) - self.target]:
                del self._buf[old]
                self.overflow_dropped += 1
            self._next = min(self._buf)
        return True

    def pop(self) -> tuple[Playout, T | None]:
        """One playout tick."""
        if not self._playing:
            if len(self._buf) < self.target:
                return Playout.EMPTY, None
            self._playing = True
            if self._next is None or self._next not in self._buf:
                self._next = min(self._buf)
        if not self._buf:
            self._playing = False
            self.underruns += 1
            self._calm = 0
            if self.adaptive and self.target < self.max_depth:
                self.target += 1
            return Playout.EMPTY, None
        assert self._next is not None
        payload = self._buf.pop(self._next, None)
        self._next += 1
        if self.adaptive:
            self._calm += 1
            if self._calm >= self.calm_ticks and self.target > self.min_depth:
                self.target -= 1
                self._calm = 0
        if payload is None:
            self.lost += 1
            return Playout.LOST, None
        return Playout.OK, payload
