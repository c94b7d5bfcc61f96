"""Speech actions on a call: ``talk`` (text-to-speech played to the caller).

``talk.provider`` names VoIPBIN's cloud engines (gcp/aws); here speech comes from the platform's TTS
(``VOIPBIN_DEFAULT_TTS_TYPE``, offline Piper by default), so the provider and cloud voice names are
accepted but do not select the engine. ``digits_handle: next`` stops playback on a key press.
"""

from __future__ import annotations

import asyncio
import logging

from voipbin.flow.handlers.base import CONTINUE, ActionContext, Outcome
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.flow.interfaces import CallHungUp
from voipbin.models.action_options.media import TalkOption

log = logging.getLogger(__name__)


@REGISTRY.handler("talk")
async def talk(ctx: ActionContext) -> Outcome:
    assert isinstance(ctx.option, TalkOption)
    call = ctx.require_call()
    text, language = ctx.option.text, ctx.option.language or "en-US"
    speak = call.play_tts(text, language, "")
    if ctx.option.async_:
        task = asyncio.ensure_future(speak)
        task.add_done_callback(_log_background_failure)
        return CONTINUE
    if ctx.option.digits_handle == "next":
        speaking = asyncio.ensure_future(speak)
        key = asyncio.ensure_future(call.receive_digits(1, "", 24 * 3600))
        try:
            await asyncio.wait({speaking, key}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (speaking, key):
                t.cancel()
            results = await asyncio.gather(speaking, key, return_exceptions=True)
        if key.done() and not key.cancelled() and isinstance(key.result(), str) and key.result():
            ctx.set_variable("voipbin.call.digits", key.result())
        for r in results:
            if isinstance(r, CallHungUp):
                raise r
        return CONTINUE
    await speak
    return CONTINUE


def _log_background_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), CallHungUp):
        log.warning("background talk failed: %s", task.exception())
