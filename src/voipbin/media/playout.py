"""``PlayoutQueue``: the bounded queue of 20 ms PCM frames between audio producers and the clock.

Producers (prompts, TTS, bridges) run on the control loop and ``await enqueue()``, which blocks while
the queue is full (backpressure) and resumes at half-full, so audio is paced by the media clock alone.
The clock (media thread) calls :meth:`pop` once per tick. Waking a waiting producer is handed to
``notify`` (run this on the producers' loop): one wake-up per ~0.5 s of audio, not one per frame.
A deque's ``append``/``popleft`` are atomic under the GIL, so the two sides share no lock.

Checked on every pop, not only when a frame was taken: a waiter the control thread registers just
after the clock's pop is still woken one tick later (no lost wake-up across threads).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import numpy as np

from voipbin.media.wav import FRAME_BYTES

Notify = Callable[[Callable[[], None]], None]


def _direct(fn: Callable[[], None]) -> None:
    fn()


class PlayoutQueue:
    def __init__(self, max_frames: int = 50, notify: Notify | None = None) -> None:
        self.max_frames = max_frames
        self.notify = notify or _direct
        self.frames: deque[bytes] = deque()
        self.generation = 0  # bumped by flush/close: producers of an older generation stop
        self.closed = False
        self._partial = bytearray()
        self._space_waiters: list[asyncio.Future[None]] = []
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._space_posted = False
        self._drain_posted = False

    def __len__(self) -> int:
        return len(self.frames)

    # ------------------------------------------------------------------ producers (control loop)
    async def enqueue(self, pcm: bytes | np.ndarray, *, final: bool = True) -> bool:
        """Queue 8 kHz mono int16 PCM, waiting while the queue is full.

        A trailing partial frame is held for the next call unless ``final`` (then zero-padded).
        Returns False if ``flush()`` or ``close()`` discarded the audio while waiting.
        """
        gen = self.generation
        if isinstance(pcm, np.ndarray):
            view = np.ascontiguousarray(pcm, dtype="<i2").data.cast("B")
        else:
            view = memoryview(pcm).cast("B")
        pos, size = 0, len(view)
        partial = self._partial
        if partial:  # complete the frame left over from the previous call
            take = min(FRAME_BYTES - len(partial), size)
            partial += view[:take]
            pos = take
            if len(partial) == FRAME_BYTES:
                if not await self._wait_space(gen):
                    return False
                self.frames.append(bytes(partial))
                partial.clear()
        # Whole frames are sliced straight from the caller's buffer (no copy of the whole input).
        while pos + FRAME_BYTES <= size:
            if not await self._wait_space(gen):
                return False
            self.frames.append(view[pos : pos + FRAME_BYTES].tobytes())
            pos += FRAME_BYTES
        if pos < size:
            partial += view[pos:]
        if final and partial:
            if not await self._wait_space(gen):
                return False
            self.frames.append(bytes(partial) + bytes(FRAME_BYTES - len(partial)))
            partial.clear()
        return not self.closed and gen == self.generation

    async def _wait_space(self, gen: int) -> bool:
        while len(self.frames) >= self.max_frames:
            if self.closed or gen != self.generation:
                return False
            fut = asyncio.get_running_loop().create_future()
            self._space_waiters.append(fut)
            await fut
        return not self.closed and gen == self.generation

    def push_frame(self, pcm: bytes, max_queue: int = 5) -> None:
        """Non-blocking enqueue of one 20 ms frame, dropping the oldest beyond ``max_queue`` (bridging)."""
        if len(pcm) != FRAME_BYTES:
            raise ValueError("push_frame takes exactly one 20 ms frame")
        frames = self.frames
        while len(frames) >= max_queue:
            frames.popleft()
        frames.append(pcm)

    async def wait_played(self) -> None:
        """Wait until the queue is empty (played out, flushed or closed)."""
        while self.frames and not self.closed:
            fut = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await fut

    def flush(self) -> int:
        """Drop all queued audio now; blocked producers return False. Returns frames dropped."""
        dropped = len(self.frames) + (1 if self._partial else 0)
        self.frames.clear()
        self._partial.clear()
        self.generation += 1
        self._wake_space()
        self._wake_drain()
        return dropped

    def close(self) -> None:
        self.closed = True
        self.generation += 1
        self._wake_space()
        self._wake_drain()

    # ------------------------------------------------------------------ the clock (media thread)
    def pop(self) -> bytes | None:
        """The next frame to play, or None (play silence)."""
        frames = self.frames
        pcm = frames.popleft() if frames else None
        # Producers wake at the half-full mark and refill in one go.
        if self._space_waiters and not self._space_posted and len(frames) <= self.max_frames // 2:
            self._space_posted = True
            self.notify(self._wake_space)
        if not frames and self._drain_waiters and not self._drain_posted:
            self._drain_posted = True
            self.notify(self._wake_drain)
        return pcm

    # ------------------------------------------------------------------ wake-ups (producers' loop)
    def _wake_space(self) -> None:
        self._space_posted = False
        _wake(self._space_waiters)

    def _wake_drain(self) -> None:
        self._drain_posted = False
        _wake(self._drain_waiters)


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for fut in waiters:
        if not fut.done():
            fut.set_result(None)
    waiters.clear()
