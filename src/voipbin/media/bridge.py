"""Bridge two sessions' media: A's inbound frames become B's outbound audio and vice versa.

Frames cross as decoded PCM through a synchronous sink in each session's clock tick, so PCMU↔PCMA
transcoding is implicit (decode with the source's law, encode with the destination's) and adds no
task or copy. Each side pushes into the other's playout queue with a small bound (``max_queue``
frames, drop-oldest), so the two independent 20 ms clocks cannot build latency.
"""

from __future__ import annotations

from voipbin.media.session import RtpSession
from voipbin.media.taps import Frame


class Bridge:
    def __init__(self, a: RtpSession, b: RtpSession, max_queue: int = 3) -> None:
        if a is b:
            raise ValueError("cannot bridge a session to itself")
        self.a, self.b = a, b
        self.max_queue = max_queue
        self.frames_a_to_b = 0
        self.frames_b_to_a = 0
        self._active = False

    def _a_in(self, frame: Frame) -> None:
        self.b.push_frame(frame.pcm, self.max_queue)
        self.frames_a_to_b += 1

    def _b_in(self, frame: Frame) -> None:
        self.a.push_frame(frame.pcm, self.max_queue)
        self.frames_b_to_a += 1

    @property
    def active(self) -> bool:
        return self._active

    def start(self) -> Bridge:
        if not self._active:
            self.a.flush()
            self.b.flush()
            self.a.add_sink("in", self._a_in)
            self.b.add_sink("in", self._b_in)
            self._active = True
        return self

    def stop(self) -> None:
        """Unbridge: stop forwarding and drop what was in flight; both sides fall back to silence."""
        if self._active:
            self.a.remove_sink("in", self._a_in)
            self.b.remove_sink("in", self._b_in)
            self.a.flush()
            self.b.flush()
            self._active = False


def bridge(a: RtpSession, b: RtpSession, max_queue: int = 3) -> Bridge:
    return Bridge(a, b, max_queue).start()
