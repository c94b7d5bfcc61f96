"""AI voice conversation actions: ``ai`` (request/response) and ``ai_talk`` (streaming, barge-in).

The handler resolves the AI configuration (a referenced AI and/or the seed's inline options), fails
the action at once if it cannot run (unknown AI, bad engine model, missing provider key: the call is
hung up ``failed`` with the reason in ``metadata.flow_error``), creates the aicall, sets
``voipbin.aicall.*`` and blocks while :class:`voipbin.ai.session.AISession` converses.

How it ends decides what the flow does next: ``stop_service``, ``POST /aicalls/{id}/terminate``,
``duration``, a provider failure (after retries, the fallback engine and a spoken apology) and an
exhausted balance (after a spoken notice) continue with the next action; ``connect_call`` pushes a
``connect`` action to the destination the model chose (the flow continues after the bridge);
``stop_flow`` ends the flow; a hangup ends it quietly. The aicall's usage is charged when it ends.

The handler lives with the AI package (it drives AI sessions) and is registered into the flow engine's
registry by the composition root with :func:`register_ai_actions`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from voipbin import logcontext
from voipbin.ai.calls import AICallRecord
from voipbin.ai.llm.base import LLM
from voipbin.ai.registry import create_llm
from voipbin.ai.session import AIConfigError, AIDeps, AISession, SessionConfig, resolve_config
from voipbin.ai.session.tools import ToolContext, refused_tools
from voipbin.ai.session.warmup import warm_up
from voipbin.billing.ai import AIRates, balance_covers, charge_aicall, cost_lines, is_charged, total
from voipbin.events.bus import EventBus
from voipbin.flow.handlers.base import (
    CONTINUE,
    ActionContext,
    ActionFailed,
    End,
    HandlerRegistry,
    Outcome,
    Push,
)
from voipbin.flow.interfaces import CallAudio, CallHungUp
from voipbin.models.action_options.ai import AIOption
from voipbin.models.actions import Action
from voipbin.speech.errors import SpeechError

log = logging.getLogger(__name__)


def register_ai_actions(registry: HandlerRegistry, deps: AIDeps, events: EventBus) -> AIConversations:
    service = AIConversations(deps, events)
    for type_ in ("ai", "ai_talk"):
        registry.register(type_, service.handler, needs_call=True)
    return service


class AIConversations:
    """Starts AI conversations: from a flow (``ai``/``ai_talk``) or from ``POST /v1.0/aicalls``."""

    def __init__(self, deps: AIDeps, events: EventBus) -> None:
        self.deps = deps
        self.events = events
        self._tasks: set[asyncio.Task[Any]] = set()

    async def handler(self, ctx: ActionContext) -> Outcome:
        return await ai_conversation(ctx, self.deps, self.events)

    async def check(self, customer_id: uuid.UUID, option: AIOption) -> SessionConfig:
        """The configuration an API-started conversation would run with; raises AIConfigError."""
        cfg = await resolve_config(self.deps, customer_id, option, {}, {})
        try:
            create_llm(cfg.engine_model, cfg.engine_key, models=self.deps.models)
        except ValueError as exc:
            raise AIConfigError(str(exc)) from None
        return cfg

    def charged(self, cfg: SessionConfig) -> bool:
        """Whether a conversation with ``cfg`` costs credit: cloud engines, or local ones when
        ``VOIPBIN_AI_CHARGE_LOCAL`` is set."""
        engines = (cfg.engine_model, cfg.tts_type, cfg.stt_type)
        charge_local = self.deps.settings.ai_charge_local
        return any(is_charged(e, charge_local=charge_local) for e in engines)

    async def start_on_call(
        self, customer_id: uuid.UUID, call: CallAudio, call_id: uuid.UUID, option: AIOption,
        activeflow_id: uuid.UUID, variables: dict[str, str],
    ) -> AICallRecord:  # fmt: skip
        """``POST /aicalls`` on a live call: converse in the background (the call's flow is not
        blocked); returns the aicall once it exists."""
        started: asyncio.Future[AICallRecord] = asyncio.get_running_loop().create_future()

        async def run() -> None:
            try:
                await converse(
                    self.deps, customer_id, call, call_id, option, {}, variables, activeflow_id,
                    barge_in=True, started=started,
                )  # fmt: skip
            except CallHungUp:
                pass
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
                else:
                    log.exception("aicall on call %s failed", call_id)

        task = asyncio.get_running_loop().create_task(run(), name=f"aicall-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await started

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def fallback_llms(deps: AIDeps, cfg: SessionConfig, record: AICallRecord) -> list[LLM]:
    """The configured fallback engine (``VOIPBIN_FALLBACK_ENGINE_MODEL``) if it can run here."""
    model = deps.settings.fallback_engine_model
    if not model or model == cfg.engine_model:
        return []
    try:
        return [create_llm(model, None, timeout=deps.settings.ai_llm_timeout, models=deps.models)]
    except ValueError as exc:
        record.note("warning", f"fallback engine {model} cannot run: {exc}")
        return []


def connect_allowed(cfg: SessionConfig) -> tuple[str, ...]:
    """``parameter.connect_call_destinations`` of the AI: the only targets connect_call may dial."""
    value = cfg.parameter.get("connect_call_destinations") if cfg.parameter else None
    if isinstance(value, list):
        return tuple(str(v.get("target", "")) if isinstance(v, dict) else str(v) for v in value)
    return ()


async def ai_conversation(ctx: ActionContext, deps: AIDeps, events: EventBus) -> Outcome:
    assert isinstance(ctx.option, AIOption)
    call = ctx.require_call()
    if not isinstance(call, CallAudio):
        raise ActionFailed(
            f"action {ctx.action.type!r} needs the call's audio, which this call does not offer"
        )
    try:
        ended, connect = await converse(
            deps, ctx.customer_id, call, call.call_id, ctx.option, ctx.action.option, ctx.variables,
            ctx.activeflow_id, barge_in=ctx.action.type == "ai_talk",
        )  # fmt: skip
    except AIConfigError as exc:
        raise ActionFailed(f"{ctx.action.type}: {exc}") from None
    if ended == "stop_flow":
        return End()
    if ended == "connect_call" and connect is not None:
        option: dict[str, Any] = {"destinations": connect["destinations"]}
        if connect.get("source"):
            option["source"] = connect["source"]
        return Push([Action(type="connect", option=option)])
    return CONTINUE


async def converse(
    deps: AIDeps,
    customer_id: uuid.UUID,
    call: CallAudio,
    call_id: uuid.UUID,
    option: AIOption,
    raw_option: dict[str, Any],
    variables: dict[str, str],
    activeflow_id: uuid.UUID,
    *,
    barge_in: bool,
    started: asyncio.Future[AICallRecord] | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """One AI conversation on ``call``; returns why it ended and, for connect_call, where to."""
    settings = deps.settings
    try:
        cfg = await resolve_config(deps, customer_id, option, variables, raw_option)
        llm = create_llm(
            cfg.engine_model, cfg.engine_key, timeout=settings.ai_llm_timeout, models=deps.models
        )
    except ValueError as exc:  # registry errors not caught by resolve_config
        raise AIConfigError(str(exc)) from None
    aicalls = deps.aicalls
    if aicalls is None:
        raise AIConfigError("AI calls are not available on this node")
    record = aicalls.new(
        customer_id,
        activeflow_id=activeflow_id,
        reference_type="call",
        reference_id=call_id,
        assistance_type=cfg.assistance_type,
        assistance_id=cfg.ai_id,
        engine_model=cfg.engine_model,
        tts_type=cfg.tts_type,
        tts_voice_id=cfg.tts_voice_id,
        stt_type=cfg.stt_type,
        stt_language=cfg.stt_language,
        vad_config={
            "confidence": cfg.vad.confidence,
            "start_secs": cfg.vad.start_secs,
            "stop_secs": cfg.vad.stop_secs,
            "min_volume": cfg.vad.min_volume,
        },
        parameter=dict(cfg.parameter),
    )
    if started is not None:
        started.set_result(record)
    for name, why in refused_tools(cfg.tool_names).items():
        record.note("warning", f"tool {name} not offered: {why}")
    variables.update(
        {
            "voipbin.aicall.id": str(record.id),
            "voipbin.aicall.ai_id": str(cfg.ai_id) if cfg.ai_id else "",
            "voipbin.aicall.ai_engine_model": cfg.engine_model,
            "voipbin.aicall.stt_language": cfg.stt_language,
            "voipbin.aicall.reference_type": "call",
            "voipbin.aicall.reference_id": str(call_id),
            "voipbin.aicall.activeflow_id": str(activeflow_id),
        }
    )
    rates = AIRates.from_settings(settings)

    async def credit_left() -> bool:
        cost = total(cost_lines(record.metadata.get("usage_by_engine", {}), rates))
        if cost == 0:
            return True
        async with deps.db.session() as session:
            return await balance_covers(session, customer_id, cost)

    async def messages(owner_id: uuid.UUID, aicall_id: uuid.UUID) -> list[dict[str, Any]] | None:
        row = await aicalls.get(aicall_id)
        if row is None or row.customer_id != owner_id or row.tm_delete is not None:
            return None
        return [{"role": m.role, "content": m.content} for m in await aicalls.messages(aicall_id)]

    tool_ctx = ToolContext(
        customer_id,
        record.id,
        activeflow_id,
        call_id,
        variables,
        call.flush_playout,
        messages=messages,
        get_resource=deps.get_resource,
        create_call=deps.create_call,
        describe_action=describe_action,
        connect_allowed=connect_allowed(cfg),
    )
    warming = asyncio.ensure_future(warm_up(cfg))
    llms = [llm, *fallback_llms(deps, cfg, record)]
    session = AISession(
        call,
        cfg,
        llms,
        record,
        variables,
        barge_in=barge_in,
        duration=float(option.duration or 0),
        tools=tool_ctx,
        budget=settings.ai_turn_budget,
        fallback_tts_type=settings.fallback_tts_type,
        fallback_stt_type=settings.fallback_stt_type,
        apology=settings.ai_apology,
        balance_notice=settings.ai_balance_notice,
        credit_left=credit_left,
    )
    ended = "hangup"
    # Log lines of the session (and the tasks it starts) carry its aicall_id; reset when it ends.
    log_id = logcontext.aicall_id.set(str(record.id))
    try:
        ended = await session.run()
    except CallHungUp:
        raise
    except SpeechError as exc:  # speech could not be set up (STT) even with the fallback
        record.note("error", f"speech ({cfg.tts_type}/{cfg.stt_type}) failed: {exc}")
        ended = "error"
    finally:
        logcontext.aicall_id.reset(log_id)
        warming.cancel()
        for engine in llms:
            await engine.aclose()
        await _charge(deps, record, rates)
    log.info("aicall %s ended: %s (latencies %s)", record.id, ended, session.metrics.turn_latencies)
    return ended, session.connect


async def _charge(deps: AIDeps, record: AICallRecord, rates: AIRates) -> None:
    usage = record.metadata.get("usage_by_engine", {})
    if not cost_lines(usage, rates):
        return
    try:
        async with deps.db.session() as session:
            lines = await charge_aicall(session, record.customer_id, record.id, usage, rates)
            await session.commit()
        record.metadata["cost_credit"] = sum(-line.amount_credit for line in lines)
        record.owner.save(record)
    except Exception:
        log.exception("aicall %s: charging its usage failed", record.id)


def describe_action(action_type: str) -> dict[str, Any] | None:
    """The JSON schema of an action type's options (the ``describe_action`` tool)."""
    from voipbin.models.action_options.registry import OPTION_MODELS

    model = OPTION_MODELS.get(action_type)
    if model is None:
        return None
    return {"action_type": action_type, "option_schema": model.model_json_schema()}
