"""``LiveTranscriber``: a call's audio taps -> streaming STT -> final utterances, per direction.

It knows nothing of the database or events: it is given a media object (anything with
``tap(direction, maxsize)`` / ``untap(tap)`` returning :class:`voipbin.media.taps.Tap` s, i.e. a
``MediaSession``) and two callbacks, and calls ``on_final(direction, offset_secs, text)`` for every
recognised utterance, in order per direction. The service layer turns those into rows and events.

Three guarantees the summaries depend on:

* **Nothing said is lost at the end.** :meth:`stop` (or the taps closing because the call hung up)
  feeds what is still queued in the taps, closes the STT stream (which flushes its VAD, so an
  utterance cut off by the hangup is still transcribed) and returns only after every final has been
  handed to ``on_final``.
* **Flush without stopping.** :meth:`flush` does the same for the audio so far while transcription
  goes on: the current STT stream is closed (its finals awaited) and a fresh one takes the next frames,
  so a summary taken mid-call includes what was just said.
* **Offsets are call time.** Frames carry the media clock's tick (shared by both directions), so
  ``offset_secs`` is measured from the first frame this transcriber saw, whatever STT stream it went
  through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from voipbin.media.taps import Frame, Tap, TapClosed
from voipbin.speech.errors import SpeechError
from voipbin.speech.stt import STT, SttEvent, SttEventType

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.02
BATCH_FRAMES = 5  # wake once per 100 ms of audio, not per frame
TAP_FRAMES = 250  # 5 s of slack before a busy loop makes the tap drop audio

OnFinal = Callable[[str, float, str], Awaitable[None]]
OnSpeech = Callable[[str, SttEvent, float], None]
SttFactory = Callable[[], STT]


class TapSource(Protocol):
    def tap(self, direction: str = "in", maxsize: int = 50) -> Tap: ...

    def untap(self, tap: Tap) -> None: ...


class _Clock:
    """Tick of the first frame seen in any direction: offset zero."""

    def __init__(self) -> None:
        self.t0: int | None = None

    def offset(self, tick: int) -> float:
        if self.t0 is None:
            self.t0 = tick
        return max(0, tick - self.t0) * FRAME_SECONDS


class DirectionStream:
    """One direction: one tap, a current STT stream (replaced on flush) and its event consumer."""

    def __init__(
        self,
        direction: str,
        tap: Tap,
        new_stt: SttFactory,
        clock: _Clock,
        on_final: OnFinal,
        on_speech: OnSpeech,
    ) -> None:
        self.direction = direction
        self.tap = tap
        self._new_stt = new_stt
        self._clock = clock
        self._on_final = on_final
        self._on_speech = on_speech
        self._stt: STT | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._base: float | None = None  # offset of the current stream's first frame
        self._flush_requests: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self.failed: str = ""
        self.finals = 0

    async def run(self) -> None:
        """Feed until the tap closes, then close the STT and wait for its last finals."""
        try:
            while True:
                if self._flush_requests:
                    await self._do_flush()
                try:
                    frames = await self._next_batch()
                except TapClosed:
                    break
                await self._feed(frames)
        finally:
            await self._finish_stream()
            for fut in self._flush_requests:
                if not fut.done():
                    fut.set_result(None)
            self._flush_requests.clear()

    async def flush(self) -> None:
        """Return once everything heard so far has been transcribed (finals delivered)."""
        fut = asyncio.get_running_loop().create_future()
        self._flush_requests.append(fut)
        self._wake.set()
        await fut

    async def _next_batch(self) -> list[Frame]:
        getter = asyncio.ensure_future(self.tap.get_batch(BATCH_FRAMES))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({getter, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            if not getter.done():
                getter.cancel()  # queued frames stay in the tap for the next call
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
        self._wake.clear()
        if getter.cancelled():
            return []
        return getter.result()  # raises TapClosed once closed and drained

    async def _feed(self, frames: list[Frame]) -> None:
        if not frames or self.failed:
            return
        if self._stt is None:
            self._base = self._clock.offset(frames[0].tick)
            try:
                self._stt = self._new_stt()
            except Exception as exc:
                self.failed = str(exc)
                log.error("transcriber %s: cannot start STT: %s", self.direction, exc)
                return
            self._consumer = asyncio.ensure_future(self._consume(self._stt, self._base))
        else:
            self._clock.offset(frames[0].tick)
        try:
            await self._stt.feed(b"".join(f.pcm for f in frames))
        except (SpeechError, RuntimeError) as exc:
            self.failed = str(exc)
            log.error("transcriber %s: STT failed: %s", self.direction, exc)

    async def _do_flush(self) -> None:
        waiters, self._flush_requests = self._flush_requests, []
        pending: list[Frame] = []
        while (frame := self.tap.get_nowait()) is not None:
            pending.append(frame)
        await self._feed(pending)
        await self._finish_stream()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _finish_stream(self) -> None:
        stt, consumer = self._stt, self._consumer
        self._stt = self._consumer = None
        if stt is None or consumer is None:
            return
        try:
            await stt.close()
        except Exception as exc:  # a broken stream must not lose the finals already queued
            log.warning("transcriber %s: closing STT failed: %s", self.direction, exc)
        try:
            await consumer
        finally:
            await stt.aclose()

    async def _consume(self, stt: STT, base: float) -> None:
        try:
            async for ev in stt:
                offset = base + (ev.start or 0.0)
                if ev.type == SttEventType.FINAL:
                    text = ev.text.strip()
                    if text:
                        self.finals += 1
                        try:
                            await self._on_final(self.direction, offset, text)
                        except Exception:
                            log.exception("transcriber %s: storing a final failed", self.direction)
                else:
                    try:
                        self._on_speech(self.direction, ev, offset)
                    except Exception:
                        log.exception("transcriber %s: speech event failed", self.direction)
        except SpeechError as exc:
            self.failed = str(exc)
            log.error("transcriber %s: STT failed: %s", self.direction, exc)


class LiveTranscriber:
    """Transcribes ``directions`` of ``media`` until :meth:`stop` or until the taps close."""

    def __init__(
        self,
        media: TapSource,
        directions: list[str],
        new_stt: SttFactory,
        on_final: OnFinal,
        on_speech: OnSpeech | None = None,
    ) -> None:
        self.media = media
        clock = _Clock()
        self.streams = [
            DirectionStream(
                d, media.tap(d, maxsize=TAP_FRAMES), new_stt, clock, on_final, on_speech or _ignore
            )
            for d in directions
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self.done = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(s.run()) for s in self.streams]
        self._runner = asyncio.ensure_future(self._wait_all())

    async def _wait_all(self) -> None:
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self.done.set()

    async def flush(self) -> None:
        """Transcribe everything heard so far (finals delivered) and keep going."""
        live = [s for s, t in zip(self.streams, self._tasks, strict=True) if not t.done()]
        await asyncio.gather(*(s.flush() for s in live))

    async def stop(self) -> None:
        """Stop listening; returns after the last utterance has been delivered. Idempotent."""
        for s in self.streams:
            self.media.untap(s.tap)  # closes the tap; what is queued is still fed
        await self.wait()

    async def wait(self) -> None:
        await self.done.wait()

    def cancel(self) -> None:
        """Abandon at once (shutdown): no more finals."""
        for s in self.streams:
            with contextlib.suppress(Exception):
                self.media.untap(s.tap)
        for t in self._tasks:
            t.cancel()


def _ignore(*_: Any) -> None:
    return None
