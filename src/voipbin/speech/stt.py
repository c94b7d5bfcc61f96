"""The STT interface: PCM16 streams in, transcription events stream out.

Usage::

    stt = create_stt("deepgram", language="en-US", sample_rate=8000)
    await stt.feed(pcm)          # any chunk size, 8 or 16 kHz PCM16 mono
    ...
    await stt.close()            # no more audio; final results still arrive
    async for ev in stt: ...     # SttEvent: speech_started / interim / final / speech_ended

Times in events are seconds from the start of the stream. Cloud streaming providers
(Deepgram) report their own events; batch recognisers (Whisper, OpenAI, ElevenLabs) are made
streaming by :class:`voipbin.speech.stt_segmented.SegmentedSTT` (VAD cuts, then one request per
utterance).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict

from voipbin.speech.audio import check_rate
from voipbin.speech.errors import SpeechError, SpeechServerError

log = logging.getLogger(__name__)

_END = object()


class SttEventType(StrEnum):
    SPEECH_STARTED = "speech_started"
    INTERIM = "interim"
    FINAL = "final"
    SPEECH_ENDED = "speech_ended"


@dataclass
class SttEvent:
    type: SttEventType
    text: str = ""
    start: float | None = None  # seconds from stream start
    end: float | None = None
    confidence: float | None = None
    language: str | None = None


class SttOptions(TypedDict, total=False):
    """Keyword arguments of :class:`STT` (adapters pass them on with ``**kwargs``)."""

    language: str | None
    sample_rate: int
    timeout: float


class STT(ABC):
    """Base class for one streaming recognition session (single use)."""

    provider: str = ""
    # True when the provider's speech_ended is its own end-of-utterance model (Deepgram UtteranceEnd),
    # evidence for the turn detector; a VAD-segmented recogniser's is only our own silence timer.
    ends_utterances: bool = False

    def __init__(
        self, *, language: str | None = None, sample_rate: int = 8000, timeout: float = 10.0
    ) -> None:
        self.language = language
        self.sample_rate = check_rate(sample_rate)
        self.timeout = timeout
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._started = False
        self._closed = False
        self.cancelled = False
        self._failed: SpeechError | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the session (connect). Called implicitly by the first :meth:`feed`."""
        if not self._started:
            self._started = True
            await self._open()

    async def feed(self, pcm: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise RuntimeError("STT stream already closed")
        await self.start()
        await self._send_audio(pcm)

    async def close(self) -> None:
        """No more audio. Pending results are still delivered, then the event stream ends."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            self._finish()
            return
        await self._close_input()

    def cancel(self) -> None:
        """Abort now: no more events."""
        if self.cancelled:
            return
        self.cancelled = True
        self._closed = True
        for t in list(self._tasks):
            t.cancel()
        while not self._events.empty():
            self._events.get_nowait()
        self._events.put_nowait(_END)
        self._spawn(self._abort())

    def endpoint(self) -> None:
        """The caller's turn is over (the turn detector said so): deliver what is pending now.

        Streaming providers decide their own finals, so this does nothing by default; VAD-segmented
        recognisers cut the open utterance and transcribe it at once.
        """
        return None

    def settled(self) -> bool:
        """True when no audio heard so far still owes a final result (so a turn's text is whole)."""
        return True

    async def aclose(self) -> None:
        self.cancel()
        await asyncio.sleep(0)

    async def __aenter__(self) -> STT:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[SttEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[SttEvent]:
        while True:
            item = await self._events.get()
            if item is _END:
                self._events.put_nowait(_END)  # later iterators also see the end
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, SttEvent)
            yield item

    async def events(self) -> list[SttEvent]:
        return [e async for e in self]

    # -- adapter side ----------------------------------------------------------------------------
    def _emit(self, event: SttEvent) -> None:
        if not self.cancelled:
            self._events.put_nowait(event)

    def _finish(self) -> None:
        if not self.cancelled:
            self._events.put_nowait(_END)

    def _fail(self, exc: SpeechError) -> None:
        if self._failed is None and not self.cancelled:
            self._failed = exc
            self._events.put_nowait(exc)
            self._events.put_nowait(_END)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except SpeechError as exc:
            self._fail(exc)
        except Exception as exc:
            log.exception("%s STT failed", self.provider)
            self._fail(SpeechServerError(f"{self.provider} STT failed: {exc}", provider=self.provider))

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _send_audio(self, pcm: bytes) -> None: ...

    @abstractmethod
    async def _close_input(self) -> None:
        """Signal end of audio; must eventually call :meth:`_finish` (or :meth:`_fail`)."""

    async def _abort(self) -> None:
        """Release resources after :meth:`cancel` (close sockets)."""
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)
