"""Speech for the test phone: render ``say`` text to 8 kHz PCM once, and transcribe what it heard.

``say`` is rendered before the call is answered (not streamed), so the phone's audio starts on the
first media tick after answer whatever the engine's speed; that keeps end-to-end tests timing-stable.
Both go through the platform's speech registry, so any configured ``tts_type``/``stt_type`` works.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voipbin.media.wav import MEDIA_RATE, read_wav
from voipbin.speech.registry import create_stt, create_tts, validate_stt_type
from voipbin.speech.stt import SttEventType


async def synthesize(text: str, tts_type: str = "espeak", *, language: str | None = None) -> bytes:
    """The whole of ``text`` as 8 kHz mono PCM16."""
    tts = create_tts(tts_type, language=language, sample_rate=MEDIA_RATE)
    try:
        return await tts.read_all_of(text)
    finally:
        await tts.aclose()


async def transcribe_pcm(
    pcm: np.ndarray, stt_type: str = "whisper", *, language: str | None = "en-US"
) -> str:
    """Text of 8 kHz mono PCM16 audio, by ``stt_type`` (whisper: the whole clip in one pass)."""
    validate_stt_type(stt_type, language=language)
    data = pcm.astype("<i2", copy=False).tobytes()
    if not data:
        return ""
    if stt_type == "whisper":
        # one pass over the whole clip: better than VAD segments for short test phrases
        from voipbin.speech.stt_whisper import transcribe_pcm as whisper_pcm

        return (await whisper_pcm(data, MEDIA_RATE, language)).text
    stt = create_stt(stt_type, language=language, sample_rate=MEDIA_RATE)
    try:
        step = MEDIA_RATE * 2 // 5  # 200 ms chunks
        for i in range(0, len(data), step):
            await stt.feed(data[i : i + step])
        await stt.close()
        texts = [e.text for e in await stt.events() if e.type == SttEventType.FINAL and e.text]
    finally:
        await stt.aclose()
    return " ".join(t.strip() for t in texts).strip()


async def transcribe_wav(
    path: str | Path, stt_type: str = "whisper", *, language: str | None = "en-US"
) -> str:
    return await transcribe_pcm(read_wav(path), stt_type, language=language)
