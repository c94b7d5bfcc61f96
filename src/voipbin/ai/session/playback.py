"""``Playback``: the session's outbound audio, which can *pause* and *resume* as well as flush.

A barge-in is first tentative: the caller's voice onset pauses our audio at once (the call's
playout queue, up to a second ahead, is flushed) but what was not heard yet is kept here, so a
backchannel or a noise burst that turns out not to be an interruption resumes the reply where the
caller stopped hearing it (LiveKit's "resume false interruption"). A confirmed interruption
flushes for good: the open streams return False, as :meth:`CallAudio.play_stream` does.

Every stream played through it (the responder's TTS, fillers) is written into one buffer of 8 kHz
PCM; a pump hands it to the call frame by frame (``audio.play_stream`` keeps its own backpressure
and pacing). It also tells the echo guard how loud our audio is and until when it may be heard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable

from voipbin.flow.interfaces import CallAudio
from voipbin.speech.audio import StreamResampler, dbfs

RATE = 8000
FRAME = 320  # 20 ms of 8 kHz PCM16
FRAME_SECS = 0.02
QUEUE_SECS = 1.0  # the call's playout queue holds up to this much ahead of what is heard
ECHO_TAIL_SECS = 0.6  # an echo of our audio may arrive this long after it played (line + jitter buffer)
ECHO_MARGIN_DB = 8.0  # caller voice must be within 8 dB of our loudest recent frame (echo >= 10 dB below)


class Playback:
    def __init__(self, audio: CallAudio, clock: Callable[[], float] | None = None) -> None:
        self.audio = audio
        self._clock = clock
        self._buf = bytearray()
        self._sent = 0  # bytes of _buf handed to the call
        self._played = 0  # bytes of _buf the call has confirmed played
        self._producers = 0  # streams still writing
        self._paused = False
        self._gen = 0  # bumped by flush(): open streams return False
        self._stream_start = 0  # where the latest stream's audio begins in _buf
        self._waiters: list[asyncio.Future[None]] = []
        self._pump: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        # (loop time handed out, dBFS), levels strictly falling: a frame no louder than a later one can
        # never be the window's peak again, so the peak is the first entry (O(1) per caller frame:
        # a scan of the ~80 recent frames per frame and call was ~10 % of the loop at 60 calls).
        self._levels: deque[tuple[float, float]] = deque()
        self.audible_until = 0.0  # loop time the audio handed out so far stops playing
        self.pauses = 0

    # -- state -----------------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pending(self) -> bool:
        """Audio written but not yet handed to the call (what a resume would play)."""
        return self._sent < len(self._buf)

    def audible(self) -> bool:
        """Our audio is playing (or about to): a caller's voice now may be an interruption."""
        return (self.pending and not self._paused) or self.now() < self.audible_until

    def echo_floor(self) -> float:
        """The level (dBFS) a caller frame needs to count as voice now: our loudest recent frame
        minus a margin while our audio may still echo back, else -100 (no floor)."""
        now = self.now()
        if now > self.audible_until + ECHO_TAIL_SECS:
            return -100.0
        levels = self._levels
        while levels and levels[0][0] < now - QUEUE_SECS - ECHO_TAIL_SECS:
            levels.popleft()
        peak = levels[0][1] if levels else -100.0
        return peak - ECHO_MARGIN_DB if peak > -100.0 else -100.0

    # -- CallAudio for the responder --------------------------------------------------------------
    def audio_in(self) -> AsyncIterator[bytes]:
        return self.audio.audio_in()

    async def play_stream(self, chunks: AsyncIterable[bytes], rate: int = RATE) -> bool:
        """Play ``chunks`` after what is already queued; True once played out, False if flushed."""
        gen = self._gen
        rs = StreamResampler(rate, RATE) if rate != RATE else None
        first = True
        self._producers += 1
        try:
            async for chunk in chunks:
                if gen != self._gen:
                    return False
                pcm = rs.process(chunk) if rs else chunk
                if pcm:
                    if first:
                        self._stream_start, first = len(self._buf), False
                    self._write(pcm)
            tail = rs.process(b"", last=True) if rs else b""
            if gen == self._gen:
                self._write(tail + bytes(-(len(self._buf) + len(tail)) % FRAME))
        finally:
            self._producers -= 1
            self._notify()
        end = len(self._buf)
        await self._until(lambda: gen != self._gen or self._played >= end or self._failed is not None)
        if self._failed is not None and gen == self._gen:
            raise self._failed
        return gen == self._gen

    def say(self, pcm: bytes) -> None:
        """Queue ``pcm`` (a filler) now, ahead of stream audio still to come."""
        self._write(pcm + bytes(-len(pcm) % FRAME))

    def flush_playout(self) -> int:
        return self.flush()

    # -- control ---------------------------------------------------------------------------------
    def pause(self) -> bool:
        """Silence from the call's next frame on, keeping what was not heard (audio still to come
        waits too). False if no stream is open and nothing plays."""
        if self._paused or not (self.audible() or self._producers > 0):
            return False
        self._paused = True
        self.pauses += 1
        dropped = self.audio.flush_playout()
        # A frame may be on its way into the call's queue (not counted as dropped): replay it too.
        self._sent = max(0, self._sent - (dropped + 1) * FRAME)
        self._sent -= self._sent % FRAME
        self.audible_until = self.now()
        self._notify()
        return True

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._notify()

    def flush(self) -> int:
        """Barge-in confirmed: drop everything not heard; open streams return False. Returns the
        frames of the latest stream that were never heard."""
        dropped = self.audio.flush_playout()
        heard = self._sent if self._paused else max(0, self._sent - dropped * FRAME)
        unheard = (len(self._buf) - max(heard, self._stream_start)) // FRAME
        self._buf.clear()
        self._sent = self._played = self._stream_start = 0
        self._paused = False
        self._gen += 1
        self.audible_until = min(self.audible_until, self.now())
        self._notify()
        return max(0, unheard)

    async def close(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump

    # -- the pump --------------------------------------------------------------------------------
    def _write(self, pcm: bytes) -> None:
        if not pcm:
            return
        self._buf += pcm
        if self._pump is None:
            self._pump = asyncio.create_task(self._run(), name="ai-playback")
        self._notify()

    async def _run(self) -> None:
        try:
            while True:
                await self._until(lambda: not self._paused and self.pending)
                gen = self._gen
                ok = await self.audio.play_stream(self._frames(gen), RATE)
                if ok and gen == self._gen and not self._paused:
                    self._played = self._sent
                self._notify()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the call hung up: every open stream raises it
            self._failed = exc
            self._notify()

    async def _frames(self, gen: int) -> AsyncIterator[bytes]:
        while True:
            await self._until(
                lambda: gen != self._gen or self._paused or self.pending or self._producers == 0
            )
            if gen != self._gen or self._paused or not self.pending:
                return  # flushed, paused, or everything written was handed out
            frame = bytes(self._buf[self._sent : self._sent + FRAME])
            if len(frame) < FRAME:  # a stream is still writing this frame
                if self._producers == 0:
                    frame += bytes(FRAME - len(frame))
                else:
                    await self._until(
                        lambda: gen != self._gen or self._paused or len(self._buf) - self._sent >= FRAME
                        or self._producers == 0
                    )  # fmt: skip
                    continue
            self._sent += FRAME
            now = self.now()
            self.audible_until = max(self.audible_until, now) + FRAME_SECS
            level, levels = dbfs(frame), self._levels
            while levels and levels[-1][1] <= level:
                levels.pop()
            levels.append((now, level))
            yield frame

    async def _until(self, ready: Callable[[], bool]) -> None:
        loop = asyncio.get_running_loop()
        while not ready():
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            await fut

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
