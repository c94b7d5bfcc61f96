"""``InOrderRelease`` (sans-I/O): inbound packets for listeners that need order and completeness, not
pacing — the AI, speech-to-text, ``in``-only recordings.

The playout jitter buffer (:mod:`voipbin.media.jitter`) holds 40-80 ms and hands out one frame per
tick, because a *player* needs evenly paced audio. A listener does not: it wants every frame, in
order, as soon as possible. So a packet is released the moment it is next in sequence order (one
that arrives in order is never held), and only a hole holds what follows it:

* a hole (a later packet arrived first) waits up to ``window`` from the moment it was seen; if the
  missing packet turns up in time everything behind it is released at once, so network jitter up to
  ``window`` + one packet (80 ms with the default 60 ms) never produces a hole; after that the slot
  is released as ``None`` (the caller conceals it) and the packet, should it still come, is dropped;
* duplicates and packets older than what was released are dropped and counted;
* when nothing arrives at all (the peer stopped sending, DTX, a stall upstream), :meth:`fill`
  asks for filler frames at the media rate once ``fill_after`` (200 ms: longer than any jitter we
  absorb, so a mere delay does not insert audio) has passed without anything, so the listener's
  sense of time keeps moving. Filler slots do not consume sequence
  numbers: when the peer resumes, its next packet is released as usual.

Items are opaque (``(payload_type, payload)`` in the stream). Hand-written: jitter buffers in the
libraries we know (aiortc, pjmedia, GStreamer's rtpjitterbuffer) all pace their output.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

_SEQ_MOD = 1 << 16
_RESYNC_GAP = 3000  # a jump this large is a new stream (sender restart), not loss
FRAME_S = 0.020
MAX_FILL = 50  # filler/concealed slots released by one poll: a long stall is not replayed whole
FILL_AFTER_S = 0.200  # nothing at all for this long: the peer stopped sending (not jitter), fill


class InOrderRelease(Generic[T]):
    def __init__(
        self, window: float = 0.060, frame_s: float = FRAME_S, fill_after: float = FILL_AFTER_S
    ) -> None:
        self.window = window
        self.frame_s = frame_s
        self.fill_after = fill_after
        self._held: dict[int, T] = {}
        self._next: int | None = None  # extended seq of the next packet to release
        self._highest: int | None = None
        self._hole_since: float | None = None  # when the head was first seen missing
        self._quiet_due = 0.0  # when a filler slot is due if nothing arrives (0: not armed)
        # counters
        self.released = 0
        self.concealed = 0  # holes given up on (released as None)
        self.filled = 0  # filler frames while nothing arrived
        self.late = 0  # arrived after its slot was given up on, or already released
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._held)

    def reset(self) -> None:
        """A new source: start over at its first packet."""
        self._held.clear()
        self._next = self._highest = None
        self._hole_since = None

    def start(self, now: float) -> None:
        """Arm the filler clock (a listener joined): silence flows even before the first packet."""
        self._quiet_due = now + self.fill_after

    def _extend(self, seq: int) -> int:
        if self._highest is None:
            return seq + _SEQ_MOD
        delta = (seq - self._highest) % _SEQ_MOD
        if delta >= _SEQ_MOD // 2:
            delta -= _SEQ_MOD
        return self._highest + delta

    def push(self, seq: int, item: T, now: float) -> list[T | None]:
        """A packet arrived at ``now``: what can be released now, in order (``None`` = conceal)."""
        ext = self._extend(seq & 0xFFFF)
        if self._highest is not None and abs(ext - self._highest) > _RESYNC_GAP:
            self.reset()
            ext = self._extend(seq & 0xFFFF)
        if self._next is None:
            self._next = ext
        if ext < self._next:
            self.late += 1
            return []
        if ext in self._held:
            self.duplicates += 1
            return []
        if self._highest is None or ext > self._highest:
            self._highest = ext
        self._held[ext] = item
        out = self._release()
        if self._held and self._hole_since is None:
            self._hole_since = now  # a packet beyond a hole: the hole's wait starts
        out += self._give_up(now)
        if out:
            self._quiet_due = now + self.fill_after
        return out

    def poll(self, now: float) -> list[T | None]:
        """Called every tick: holes that waited ``window`` are given up (``None``, then what follows)."""
        out = self._give_up(now)
        if out:
            self._quiet_due = now + self.fill_after
        return out

    def fill(self, now: float) -> int:
        """Called every tick: how many ``frame_s`` filler frames are due because nothing arrived."""
        if not self._quiet_due or self._held or now < self._quiet_due:
            return 0
        k = min(MAX_FILL, int((now - self._quiet_due) / self.frame_s) + 1)
        self._quiet_due += k * self.frame_s
        if now >= self._quiet_due:  # further behind than MAX_FILL: catch up, do not replay
            self._quiet_due = now + self.frame_s
        self.filled += k
        return k

    def _release(self) -> list[T | None]:
        out: list[T | None] = []
        held = self._held
        nxt = self._next
        assert nxt is not None
        while nxt in held:
            out.append(held.pop(nxt))
            nxt += 1
        if out:
            self._next = nxt
            self.released += len(out)
            self._hole_since = None
        return out

    def _give_up(self, now: float) -> list[T | None]:
        """Release the head hole as ``None`` if it waited ``window`` (and whatever then follows)."""
        out: list[T | None] = []
        while self._held and self._hole_since is not None and now - self._hole_since >= self.window:
            assert self._next is not None
            first = min(self._held)
            missing = min(first - self._next, MAX_FILL)
            out.extend([None] * missing)
            self.concealed += missing
            self._next = first
            self._hole_since = None
            out += self._release()
            if self._held:  # another hole right behind: its wait starts now
                self._hole_since = now
        return out
