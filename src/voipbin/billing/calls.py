"""Charging calls when they end: PSTN (``tel``) legs pay per started minute once answered."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.billing.ledger import account_for, apply, billable_minutes
from voipbin.store.tables import Call


def cost_type(call: Call) -> str | None:
    """VoIPBIN's cost type for a call, or None when it is free (extension and SIP calls)."""
    if call.direction == "outgoing" and (call.destination or {}).get("type") == "tel":
        return "call_pstn_outgoing"
    if call.direction == "incoming" and (call.source or {}).get("type") == "tel":
        return "call_pstn_incoming"
    return None


async def charge_call(session: AsyncSession, call: Call, rate_per_minute: int) -> None:
    """Ledger line + balance change for an answered PSTN call; the caller commits with the hangup."""
    kind = cost_type(call)
    if kind is None or call.tm_progressing is None or call.tm_hangup is None:
        return
    seconds = max(0.0, (call.tm_hangup - call.tm_progressing).total_seconds())
    units = billable_minutes(seconds)
    if units == 0:
        return
    try:
        account = await account_for(session, call.customer_id, lock=True)
    except LookupError:
        return
    await apply(
        session,
        account,
        amount_credit=-units * rate_per_minute,
        transaction_type="usage",
        reference_type="call",
        reference_id=call.id,
        cost_type=kind,
        usage_duration=int(seconds),
        billable_units=units,
        rate_credit_per_unit=rate_per_minute,
    )
