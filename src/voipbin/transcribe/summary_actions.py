"""``ai_summary``: an AI summary of a transcribe (synchronous) or of a live call (real time).

VoIPBIN skips ``ai_summary`` in call flows (it is a non-rtc action there); the seed tutorial runs it
inside call flows, so here it runs everywhere:

* ``reference_type: transcribe`` (seed: ``source_type``/``source_id: ${voipbin.transcribe.id}``) —
  waits for the summary of everything transcribed so far, sets ``voipbin.ai_summary.*`` (including
  ``content``) and continues, so a following ``talk`` can use it.
* ``reference_type: call`` (seed: ``source_id: ${voipbin.call.id}``, ``real_time: true``) — creates a
  ``progressing`` summary and continues at once; the content is kept up to date while the call lasts
  and finalised at hangup (see :mod:`voipbin.transcribe.summary`).

Without ``reference_type``/``reference_id`` the activeflow's own reference is used (a transcribe's
``on_end_flow_id`` flow, or the call). Unknown or foreign references and model failures end the
action with an error, never silently. Registered by the composition root (:func:`register_summary_actions`).
"""

from __future__ import annotations

import uuid
from typing import Any

from voipbin.flow.handlers.base import CONTINUE, ActionContext, ActionFailed, HandlerRegistry, Outcome
from voipbin.flow.interfaces import CallHungUp, CallRecordsPort, LiveCalls
from voipbin.models.action_options.ai import AISummaryOption
from voipbin.transcribe.summary import SummaryError, SummaryService, summary_variables


def _uuid(value: Any) -> uuid.UUID | None:
    return value if isinstance(value, uuid.UUID) else None


def register_summary_actions(
    registry: HandlerRegistry, summaries: SummaryService, calls: CallRecordsPort, live: LiveCalls
) -> None:
    async def handler(ctx: ActionContext) -> Outcome:
        return await ai_summary(ctx, summaries, calls, live)

    registry.register("ai_summary", handler, needs_call=False)


async def ai_summary(
    ctx: ActionContext, summaries: SummaryService, calls: CallRecordsPort, live: LiveCalls
) -> Outcome:
    assert isinstance(ctx.option, AISummaryOption)
    opt = ctx.option
    rtype = opt.reference_type or (ctx.reference_type if ctx.reference_type in ("transcribe", "call") else "")
    ref = _uuid(opt.reference_id)
    if ref is None and rtype == ctx.reference_type:
        ref = ctx.reference_id
    if not rtype:
        raise ActionFailed("ai_summary: reference_type (or source_type) is required")
    if ref is None:
        raise ActionFailed(
            f"ai_summary: reference_id (or source_id) of the {rtype} is required (it was empty)"
        )
    on_end = _uuid(opt.on_end_flow_id)
    try:
        if rtype == "transcribe":
            row = await summaries.summarize_transcribe(
                ctx.customer_id,
                ref,
                language=opt.language,
                activeflow_id=ctx.activeflow_id,
                on_end_flow_id=on_end,
            )
        elif rtype == "call":
            call = await _live_call(ctx, ref, calls, live)
            row = await summaries.start_call(
                ctx.customer_id,
                ref,
                call.media,
                call.wait_hangup,
                language=opt.language,
                real_time=opt.real_time is True,
                activeflow_id=ctx.activeflow_id,
                on_end_flow_id=on_end,
            )
        else:
            raise ActionFailed(
                f"ai_summary: reference_type {rtype!r} is not supported yet (use transcribe or call)"
            )
    except SummaryError as exc:
        raise ActionFailed(f"ai_summary: {exc}") from None
    ctx.set_variables(summary_variables(row))
    return CONTINUE


async def _live_call(ctx: ActionContext, call_id: uuid.UUID, calls: CallRecordsPort, live: LiveCalls) -> Any:
    """The live call object (with media) for ``call_id``, owned by this customer."""
    call: Any = ctx.call if ctx.call is not None and ctx.call.call_id == call_id else None
    if call is None:
        row = await calls.get(call_id)
        if row is None or row.customer_id != ctx.customer_id or row.tm_delete is not None:
            raise ActionFailed(f"ai_summary: call {call_id} not found")
        call = live.live_call(call_id)
        if call is None:
            raise ActionFailed(f"ai_summary: call {call_id} is not live on this node")
    if call.is_hungup:
        if call is ctx.call:
            raise CallHungUp(str(call_id))
        raise ActionFailed(f"ai_summary: call {call_id} has already hung up")
    if getattr(call, "media", None) is None:
        raise ActionFailed(f"ai_summary: call {call_id} has no media stream to transcribe")
    return call
