"""Billing accounts and the ledger.

``/v1.0/billing_account`` is VoIPBIN's self-service path; the seed tutorial uses
``/v1.0/billing-accounts``, so both answer. ``/v1.0/billing_accounts`` (plural, underscore) is the
admin view, with ``balance_add_force`` / ``balance_subtract_force``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.api.deps import AdminDep, DbDep, PageDep, Principal, PrincipalDep, parse_id
from voipbin.api.errors import ApiError
from voipbin.api.repo import change_owned, get_owned_api, list_page, touch
from voipbin.billing.ledger import account_for, apply
from voipbin.serialize import timestamps, uid
from voipbin.store.db import Database
from voipbin.store.tables import Billing, BillingAccount

router = APIRouter(prefix="/v1.0", tags=["billing"])
NOT_FOUND = "BILLING_ACCOUNT_NOT_FOUND"


def account_to_api(a: BillingAccount, *, admin: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": uid(a.id),
        "customer_id": uid(a.customer_id),
        "name": a.name,
        "detail": a.detail,
        "plan_type": a.plan_type,
        "plan_status": a.plan_status,
        "balance_credit": a.balance_credit,
        "balance_token": a.balance_token,
        "payment_type": a.payment_type,
        "payment_method": a.payment_method,
        **timestamps(a, "tm_last_topup"),
    }
    if admin:
        out["status"] = a.status
    return out


def admin_account_to_api(a: BillingAccount) -> dict[str, Any]:
    return account_to_api(a, admin=True)


def billing_to_api(b: Billing) -> dict[str, Any]:
    return {
        "id": uid(b.id),
        "customer_id": uid(b.customer_id),
        "account_id": uid(b.account_id),
        "transaction_type": b.transaction_type,
        "status": b.status,
        "reference_type": b.reference_type,
        "reference_id": uid(b.reference_id),
        "cost_type": b.cost_type,
        "usage_duration": b.usage_duration,
        "billable_units": b.billable_units,
        "rate_token_per_unit": b.rate_token_per_unit,
        "rate_credit_per_unit": b.rate_credit_per_unit,
        "amount_token": b.amount_token,
        "amount_credit": b.amount_credit,
        "balance_token_snapshot": b.balance_token_snapshot,
        "balance_credit_snapshot": b.balance_credit_snapshot,
        **timestamps(b, "tm_billing_start", "tm_billing_end"),
        **({"provider": b.provider} if b.provider else {}),  # ours: AI usage lines name their engine
    }


class AccountUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    detail: str | None = Field(default=None, max_length=10_000)


class BalanceChange(BaseModel):
    balance: int = Field(gt=0, le=10**15, description="Amount in micros (1 USD = 1,000,000).")


async def _own_account(db: Database, principal: Principal) -> dict[str, Any]:
    async with db.session() as session:
        try:
            return account_to_api(await account_for(session, principal.customer_id))
        except LookupError:
            raise ApiError(404, NOT_FOUND, "The billing account was not found.") from None


@router.get("/billing_account", summary="Your billing account")
async def get_billing_account(principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    return await _own_account(db, principal)


@router.get("/billing-accounts", summary="Your billing account (the tutorial's path)")
async def get_billing_account_dashed(principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    return await _own_account(db, principal)


@router.put("/billing_account", summary="Rename your billing account")
async def put_billing_account(body: AccountUpdate, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    async with db.session() as session:
        try:
            a = await account_for(session, principal.customer_id)
        except LookupError:
            raise ApiError(404, NOT_FOUND, "The billing account was not found.") from None
        if body.name is not None:
            a.name = body.name
        if body.detail is not None:
            a.detail = body.detail
        touch(a)
        await session.commit()
        return account_to_api(a)


@router.get("/billings", summary="Your ledger of charges and top-ups")
async def list_billings(principal: PrincipalDep, db: DbDep, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(
            session, Billing, page, customer_id=principal.customer_id, to_api=billing_to_api
        )


@router.get("/billings/{billing_id}", summary="One ledger line")
async def get_billing(billing_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    return await get_owned_api(
        db, Billing, parse_id(billing_id), principal.customer_id, "BILLING_NOT_FOUND", billing_to_api
    )


@router.get("/billing_accounts", summary="All billing accounts (platform admin)")
async def admin_list_accounts(_: AdminDep, db: DbDep, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(session, BillingAccount, page, to_api=admin_account_to_api)


@router.get("/billing_accounts/{account_id}", summary="A billing account (platform admin)")
async def admin_get_account(account_id: str, _: AdminDep, db: DbDep) -> dict[str, Any]:
    return await get_owned_api(
        db, BillingAccount, parse_id(account_id), None, NOT_FOUND, admin_account_to_api
    )


async def _force(db: Database, account_id: str, amount: int) -> dict[str, Any]:
    async def change(a: BillingAccount, session: AsyncSession) -> None:
        await apply(
            session,
            a,
            amount_credit=amount,
            transaction_type="adjustment",
            reference_type="credit_adjustment",
        )

    return await change_owned(
        db, BillingAccount, parse_id(account_id), None, NOT_FOUND, change, admin_account_to_api
    )


@router.post("/billing_accounts/{account_id}/balance_add_force", summary="Add credit (platform admin)")
async def balance_add_force(account_id: str, body: BalanceChange, _: AdminDep, db: DbDep) -> dict[str, Any]:
    return await _force(db, account_id, body.balance)


@router.post(
    "/billing_accounts/{account_id}/balance_subtract_force", summary="Remove credit (platform admin)"
)
async def balance_subtract_force(
    account_id: str, body: BalanceChange, _: AdminDep, db: DbDep
) -> dict[str, Any]:
    return await _force(db, account_id, -body.balance)
