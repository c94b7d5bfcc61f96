"""Frame taps: let STT, AI, recorders subscribe to a session's PCM without ever blocking it.

The media clock calls ``Tap.put`` synchronously; each tap is a bounded deque that drops its
*oldest* frame when the consumer falls behind (counted in ``dropped``), so a slow consumer loses
history, never the session its timing. Consumers ``await tap.get()``, ``async for frame in tap``,
or ``await tap.get_batch(n)`` to be woken once per ``n`` frames. One consumer per tap.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
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
    def __init__(self, directions: frozenset[str], maxsize: int = 50) -> None:
        self.directions = directions
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
        if w is not None and len(self._q) >= self._wake_at and not w.done():
            w.set_result(None)

    def close(self) -> None:
        self._closed = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

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
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._q.popleft()

    async def get_batch(self, min_frames: int = 1) -> list[Frame]:
        """All queued frames once at least ``min_frames`` are ready (fewer only when closed).

        Consumers that work in chunks (STT engines take ~100 ms) should use this: the session then
        wakes them once per chunk instead of once per 20 ms frame, which is most of a tap's cost.
        """
        min_frames = max(1, min(min_frames, self.maxsize))
        while len(self._q) < min_frames and not self._closed:
            self._wake_at = min_frames
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
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
