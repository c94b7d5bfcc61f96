"""Frame taps: let STT, AI, recorders subscribe to a session's PCM without ever blocking it.

The media clock calls ``Tap.put`` synchronously; each tap is a bounded deque that drops its
*oldest* frame when the consumer falls behind (counted in ``dropped``), so a slow consumer loses
history, never the session its timing. Consumers ``await tap.get()``, ``async for frame in tap``,
or ``await tap.get_batch(n)`` to be woken once per ``n`` frames. One consumer per tap.

The producer may run on another thread (the media engine's): it only appends to the deque (atomic
under the GIL) and hands the waiting consumer's future to ``waker``, which completes it on the
consumer's loop (``RtpSession`` passes one that posts it, batched, through the engine).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Literal, NamedTuple

Direction = Literal["in", "out"]


class Frame(NamedTuple):
    """20 ms of 8 kHz mono PCM16LE (320 bytes). ``tick`` is the session clock index, shared by both
    directions, so consumers can align inbound and outbound audio."""

    direction: Direction
    tick: int
    pcm: bytes


class TapClosed(Exception):
    pass


class Tap:
    def __init__(
        self,
        directions: frozenset[str],
        maxsize: int = 50,
        waker: Callable[[asyncio.Future[None]], None] | None = None,
    ) -> None:
        self.directions = directions
        self._waker = waker or _resolve
        self.maxsize = maxsize
        self.dropped = 0
        self._q: deque[Frame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._wake_at = 1  # queue length that wakes the waiting consumer
        self._closed = False

    def put(self, frame: Frame) -> None:
        if self._closed:
            return
        if len(self._q) >= self.maxsize:
            self._q.popleft()
            self.dropped += 1
        self._q.append(frame)
        w = self._waiter
        if w is not None and len(self._q) >= self._wake_at:
            self._waiter = None  # woken once; the consumer re-arms if it needs more
            self._waker(w)

    def close(self) -> None:
        self._closed = True
        w = self._waiter
        if w is not None:
            self._waiter = None
            self._waker(w)

    @property
    def closed(self) -> bool:
        return self._closed

    def qsize(self) -> int:
        return len(self._q)

    def get_nowait(self) -> Frame | None:
        return self._q.popleft() if self._q else None

    async def get(self) -> Frame:
        """Next frame; raises :class:`TapClosed` once closed and drained."""
        while not self._q:
            if self._closed:
                raise TapClosed
            w = self._waiter = asyncio.get_running_loop().create_future()
            if self._q or self._closed:  # a frame (or close) slipped in before the waiter was set
                self._waiter = None
                break
            try:
                await w
            finally:
                self._waiter = None
        if not self._q:
            raise TapClosed
        return self._q.popleft()

    async def get_batch(self, min_frames: int = 1) -> list[Frame]:
        """All queued frames once at least ``min_frames`` are ready (fewer only when closed).

        Consumers that work in chunks (STT engines take ~100 ms) should use this: the session then
        wakes them once per chunk instead of once per 20 ms frame, which is most of a tap's cost.
        """
        min_frames = max(1, min(min_frames, self.maxsize))
        while len(self._q) < min_frames and not self._closed:
            self._wake_at = min_frames
            w = self._waiter = asyncio.get_running_loop().create_future()
            if len(self._q) >= min_frames or self._closed:  # filled before the waiter was set
                self._waiter = None
                self._wake_at = 1
                break
            try:
                await w
            finally:
                self._waiter = None
                self._wake_at = 1
        if not self._q:
            raise TapClosed
        out = list(self._q)
        self._q.clear()
        return out

    async def __aiter__(self) -> AsyncIterator[Frame]:
        while True:
            try:
                yield await self.get()
            except TapClosed:
                return


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
