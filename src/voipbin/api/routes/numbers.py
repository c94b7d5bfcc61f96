"""``/v1.0/numbers`` and ``/v1.0/available_numbers``: the inventory comes from configuration; buying a
number charges the account and writes a ledger line in the same transaction."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.api.deps import DbDep, PageDep, Principal, PrincipalDep, SettingsDep, parse_id
from voipbin.api.errors import ApiError
from voipbin.api.repo import change_owned, get_owned_api, list_page
from voipbin.api.routes.flows import checked_flow_ref
from voipbin.billing.ledger import account_for, apply
from voipbin.config import Settings
from voipbin.models.address import TEL_RE
from voipbin.serialize import timestamps, uid
from voipbin.store.db import Database
from voipbin.store.tables import Number
from voipbin.store.types import utcnow

router = APIRouter(prefix="/v1.0", tags=["numbers"])
NOT_FOUND = "NUMBER_NOT_FOUND"


def number_to_api(n: Number) -> dict[str, Any]:
    return {
        "id": uid(n.id),
        "customer_id": uid(n.customer_id),
        "number": n.number,
        "type": n.type,
        "call_flow_id": uid(n.call_flow_id),
        "message_flow_id": uid(n.message_flow_id),
        "name": n.name,
        "detail": n.detail,
        "status": n.status,
        "t38_enabled": n.t38_enabled,
        "emergency_enabled": n.emergency_enabled,
        "metadata": {"rtp_debug": bool((n.metadata_ or {}).get("rtp_debug", False))},
        **timestamps(n, "tm_purchase", "tm_renew"),
    }


def inventory(settings: Settings) -> list[str]:
    return [n.strip() for n in settings.number_inventory.split(",") if n.strip()]


async def taken_numbers(session: AsyncSession) -> set[str]:
    rows = await session.execute(select(Number.number).where(Number.tm_delete.is_(None)))
    return set(rows.scalars().all())


class NumberCreate(BaseModel):
    number: str
    type: Literal["normal", "virtual"] = "normal"
    call_flow_id: uuid.UUID | None = None
    message_flow_id: uuid.UUID | None = None
    name: str = Field(default="", max_length=255)
    detail: str = Field(default="", max_length=10_000)

    @field_validator("number")
    @classmethod
    def _e164(cls, v: str) -> str:
        if not TEL_RE.match(v):
            raise ValueError("number must be E.164, e.g. +15551234567")
        return v


class NumberUpdate(BaseModel):
    call_flow_id: uuid.UUID | None = None
    message_flow_id: uuid.UUID | None = None
    name: str | None = Field(default=None, max_length=255)
    detail: str | None = Field(default=None, max_length=10_000)


class NumberFlowIds(BaseModel):
    call_flow_id: uuid.UUID | None = None
    message_flow_id: uuid.UUID | None = None


@router.get("/available_numbers", summary="Numbers that can be bought")
async def available_numbers(
    principal: PrincipalDep,
    db: DbDep,
    settings: SettingsDep,
    country_code: Annotated[str, Query(max_length=2)] = "US",
    type: Annotated[Literal["normal", "virtual"], Query()] = "normal",
    page_size: Annotated[int | None, Query()] = None,
) -> dict[str, Any]:
    size = page_size if page_size is not None and 0 < page_size <= 100 else 10
    async with db.session() as session:
        taken = await taken_numbers(session)
    country = country_code.upper()
    result = [
        {"number": n, "country": "US", "region": "", "postal_code": "", "features": ["voice", "sms"]}
        for n in inventory(settings)
        if n not in taken and (country == "US" and n.startswith("+1"))
    ]
    return {"result": result[:size]}


@router.post("/numbers", summary="Buy a number from the inventory")
async def create_number(
    body: NumberCreate, principal: PrincipalDep, db: DbDep, settings: SettingsDep
) -> dict[str, Any]:
    if body.number not in inventory(settings):
        raise ApiError(
            400,
            "INVALID_ARGUMENT",
            f"{body.number} is not in this installation's number inventory.",
            details=[{"field": "number"}],
        )
    price = settings.number_price
    async with db.session() as session:
        if body.number in await taken_numbers(session):
            raise ApiError(409, "ALREADY_EXISTS", f"{body.number} is already in use.")
        account = await account_for(session, principal.customer_id, lock=True)
        if account.plan_type != "unlimited" and account.balance_credit < price:  # numbers are credit only
            raise ApiError(402, "INSUFFICIENT_BALANCE", "The balance cannot cover the number's price.")
        n = Number(
            customer_id=principal.customer_id,
            number=body.number,
            type=body.type,
            call_flow_id=await checked_flow_ref(session, body.call_flow_id, principal.customer_id),
            message_flow_id=await checked_flow_ref(session, body.message_flow_id, principal.customer_id),
            name=body.name,
            detail=body.detail,
            tm_purchase=utcnow(),
        )
        session.add(n)
        await session.flush()
        await apply(
            session,
            account,
            amount_credit=-price,
            transaction_type="usage",
            reference_type="number",
            reference_id=n.id,
            cost_type="number",
            billable_units=1,
            rate_credit_per_unit=price,
        )
        await session.commit()
        return number_to_api(n)


@router.get("/numbers", summary="List your numbers")
async def list_numbers(principal: PrincipalDep, db: DbDep, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(session, Number, page, customer_id=principal.customer_id, to_api=number_to_api)


@router.get("/numbers/{number_id}", summary="Get a number")
async def get_number(number_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    return await get_owned_api(
        db, Number, parse_id(number_id), principal.customer_id, NOT_FOUND, number_to_api
    )


async def _update(db: Database, principal: Principal, number_id: str, data: BaseModel) -> dict[str, Any]:
    async def change(n: Number, session: AsyncSession) -> None:
        sent = data.model_fields_set
        for field in ("call_flow_id", "message_flow_id"):
            if field in sent:
                setattr(
                    n, field, await checked_flow_ref(session, getattr(data, field), principal.customer_id)
                )
        for field in ("name", "detail"):
            if field in sent and getattr(data, field, None) is not None:
                setattr(n, field, getattr(data, field))

    return await change_owned(
        db, Number, parse_id(number_id), principal.customer_id, NOT_FOUND, change, number_to_api
    )


@router.put("/numbers/{number_id}", summary="Update a number")
async def put_number(
    number_id: str, body: NumberUpdate, principal: PrincipalDep, db: DbDep
) -> dict[str, Any]:
    return await _update(db, principal, number_id, body)


@router.put("/numbers/{number_id}/flow_ids", summary="Set a number's call and message flows")
async def put_number_flow_ids(
    number_id: str, body: NumberFlowIds, principal: PrincipalDep, db: DbDep
) -> dict[str, Any]:
    return await _update(db, principal, number_id, body)


@router.delete("/numbers/{number_id}", summary="Release a number")
async def delete_number(number_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    def change(n: Number, _: AsyncSession) -> None:
        n.status = "deleted"

    return await change_owned(
        db, Number, parse_id(number_id), principal.customer_id, NOT_FOUND, change, number_to_api, delete=True
    )
