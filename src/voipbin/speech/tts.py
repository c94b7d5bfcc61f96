"""The TTS interface: one object per utterance, text streams in, PCM16 streams out, cancellable.

Usage::

    tts = create_tts("piper", language="en-US")   # sample_rate 8000 by default
    await tts.feed("Hello there. How can")        # LLM text, as it arrives
    await tts.feed(" I help you today?")
    await tts.end()                               # no more text
    async for pcm in tts: ...                     # PCM16 mono chunks at tts.sample_rate
    tts.cancel()                                  # barge-in: stop synthesis and the stream now

Text is cut into clauses (:mod:`voipbin.speech.text`) so synthesis of the first clause starts
while the LLM is still writing; audio comes out as soon as the engine produces its first chunk.
Engines that synthesise per request subclass :class:`ClauseTTS`; engines with their own text
streaming protocol (ElevenLabs stream-input) override :meth:`TTS._run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import TypedDict

from voipbin.speech.audio import StreamResampler, check_rate
from voipbin.speech.errors import SpeechError, SpeechServerError
from voipbin.speech.text import ClauseSplitter

log = logging.getLogger(__name__)

_END = object()
# The first clause of an utterance may end at a soft break (a comma...) once it is this long.
FIRST_CLAUSE_SOFT_CHARS = 16


class TtsOptions(TypedDict, total=False):
    """Keyword arguments of :class:`TTS` (adapters pass them on with ``**kwargs``)."""

    sample_rate: int
    voice: str | None
    language: str | None
    timeout: float
    min_clause_chars: int


class TTS(ABC):
    """Base class for one streaming synthesis (single use: after end/cancel, make a new one)."""

    provider: str = ""
    #: Rate of the PCM the engine produces; resampled to ``sample_rate`` on the way out.
    source_rate: int = 16000

    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        voice: str | None = None,
        language: str | None = None,
        timeout: float = 10.0,
        min_clause_chars: int = 40,
    ) -> None:
        self.sample_rate = check_rate(sample_rate)
        self.voice = voice
        self.language = language
        self.timeout = timeout
        self._splitter = ClauseSplitter(min_soft_chars=min_clause_chars)
        self._text_q: asyncio.Queue[object] = asyncio.Queue()
        self._audio_q: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._resampler: StreamResampler | None = None
        self._ended = False
        self._spoke = False  # a clause was queued (the first one goes as soon as it is speakable)
        self.cancelled = False
        self.done = False

    # -- text in ---------------------------------------------------------------------------------
    async def feed(self, text: str) -> None:
        """Add text; complete clauses are queued for synthesis right away, and the first one as soon
        as it is speakable (:meth:`ClauseSplitter.take_speakable`): the caller is waiting for it,
        while later clauses are synthesised as the earlier ones play."""
        self._check_open()
        self._ensure_started()
        first = not self._spoke
        clauses = self._splitter.push(text)
        if not clauses and first:
            clauses = self._splitter.take_speakable(FIRST_CLAUSE_SOFT_CHARS)
        for clause in clauses:
            self._spoke = True
            self._text_q.put_nowait(clause)
        if first and clauses:
            # Let the engine take the first clause now: a caller feeding tokens that arrived
            # together would otherwise parse them all before the engine's task ran.
            await asyncio.sleep(0)

    async def flush(self) -> None:
        """Synthesise whatever text is buffered now, even if it is not a complete clause."""
        self._check_open()
        self._ensure_started()
        for clause in self._splitter.flush():
            self._spoke = True
            self._text_q.put_nowait(clause)
        self._text_q.put_nowait(self._flush_marker())

    async def end(self) -> None:
        """No more text: the audio stream ends once the buffered text has been spoken."""
        if self._ended or self.cancelled:
            return
        self._ensure_started()
        for clause in self._splitter.flush():
            self._text_q.put_nowait(clause)
        self._ended = True
        self._text_q.put_nowait(_END)

    def cancel(self) -> None:
        """Barge-in: stop synthesis and end the audio stream immediately. Idempotent."""
        if self.cancelled:
            return
        self.cancelled = True
        self._ended = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        while not self._audio_q.empty():
            self._audio_q.get_nowait()
        self._audio_q.put_nowait(_END)

    async def aclose(self) -> None:
        self.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    # -- audio out -------------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        self._ensure_started()
        while True:
            item = await self._audio_q.get()
            if item is _END:
                self.done = True
                return
            if isinstance(item, BaseException):
                self.done = True
                raise item
            assert isinstance(item, bytes)
            yield item

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Convenience: speak ``text`` in full and yield its audio."""
        await self.feed(text)
        await self.end()
        async for chunk in self:
            yield chunk

    async def read_all(self) -> bytes:
        """Collect the whole stream (only ends after :meth:`end` or :meth:`cancel`)."""
        return b"".join([c async for c in self])

    async def read_all_of(self, text: str) -> bytes:
        """Speak ``text`` in full and return all its audio."""
        return b"".join([c async for c in self.synthesize(text)])

    # -- engine side -----------------------------------------------------------------------------
    def _emit(self, pcm: bytes, rate: int | None = None) -> None:
        """Queue engine audio (at ``rate``, default ``source_rate``), resampled to ``sample_rate``."""
        if self.cancelled or not pcm:
            return
        rate = rate or self.source_rate
        if self._resampler is None or self._resampler.in_rate != rate:
            self._resampler = StreamResampler(rate, self.sample_rate)
        out = self._resampler.process(pcm)
        if out:
            self._audio_q.put_nowait(out)

    def _emit_tail(self) -> None:
        if self._resampler is not None and not self.cancelled:
            tail = self._resampler.process(b"", last=True)
            self._resampler = None
            if tail:
                self._audio_q.put_nowait(tail)

    async def _next_text(self) -> object:
        """Next clause (str), a flush marker, or the end marker."""
        return await self._text_q.get()

    @staticmethod
    def _is_end(item: object) -> bool:
        return item is _END

    @staticmethod
    def _flush_marker() -> object:
        return _FLUSH

    @abstractmethod
    async def _run(self) -> None:
        """Consume text from :meth:`_next_text` and :meth:`_emit` audio until the end marker."""

    def _check_open(self) -> None:
        if self._ended:
            raise RuntimeError("TTS stream already ended or cancelled; create a new one per utterance")

    def _ensure_started(self) -> None:
        if self._task is None and not self.cancelled:
            self._task = asyncio.create_task(self._guarded_run(), name=f"tts-{self.provider}")

    async def _guarded_run(self) -> None:
        try:
            await self._run()
            self._emit_tail()
            self._audio_q.put_nowait(_END)
        except asyncio.CancelledError:
            raise
        except SpeechError as exc:
            self._fail(exc)
        except Exception as exc:  # an engine bug must end the stream, not hang the caller
            log.exception("%s TTS failed", self.provider)
            self._fail(SpeechServerError(f"{self.provider} TTS failed: {exc}", provider=self.provider))

    def _fail(self, exc: SpeechError) -> None:
        if not self.cancelled:
            self._audio_q.put_nowait(exc)
            self._audio_q.put_nowait(_END)


_FLUSH = object()


class ClauseTTS(TTS):
    """An engine that synthesises one clause per request (Piper, espeak-ng, REST providers)."""

    async def _run(self) -> None:
        while True:
            item = await self._next_text()
            if self._is_end(item):
                return
            if not isinstance(item, str):
                continue  # flush marker: each clause is already its own request
            async for pcm in self._synthesize_clause(item):
                if isinstance(pcm, tuple):
                    self._emit(pcm[0], pcm[1])
                else:
                    self._emit(pcm)

    @abstractmethod
    def _synthesize_clause(self, text: str) -> AsyncIterator[bytes | tuple[bytes, int]]:
        """Yield PCM16 mono at ``source_rate`` (or ``(pcm, rate)`` pairs) for one clause."""
