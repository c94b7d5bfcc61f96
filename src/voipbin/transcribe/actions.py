"""Transcription actions on a call: ``transcribe_start`` (non-blocking) and ``transcribe_stop``.

``transcribe_start`` creates a transcribe of the call (reference_type ``call``), sets
``voipbin.transcribe.{id,language,direction}`` and returns at once; transcripts are written while the
flow goes on. A second start on the same call and language reuses the running transcribe. ``provider``
(gcp/aws) and the seed's ``real_time`` are accepted: speech comes from the platform's STT
(``VOIPBIN_DEFAULT_STT_TYPE``) and transcripts are always delivered live. ``transcribe_stop`` stops
every transcribe of the call and returns once their last transcripts are stored.

The audio comes from the call's media session (``call.media``: taps of what the caller says, ``in``,
and what the platform plays, ``out``); a call without one cannot be transcribed (ActionFailed).
Registered into the flow engine's registry by the composition root (:func:`register_transcribe_actions`).
"""

from __future__ import annotations

from voipbin.flow.handlers.base import CONTINUE, ActionContext, ActionFailed, HandlerRegistry, Outcome
from voipbin.flow.interfaces import CallHungUp
from voipbin.models.action_options.ai import TranscribeOption
from voipbin.transcribe.service import (
    TranscribeError,
    TranscribeService,
    normalize_direction,
    normalize_language,
    transcribe_variables,
)


def register_transcribe_actions(registry: HandlerRegistry, service: TranscribeService) -> None:
    async def start(ctx: ActionContext) -> Outcome:
        return await transcribe_start(ctx, service)

    async def stop(ctx: ActionContext) -> Outcome:
        call = ctx.require_call()
        await service.stop_call(ctx.customer_id, call.call_id)
        return CONTINUE

    registry.register("transcribe_start", start)
    registry.register("transcribe_stop", stop)


async def transcribe_start(ctx: ActionContext, service: TranscribeService) -> Outcome:
    assert isinstance(ctx.option, TranscribeOption)
    call = ctx.require_call()
    if call.is_hungup:
        raise CallHungUp(str(call.call_id))
    media = getattr(call, "media", None)
    if media is None or not hasattr(media, "tap"):
        raise ActionFailed("transcribe_start: this call has no media stream to transcribe")
    opt = ctx.option
    language = normalize_language(opt.language)
    running = service.for_call(ctx.customer_id, call.call_id, language)
    if running is not None:
        ctx.set_variables(
            {
                "voipbin.transcribe.id": str(running.id),
                "voipbin.transcribe.language": running.language,
                "voipbin.transcribe.direction": running.direction,
            }
        )
        return CONTINUE
    on_end = opt.on_end_flow_id if not isinstance(opt.on_end_flow_id, str) else None
    try:
        row = await service.start_call(
            ctx.customer_id,
            call.call_id,
            media,
            language=language,
            direction=normalize_direction(opt.direction),
            hangup=call.wait_hangup,
            activeflow_id=ctx.activeflow_id,
            on_end_flow_id=on_end,
            provider=opt.provider if opt.provider in ("gcp", "aws") else "",
        )
    except TranscribeError as exc:
        raise ActionFailed(f"transcribe_start: {exc}") from None
    ctx.set_variables(transcribe_variables(row))
    return CONTINUE
