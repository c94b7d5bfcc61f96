"""``connect``: dial other legs from a call, bridge the first to answer, continue when it hangs up.

The source defaults to the call's own number (its destination for incoming calls, its source for
outgoing ones). A ``tel`` leg needs balance like any call. If nobody answers, the flow continues with the
next action — or, with ``relay_reason``, the call is hung up with the failed leg's reason.
"""

from __future__ import annotations

from voipbin.billing.ledger import account_for, can_cover
from voipbin.flow.handlers.base import CONTINUE, ActionContext, ActionFailed, End, Outcome
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.flow.interfaces import CallConnect
from voipbin.models.action_options.dial import ConnectOption


@REGISTRY.handler("connect")
async def connect(ctx: ActionContext) -> Outcome:
    assert isinstance(ctx.option, ConnectOption)
    call = ctx.require_call()
    if not isinstance(call, CallConnect):
        raise ActionFailed("connect: this call cannot dial further legs")
    destinations = [d.to_api() for d in ctx.option.destinations]
    row = await ctx.deps.calls.get(call.call_id)
    if row is None:
        raise ActionFailed(f"connect: call {call.call_id} not found")
    tel = sum(1 for d in destinations if d["type"] == "tel")
    if tel:
        async with ctx.deps.db.session() as session:
            account = await account_for(session, ctx.customer_id)
        if not can_cover(account, ctx.deps.settings.call_rate_per_minute * tel):
            raise ActionFailed("connect: the balance cannot cover the new legs (INSUFFICIENT_BALANCE)")
    if ctx.option.source is not None and ctx.option.source.target:
        source = ctx.option.source.to_api()
    else:
        source = dict(row.destination if row.direction == "incoming" else row.source)
    answered, reason = await call.connect(source, destinations, ctx.option.anonymous)
    ctx.set_variable("voipbin.connect.answered", "true" if answered else "false")
    ctx.set_variable("voipbin.connect.hangup_reason", reason)
    if not answered and ctx.option.relay_reason:
        await call.hangup(reason or "failed")
        return End()
    return CONTINUE
