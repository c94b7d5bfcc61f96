"""A small jitter buffer (sans-I/O): orders packets by extended sequence number, drops late and
duplicate packets, and hands out one packet per playout tick.

Playout starts once ``target`` packets are buffered. A hole at the head is reported as ``LOST``
(the caller conceals it); an empty buffer is ``EMPTY`` and re-arms prefill, and in adaptive mode
raises the target depth (up to ``max_depth``). When the buffer grows past ``max_depth`` (sender clock
faster than ours, or a burst) the oldest packets are dropped, so latency stays bounded.

**Delay-driven depth.** Given arrival times and RTP timestamps, the buffer measures how late packets
really arrive: the spread of ``arrival - timestamp`` over the last few seconds (:class:`DelaySpread`)
is the jitter the depth must absorb. The target rises at once to cover it and, after ``calm_ticks``
without underruns, falls one packet at a time towards it (never below ``min_depth``); packets above
the target are then trimmed, one at a time when the caller says the audio is quiet (:meth:`trim`).
So a clean link settles at ~40 ms of buffering instead of the prefill's 80 ms: the listener (VAD,
barge-in, STT) hears the caller sooner, while a link with 60 ms of jitter keeps its 80 ms and plays
without holes. Without timing (``push`` with no arrival), a calm run lowers the target as before.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")

_SEQ_MOD = 1 << 16
_RESYNC_GAP = 3000  # a jump this large is a new stream (sender restart), not loss
_BLOCK = 50  # packets per block of the delay window (~1 s of 20 ms packets)
_BLOCKS = 5  # blocks in the window (~5 s): a spike is remembered this long
_MARGIN_S = 0.010  # head-room over the measured spread (our own tick jitter)
_TRIM_AFTER = 10  # pops in a row with surplus before one packet is trimmed


class DelaySpread:
    """Spread of packets' transit time (``arrival - timestamp / rate``) over a sliding window of
    blocks: how much later than the earliest one a packet may arrive. Per packet two compares, and
    :meth:`spread` (read every playout tick) is O(1): the finished blocks' bounds are folded once, when
    a block closes."""

    def __init__(self) -> None:
        self._blocks: list[tuple[float, float]] = []  # finished blocks' (min, max) transit
        self._win_lo = float("inf")  # bounds over self._blocks
        self._win_hi = float("-inf")
        self._lo = float("inf")  # the open block's bounds
        self._hi = float("-inf")
        self._n = 0
        self.version = 0  # bumped whenever spread() may have changed (callers cache what they derive)

    def reset(self) -> None:
        self._blocks.clear()
        self._win_lo, self._win_hi = float("inf"), float("-inf")
        self._lo, self._hi, self._n = float("inf"), float("-inf"), 0
        self.version += 1

    def add(self, transit: float) -> None:
        if transit < self._lo:
            self._lo = transit
            self.version += 1
        if transit > self._hi:
            self._hi = transit
            self.version += 1
        self._n += 1
        if self._n == 10:  # ``known`` turns true
            self.version += 1
        if self._n >= _BLOCK:
            self.version += 1
            self._blocks.append((self._lo, self._hi))
            del self._blocks[:-_BLOCKS]
            self._win_lo = min(lo for lo, _ in self._blocks)
            self._win_hi = max(hi for _, hi in self._blocks)
            self._lo, self._hi, self._n = float("inf"), float("-inf"), 0

    @property
    def known(self) -> bool:
        return bool(self._blocks) or self._n >= 10

    def spread(self) -> float:
        return max(0.0, max(self._hi, self._win_hi) - min(self._lo, self._win_lo))


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
        rate: int = 8000,
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
        self.rate = rate  # RTP timestamp units per second
        self.delay = DelaySpread()
        self._packet_s = 0.02  # a packet's duration, from the timestamps
        self._last_ts: tuple[int, int] | None = None  # (ext seq, ts) of the latest packet
        self._surplus = 0
        self._need: tuple[int, float, int | None] = (-1, 0.0, None)  # (delay.version, _packet_s, depth)
        # counters
        self.received = 0
        self.late = 0
        self.duplicates = 0
        self.lost = 0
        self.overflow_dropped = 0
        self.underruns = 0
        self.trimmed = 0  # packets dropped to bring a settled buffer down to its target

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
        self.delay.reset()
        self._last_ts = None
        self._surplus = 0

    def push(self, seq: int, payload: T, arrival: float | None = None, ts: int | None = None) -> bool:
        """Store a packet; False if it was late, a duplicate, or the buffer resynchronised on it.
        ``arrival`` (seconds) and ``ts`` (its RTP timestamp) let the depth follow the measured jitter."""
        highest = self._highest
        if highest is None:
            ext = (seq & 0xFFFF) + _SEQ_MOD
        else:  # self._extend, inlined (per packet)
            delta = ((seq & 0xFFFF) - highest) % _SEQ_MOD
            ext = highest + (delta - _SEQ_MOD if delta >= _SEQ_MOD // 2 else delta)
        if highest is not None and abs(ext - highest) > _RESYNC_GAP:
            self.reset()
            ext = self._extend(seq & 0xFFFF)
        if arrival is not None and ts is not None:
            self._observe(ext, arrival, ts)
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

    def _observe(self, ext: int, arrival: float, ts: int) -> None:
        last = self._last_ts
        uts = ts  # the timestamp unwrapped near the latest one (32-bit wrap every ~149 h at 8 kHz)
        if last is not None:
            uts = last[1] + ((ts - last[1] + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
            if ext > last[0]:
                step = (uts - last[1]) / (ext - last[0]) / self.rate
                if 0.005 <= step <= 0.2:
                    self._packet_s = step
        if last is None or ext > last[0]:
            self._last_ts = (ext, uts)
        self.delay.add(arrival - uts / self.rate)

    def needed_depth(self) -> int | None:
        """Packets of buffering the measured jitter needs, or None while too few packets were timed.
        Read on every pop: cached until the delay window or the packet duration changes."""
        delay = self.delay
        version, packet_s, depth = self._need
        if version == delay.version and packet_s == self._packet_s:
            return depth
        if not delay.known:
            depth = None
        else:
            need = math.ceil((delay.spread() + _MARGIN_S) / self._packet_s - 1e-9)
            depth = max(self.min_depth, min(self.max_depth, need))
        self._need = (delay.version, self._packet_s, depth)
        return depth

    @property
    def wants_trim(self) -> bool:
        """More is buffered than the target for a while: the caller may :meth:`trim` (in quiet audio)."""
        return self._surplus >= _TRIM_AFTER

    def trim(self) -> bool:
        """Drop the oldest buffered packet (the caller judged the audio quiet enough not to notice)."""
        if not self._playing or self._next is None or len(self._buf) < self.target:
            return False
        self._buf.pop(self._next, None)
        self._next += 1
        self.trimmed += 1
        self._surplus = 0
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
            need = self.needed_depth()
            if need is not None and need > self.target:
                self.target = need  # more jitter than the depth covers: cover it now
            elif self._calm >= self.calm_ticks and self.target > (need or self.min_depth):
                self.target -= 1
                self._calm = 0
            # steady state leaves target - 1 behind after a pop; a run at target or more is surplus
            self._surplus = self._surplus + 1 if len(self._buf) >= self.target else 0
        if payload is None:
            self.lost += 1
            return Playout.LOST, None
        return Playout.OK, payload
