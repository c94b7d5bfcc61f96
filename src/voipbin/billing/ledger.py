"""Balance changes always go through here so every change has a ledger line with a snapshot."""

from __future__ import annotations

import math
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.store.tables import ZERO_UUID, Billing, BillingAccount
from voipbin.store.types import utcnow


class InsufficientBalance(Exception):
    pass


async def open_account(session: AsyncSession, customer_id: uuid.UUID, initial_credit: int) -> BillingAccount:
    account = BillingAccount(
        customer_id=customer_id, name="default", balance_credit=0, payment_type="prepaid"
    )
    session.add(account)
    await session.flush()
    if initial_credit:
        await apply(
            session,
            account,
            amount_credit=initial_credit,
            transaction_type="top_up",
            reference_type="credit_free_tier",
        )
    return account


async def account_for(session: AsyncSession, customer_id: uuid.UUID, *, lock: bool = False) -> BillingAccount:
    q = select(BillingAccount).where(
        BillingAccount.customer_id == customer_id, BillingAccount.tm_delete.is_(None)
    )
    if lock:
        q = q.with_for_update()
    account = (await session.execute(q.limit(1))).scalar_one_or_none()
    if account is None:
        raise LookupError(f"customer {customer_id} has no billing account")
    return account


async def apply(
    session: AsyncSession,
    account: BillingAccount,
    *,
    amount_credit: int,
    transaction_type: str,
    reference_type: str,
    reference_id: uuid.UUID = ZERO_UUID,
    cost_type: str = "",
    usage_duration: int = 0,
    billable_units: int = 0,
    rate_credit_per_unit: int = 0,
    provider: str = "",
    idempotency_key: str = "",
) -> Billing:
    """Add (positive) or charge (negative) credit and record it; the caller commits."""
    account.balance_credit += amount_credit
    if amount_credit > 0:
        account.tm_last_topup = utcnow()
    account.tm_update = utcnow()
    now = utcnow()
    line = Billing(
        customer_id=account.customer_id,
        account_id=account.id,
        transaction_type=transaction_type,
        status="end",
        reference_type=reference_type,
        reference_id=reference_id,
        cost_type=cost_type,
        usage_duration=usage_duration,
        billable_units=billable_units,
        rate_credit_per_unit=rate_credit_per_unit,
        amount_credit=amount_credit,
        amount_token=0,
        balance_credit_snapshot=account.balance_credit,
        balance_token_snapshot=account.balance_token,
        provider=provider,
        idempotency_key=idempotency_key,
        tm_billing_start=now,
        tm_billing_end=now,
    )
    session.add(line)
    return line


def can_cover(account: BillingAccount, amount: int) -> bool:
    return account.plan_type == "unlimited" or account.balance_token > 0 or account.balance_credit >= amount


def billable_minutes(duration_seconds: float) -> int:
    return max(0, math.ceil(duration_seconds / 60))
