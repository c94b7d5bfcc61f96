"""AI voice conversation actions: ``ai`` (request/response) and ``ai_talk`` (streaming, barge-in).

The handler resolves the AI configuration (a referenced AI and/or the seed's inline options), fails
the action at once if it cannot run (unknown AI, bad engine model, missing provider key: the call is
hung up ``failed`` with the reason in ``metadata.flow_error``), sets ``voipbin.aicall.*`` and blocks
while :class:`voipbin.ai.session.AISession` converses. ``stop_service`` continues the flow with the
next action, ``stop_flow`` ends it, a hangup ends it quietly, ``duration`` (seconds) bounds it.

The handler lives with the AI package (it drives AI sessions) and is registered into the flow engine's
registry by the composition root with :func:`register_ai_actions`.
"""

from __future__ import annotations

import asyncio
import logging

from voipbin.ai.llm.base import LLMError
from voipbin.ai.registry import create_llm
from voipbin.ai.session import AICallRecord, AIConfigError, AIDeps, AISession, resolve_config
from voipbin.ai.session.warmup import warm_up
from voipbin.events.bus import EventBus
from voipbin.flow.handlers.base import CONTINUE, ActionContext, ActionFailed, End, HandlerRegistry, Outcome
from voipbin.flow.interfaces import CallAudio
from voipbin.models.action_options.ai import AIOption
from voipbin.speech.errors import SpeechError

log = logging.getLogger(__name__)


def register_ai_actions(registry: HandlerRegistry, deps: AIDeps, events: EventBus) -> None:
    async def handler(ctx: ActionContext) -> Outcome:
        return await ai_conversation(ctx, deps, events)

    for type_ in ("ai", "ai_talk"):
        registry.register(type_, handler, needs_call=True)


async def ai_conversation(ctx: ActionContext, deps: AIDeps, events: EventBus) -> Outcome:
    assert isinstance(ctx.option, AIOption)
    call = ctx.require_call()
    if not isinstance(call, CallAudio):
        raise ActionFailed(
            f"action {ctx.action.type!r} needs the call's audio, which this call does not offer"
        )
    try:
        cfg = await resolve_config(deps, ctx.customer_id, ctx.option, ctx.variables, ctx.action.option)
        llm = create_llm(cfg.engine_model, cfg.engine_key, models=deps.models)
    except AIConfigError as exc:
        raise ActionFailed(f"{ctx.action.type}: {exc}") from None
    except ValueError as exc:  # registry errors not caught by resolve_config
        raise ActionFailed(f"{ctx.action.type}: {exc}") from None
    record = AICallRecord(events, ctx.customer_id, ctx.activeflow_id, call.call_id, cfg)
    ctx.set_variables(
        {
            "voipbin.aicall.id": str(record.id),
            "voipbin.aicall.ai_id": str(cfg.ai_id) if cfg.ai_id else "",
            "voipbin.aicall.ai_engine_model": cfg.engine_model,
            "voipbin.aicall.stt_language": cfg.stt_language,
        }
    )
    record.set_status("initiating")
    warming = asyncio.ensure_future(warm_up(cfg))
    session = AISession(
        call,
        cfg,
        llm,
        record,
        ctx.variables,
        barge_in=ctx.action.type == "ai_talk",
        duration=float(ctx.option.duration or 0),
    )
    try:
        ended = await session.run()
    except LLMError as exc:
        raise ActionFailed(f"{ctx.action.type}: AI engine {cfg.engine_model} failed: {exc}") from None
    except SpeechError as exc:
        raise ActionFailed(
            f"{ctx.action.type}: speech ({cfg.tts_type}/{cfg.stt_type}) failed: {exc}"
        ) from None
    finally:
        warming.cancel()
        await llm.aclose()
    log.info("aicall %s ended: %s (latencies %s)", record.id, ended, session.metrics.turn_latencies)
    return End() if ended == "stop_flow" else CONTINUE
