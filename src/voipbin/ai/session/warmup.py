"""Load the offline engines' models when a conversation starts, not when the caller first speaks.

Piper's voice and Whisper's weights load lazily (1-2 s each on first use); a session starts loading
the ones it will need in the background, so the first answer is not that much slower than the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from voipbin.speech.executor import run_inference

from .config import SessionConfig

log = logging.getLogger(__name__)


async def _load(name: str, fn: Callable[..., object], *args: object) -> None:
    try:
        await run_inference(fn, *args)
    except Exception as exc:  # the real use reports the problem; a warm-up only logs it
        log.warning("warm-up of %s failed: %s", name, exc)


async def warm_up(cfg: SessionConfig) -> None:
    jobs = []
    if cfg.tts_type == "piper":
        from voipbin.speech.tts_piper import piper_voice

        jobs.append(_load("piper", piper_voice, cfg.tts_voice_id or None))
    if cfg.stt_type == "whisper":
        from voipbin.speech.stt_whisper import whisper_model

        jobs.append(_load("whisper", whisper_model))
    await asyncio.gather(*jobs)
