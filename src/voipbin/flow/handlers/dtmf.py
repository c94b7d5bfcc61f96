"""DTMF actions: digits_receive (sets ``voipbin.call.digits``) and digits_send."""

from __future__ import annotations

from voipbin.flow.handlers.base import CONTINUE, ActionContext, Outcome
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.models.action_options.media import DigitsReceiveOption, DigitsSendOption

DEFAULT_RECEIVE_MS = 5000  # VoIPBIN requires a duration; 0 would mean "do not wait at all"
DEFAULT_TONE_MS = 250
DEFAULT_INTERVAL_MS = 100


@REGISTRY.handler("digits_receive")
async def digits_receive(ctx: ActionContext) -> Outcome:
    """Collect digits until ``length`` digits, the ``key`` terminator (not stored) or ``duration`` ms."""
    assert isinstance(ctx.option, DigitsReceiveOption)
    call = ctx.require_call()
    duration = int(ctx.option.duration) or DEFAULT_RECEIVE_MS
    digits = await call.receive_digits(int(ctx.option.length), ctx.option.key, duration / 1000)
    ctx.set_variable("voipbin.call.digits", digits)
    return CONTINUE


@REGISTRY.handler("digits_send")
async def digits_send(ctx: ActionContext) -> Outcome:
    assert isinstance(ctx.option, DigitsSendOption)
    call = ctx.require_call()
    await call.send_dtmf(
        ctx.option.digits,
        int(ctx.option.duration) or DEFAULT_TONE_MS,
        int(ctx.option.interval) or DEFAULT_INTERVAL_MS,
    )
    return CONTINUE
