"""Test doubles for transcription: a media session that plays synthesized speech into real taps.

``FakeMedia`` has the part of ``MediaSession`` the transcriber uses (``tap``/``untap``, real
:class:`voipbin.media.taps.Tap` objects fed with tick-stamped 20 ms frames). Its clock runs ``speed``
times faster than real time (silence when nothing is queued) so tests stay short; ``close()`` closes
every tap as the real session does when a call hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque

from voipbin.media.taps import Frame, Tap

FRAME_BYTES = 320
SILENCE = bytes(FRAME_BYTES)

CALLER = "I had a great experience, the support team fixed my billing problem quickly."
AGENT = "Thank you for calling the weather service."


_SPEECH: dict[tuple[str, str], bytes] = {}


async def speech(text: str, tts_type: str = "piper") -> bytes:
    """8 kHz PCM16 of ``text`` (cached per test session: synthesis is the slow part)."""
    key = (text, tts_type)
    if key not in _SPEECH:
        from voipbin.phone.speech import synthesize

        _SPEECH[key] = await synthesize(text, tts_type)
    return _SPEECH[key]


class FakeMedia:
    def __init__(self, speed: float = 4.0) -> None:
        self.speed = speed
        self.taps: list[Tap] = []
        self.queues: dict[str, deque[bytes]] = {"in": deque(), "out": deque()}
        self.tick = 1000  # not zero: offsets must be relative to the first frame seen
        self.closed = False
        self._clock: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()

    # -- MediaSession surface ------------------------------------------------------------------
    def tap(self, direction: str = "in", maxsize: int = 50) -> Tap:
        tap = Tap(frozenset({direction}), maxsize)
        if self.closed:
            tap.close()
        else:
            self.taps.append(tap)
        return tap

    def untap(self, tap: Tap) -> None:
        if tap in self.taps:
            self.taps.remove(tap)
        tap.close()

    # -- test controls -------------------------------------------------------------------------
    def start(self) -> None:
        self._clock = asyncio.ensure_future(self._run())

    def say(self, direction: str, pcm: bytes, silence_after: float = 0.0) -> None:
        pcm = pcm + bytes(-len(pcm) % FRAME_BYTES) + bytes(int(silence_after * 50) * FRAME_BYTES)
        for i in range(0, len(pcm), FRAME_BYTES):
            self.queues[direction].append(pcm[i : i + FRAME_BYTES])
        self._drained.clear()

    async def drained(self, within: float = 30.0) -> None:
        """Until everything queued has been put into the taps."""
        async with asyncio.timeout(within):
            await self._drained.wait()

    async def close(self) -> None:
        """Hangup: the session closes every tap (queued frames stay readable)."""
        self.closed = True
        for tap in list(self.taps):
            self.untap(tap)
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock

    async def _run(self) -> None:
        step = 0.02 / self.speed
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = 0
        while not self.closed:
            for direction, q in self.queues.items():
                pcm = q.popleft() if q else SILENCE
                frame = Frame(direction, self.tick, pcm)  # type: ignore[arg-type]
                for tap in list(self.taps):
                    if direction in tap.directions:
                        tap.put(frame)
            if not self.queues["in"] and not self.queues["out"]:
                self._drained.set()
            self.tick += 1
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * step - loop.time()))


class FakeLiveCall:
    """What the API looks up with ``calls.live_call(id)``: a live call with media."""

    def __init__(self, call_id: uuid.UUID, media: FakeMedia) -> None:
        self.call_id = call_id
        self.media = media
        self.ended = asyncio.Event()

    @property
    def is_up(self) -> bool:
        return not self.ended.is_set()

    @property
    def is_hungup(self) -> bool:
        return self.ended.is_set()

    async def wait_hangup(self) -> None:
        await self.ended.wait()

    async def hangup(self) -> None:
        self.ended.set()
        await self.media.close()
