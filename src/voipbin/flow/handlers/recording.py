"""Recording actions: recording_start (sets ``voipbin.recording.*``) and recording_stop.

The call side owns the recording (row, file, end conditions, ``on_end_flow_id``); the engine only asks
for it and exposes the id to later actions.
"""

from __future__ import annotations

from voipbin.flow.handlers.base import CONTINUE, ActionContext, Outcome
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.flow.interfaces import RecordingRequest
from voipbin.models.action_options.media import RecordingStartOption


@REGISTRY.handler("recording_start")
async def recording_start(ctx: ActionContext) -> Outcome:
    assert isinstance(ctx.option, RecordingStartOption)
    call = ctx.require_call()
    opt = ctx.option
    on_end = opt.on_end_flow_id
    request = RecordingRequest(
        format=opt.format or "wav",
        end_of_silence=int(opt.end_of_silence),
        end_of_key=opt.end_of_key,
        duration=int(opt.duration),
        beep_start=bool(opt.beep_start),
        on_end_flow_id=on_end if not isinstance(on_end, str) else None,
        activeflow_id=ctx.activeflow_id,
    )
    recording_id = await call.recording_start(request)
    ctx.set_variables(
        {
            "voipbin.recording.id": str(recording_id),
            "voipbin.recording.reference_type": "call",
            "voipbin.recording.reference_id": str(call.call_id),
            "voipbin.recording.format": request.format,
        }
    )
    return CONTINUE


@REGISTRY.handler("recording_stop")
async def recording_stop(ctx: ActionContext) -> Outcome:
    await ctx.require_call().recording_stop()
    return CONTINUE
