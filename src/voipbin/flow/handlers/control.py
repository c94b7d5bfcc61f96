"""Flow-control actions: variable_set, goto, branch, condition_variable, condition_datetime, stop,
fetch_flow. None of them needs a call.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from voipbin.flow.handlers.base import CONTINUE, ActionContext, ActionFailed, End, Goto, Outcome, Push
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.models.action_options.control import (
    BranchOption,
    ConditionDatetimeOption,
    ConditionVariableOption,
    FetchFlowOption,
    GotoOption,
    VariableSetOption,
)
from voipbin.models.actions import Action
from voipbin.store.tables import Flow

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _target(value: uuid.UUID | str | None, what: str) -> uuid.UUID | None:
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return value
    # A placeholder that substituted to something that is not an action id.
    raise ActionFailed(f"{what} {value!r} is not an action id")


def _jump_or_next(value: uuid.UUID | str | None, what: str) -> Outcome:
    target = _target(value, what)
    return CONTINUE if target is None else Goto(target)


@REGISTRY.handler("variable_set", needs_call=False)
async def variable_set(ctx: ActionContext) -> Outcome:
    assert isinstance(ctx.option, VariableSetOption)
    ctx.set_variable(ctx.option.key.strip(), ctx.option.value)
    return CONTINUE


@REGISTRY.handler("goto", needs_call=False)
async def goto(ctx: ActionContext) -> Outcome:
    """Jump to ``target_id`` at most ``loop_count`` times; after that, fall through to the next action."""
    assert isinstance(ctx.option, GotoOption)
    target = _target(ctx.option.target_id, "goto target_id")
    key = str(ctx.action.id)
    done = ctx.loop_counts.get(key, 0)
    if target is None or done >= int(ctx.option.loop_count):
        return CONTINUE
    ctx.loop_counts[key] = done + 1
    return Goto(target)


@REGISTRY.handler("branch", needs_call=False)
async def branch(ctx: ActionContext) -> Outcome:
    """Jump to ``target_ids[value of variable]``, else ``default_target_id``, else the next action."""
    assert isinstance(ctx.option, BranchOption)
    value = ctx.variables.get(ctx.option.variable or "voipbin.call.digits", "")
    if value in ctx.option.target_ids:
        return _jump_or_next(ctx.option.target_ids[value], f"branch target for {value!r}")
    return _jump_or_next(ctx.option.default_target_id, "branch default_target_id")


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@REGISTRY.handler("condition_variable", needs_call=False)
async def condition_variable(ctx: ActionContext) -> Outcome:
    """True → next action; false → ``false_target_id``. A non-numeric value compared as a number is false."""
    opt = ctx.option
    assert isinstance(opt, ConditionVariableOption)
    compare = COMPARE[opt.condition]
    value = ctx.variables.get(opt.variable, "")
    if opt.value_type == "number":
        number = _as_number(value)
        expected = _as_number(str(opt.value_number))
        ok = number is not None and expected is not None and compare(number, expected)
    elif opt.value_type == "length":
        ok = compare(len(value), int(opt.value_length))
    else:
        ok = compare(value, opt.value_string)
    return CONTINUE if ok else _jump_or_next(opt.false_target_id, "false_target_id")


def now_utc() -> datetime:
    return datetime.now(UTC)


@REGISTRY.handler("condition_datetime", needs_call=False)
async def condition_datetime(ctx: ActionContext) -> Outcome:
    """Each set field (minute, hour, day, month; -1/0 = any) is compared with the current UTC time using
    ``condition``; ``weekdays`` (0 = Sunday) must contain today if given. All must hold."""
    opt = ctx.option
    assert isinstance(opt, ConditionDatetimeOption)
    compare = COMPARE[opt.condition]
    now = now_utc()
    checks: list[bool] = []
    for current, wanted, unset in (
        (now.minute, opt.minute, -1),
        (now.hour, opt.hour, -1),
        (now.day, opt.day, -1),
        (now.month, opt.month, 0),
    ):
        if int(wanted) != unset:
            checks.append(compare(current, int(wanted)))
    if opt.weekdays:
        checks.append((now.isoweekday() % 7) in {int(d) for d in opt.weekdays})
    ok = all(checks)
    return CONTINUE if ok else _jump_or_next(opt.false_target_id, "false_target_id")


@REGISTRY.handler("stop", needs_call=False)
async def stop(ctx: ActionContext) -> Outcome:
    return End()


@REGISTRY.handler("fetch_flow", needs_call=False)
async def fetch_flow(ctx: ActionContext) -> Outcome:
    """Run another flow of the same customer here, then continue after this action."""
    assert isinstance(ctx.option, FetchFlowOption)
    flow_id = _target(ctx.option.flow_id, "fetch_flow flow_id")
    async with ctx.deps.db.session() as session:
        flow = await session.get(Flow, flow_id) if flow_id is not None else None
    if flow is None or flow.customer_id != ctx.customer_id or flow.tm_delete is not None:
        raise ActionFailed(f"fetch_flow: flow {flow_id} not found")
    return Push([Action.model_validate(a) for a in flow.actions or []])
