"""Streaming STT on top of a batch recogniser: VAD cuts utterances, each one is transcribed whole.

Whisper, OpenAI ``/v1/audio/transcriptions`` and ElevenLabs speech-to-text take a complete
clip. :class:`SegmentedSTT` runs :class:`voipbin.speech.vad.VadSegmenter` on the incoming audio,
reports ``speech_started``/``speech_ended`` at once, and sends each finished utterance to
``_transcribe`` one at a time (results stay in order), emitting a ``final`` event per utterance.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from voipbin.speech.stt import STT, SttEvent, SttEventType, SttOptions
from voipbin.speech.vad import VadConfig, VadEvent, VadSegmenter

# Longer stop_secs than turn-taking VAD: a breath inside a sentence should not split it. In an AI
# conversation the turn detector ends the utterance earlier through :meth:`SegmentedSTT.endpoint`.
TRANSCRIBE_VAD = VadConfig(confidence=0.6, start_secs=0.1, stop_secs=0.5, min_volume=0.45)


@dataclass
class Recognition:
    text: str
    confidence: float | None = None
    language: str | None = None


class SegmentedSttOptions(SttOptions, total=False):
    """Keyword arguments of :class:`SegmentedSTT` (adapters pass them on with ``**kwargs``)."""

    vad_config: VadConfig | None
    max_segment_secs: float


class SegmentedSTT(STT):
    def __init__(
        self,
        *,
        language: str | None = None,
        sample_rate: int = 8000,
        timeout: float = 30.0,
        vad_config: VadConfig | None = None,
        max_segment_secs: float = 25.0,
    ) -> None:
        super().__init__(language=language, sample_rate=sample_rate, timeout=timeout)
        self._vad_config = vad_config or TRANSCRIBE_VAD
        self._max_segment_secs = max_segment_secs
        self._segmenter: VadSegmenter | None = None
        self._segments: asyncio.Queue[tuple[float, float, bytes] | None] = asyncio.Queue()
        self._busy = False  # a segment is being transcribed

    async def _open(self) -> None:
        self._segmenter = VadSegmenter(
            self.sample_rate, self._vad_config, collect=True, max_segment_secs=self._max_segment_secs
        )
        self._spawn(self._worker())

    async def _send_audio(self, pcm: bytes) -> None:
        assert self._segmenter is not None
        # Silero costs ~0.2 ms per 32 ms frame and is gated by webrtcvad in silence: cheaper inline
        # than a thread hop (see bench/speech_engines.py).
        self._handle(self._segmenter.feed(pcm))

    def endpoint(self) -> None:
        if self._segmenter is not None and not self._closed:
            self._handle(self._segmenter.cut())

    def settled(self) -> bool:
        # An emitted final not yet read by the consumer still counts as owed.
        return self._segments.empty() and not self._busy and self._events.empty()

    async def _close_input(self) -> None:
        assert self._segmenter is not None
        self._handle(self._segmenter.flush())
        self._segments.put_nowait(None)

    def _handle(self, events: Iterable[VadEvent]) -> None:
        for ev in events:
            if ev.kind == "start":
                self._emit(SttEvent(SttEventType.SPEECH_STARTED, start=ev.time, language=self.language))
            else:
                self._emit(
                    SttEvent(SttEventType.SPEECH_ENDED, start=ev.start, end=ev.time, language=self.language)
                )
                self._segments.put_nowait((ev.start, ev.time, ev.audio))

    async def _worker(self) -> None:
        while True:
            item = await self._segments.get()
            if item is None:
                self._finish()
                return
            start, end, audio = item
            self._busy = True
            try:
                result = await self._transcribe(audio)
            finally:
                self._busy = False
            text = result.text.strip()
            if text:
                self._emit(
                    SttEvent(
                        SttEventType.FINAL,
                        text=text,
                        start=start,
                        end=end,
                        confidence=result.confidence,
                        language=result.language or self.language,
                    )
                )

    @abstractmethod
    async def _transcribe(self, pcm: bytes) -> Recognition:
        """Recognise one utterance of PCM16 at ``self.sample_rate``."""
