"""Offline STT: faster-whisper — ``tiny.en`` for English, multilingual ``base`` for everything else.

Models (see :mod:`voipbin.speech.whisper_models` for where the weights come from) are loaded once per
process, lazily on first use; inference runs on the shared bounded pool
(:mod:`voipbin.speech.executor`) so the event loop never blocks. English (``en-*``) uses the fast
``tiny.en``; another language uses ``base`` with that language; no language uses ``base`` with
Whisper's language detection, and the detected language is reported on each final (the AI session
answers in it). Threads per inference: :func:`voipbin.speech.executor.whisper_threads` (a change
reloads the models).
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import numpy as np

from voipbin.speech.audio import pcm16_to_float, resample
from voipbin.speech.executor import run_inference, whisper_threads
from voipbin.speech.stt_segmented import Recognition, SegmentedSTT
from voipbin.speech.turn_words import primary_language
from voipbin.speech.whisper_models import base_path, tiny_en_path

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

_lock = threading.Lock()
_models: dict[str, tuple[WhisperModel, int]] = {}


def whisper_model(name: str = "tiny.en") -> WhisperModel:
    """The shared WhisperModel ``tiny.en`` or ``base`` (thread-safe lazy load)."""
    with _lock:
        threads = whisper_threads()
        loaded = _models.get(name)
        if loaded is None or loaded[1] != threads:
            from faster_whisper import WhisperModel

            path = tiny_en_path() if name == "tiny.en" else base_path()
            model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)
            _models[name] = (model, threads)
            return model
        return loaded[0]


def model_for(language: str | None) -> tuple[str, str | None]:
    """(model name, Whisper language code or None to detect) for a BCP-47 ``language``."""
    if not language:
        return "base", None
    primary = primary_language(language)
    return ("tiny.en" if primary == "en" else "base"), primary


def transcribe_blocking(audio16k: np.ndarray, language: str | None = "en") -> Recognition:
    name, code = model_for(language)
    model = whisper_model(name)
    segments, info = model.transcribe(
        audio16k, language=code, beam_size=1, vad_filter=False, condition_on_previous_text=False
    )
    segs = list(segments)
    text = " ".join(s.text.strip() for s in segs).strip()
    conf = math.exp(sum(s.avg_logprob for s in segs) / len(segs)) if segs else None
    return Recognition(text=text, confidence=conf, language=code or info.language)


async def transcribe_pcm(pcm: bytes, sample_rate: int, language: str | None = "en") -> Recognition:
    """Transcribe a whole PCM16 clip (any supported rate) with the shared model for ``language``."""
    audio = pcm16_to_float(resample(pcm, sample_rate, 16000))
    return await run_inference(transcribe_blocking, audio, language)


class WhisperSTT(SegmentedSTT):
    provider = "whisper"

    async def _transcribe(self, pcm: bytes) -> Recognition:
        return await transcribe_pcm(pcm, self.sample_rate, self.language)
