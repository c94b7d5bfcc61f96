"""``/v1.0/accesskeys``: API keys ``vb_`` + 32 characters, stored as SHA-256, shown once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.api.deps import DbDep, PageDep, PrincipalDep, parse_id
from voipbin.api.repo import change_owned, get_owned_api, list_page
from voipbin.security import hash_token, new_accesskey
from voipbin.serialize import timestamps, uid
from voipbin.store.tables import Accesskey
from voipbin.store.types import utcnow

router = APIRouter(prefix="/v1.0", tags=["accesskeys"])
NOT_FOUND = "ACCESSKEY_NOT_FOUND"


def accesskey_to_api(k: Accesskey) -> dict[str, Any]:
    out: dict[str, Any] = {"id": uid(k.id), "customer_id": uid(k.customer_id), "token_prefix": k.token_prefix}
    if k.name:
        out["name"] = k.name
    if k.detail:
        out["detail"] = k.detail
    return {**out, **timestamps(k, "tm_expire")}


class AccesskeyCreate(BaseModel):
    name: str = Field(default="", max_length=255)
    detail: str = Field(default="", max_length=10_000)
    expire: int | None = Field(
        default=None,
        ge=86_400,
        le=100 * 365 * 86_400,
        description="Lifetime in seconds (>= 1 day); omit: never.",
    )


class AccesskeyUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    detail: str | None = Field(default=None, max_length=10_000)


@router.post("/accesskeys", summary="Create an access key (the token is shown only here)")
async def create_accesskey(body: AccesskeyCreate, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    token = new_accesskey()
    key = Accesskey(
        customer_id=principal.customer_id,
        name=body.name,
        detail=body.detail,
        token_hash=hash_token(token),
        token_prefix=token[:11],
        permission=principal.permission,
        tm_expire=utcnow() + timedelta(seconds=body.expire) if body.expire else None,
    )
    async with db.session() as session:
        session.add(key)
        await session.commit()
    return {**accesskey_to_api(key), "token": token}


@router.get("/accesskeys", summary="List access keys")
async def list_accesskeys(principal: PrincipalDep, db: DbDep, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(
            session, Accesskey, page, customer_id=principal.customer_id, to_api=accesskey_to_api
        )


@router.get("/accesskeys/{accesskey_id}", summary="Get an access key")
async def get_accesskey(accesskey_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    return await get_owned_api(
        db, Accesskey, parse_id(accesskey_id), principal.customer_id, NOT_FOUND, accesskey_to_api
    )


@router.put("/accesskeys/{accesskey_id}", summary="Rename an access key")
async def put_accesskey(
    accesskey_id: str, body: AccesskeyUpdate, principal: PrincipalDep, db: DbDep
) -> dict[str, Any]:
    def change(k: Accesskey, _: AsyncSession) -> None:
        if body.name is not None:
            k.name = body.name
        if body.detail is not None:
            k.detail = body.detail

    return await change_owned(
        db, Accesskey, parse_id(accesskey_id), principal.customer_id, NOT_FOUND, change, accesskey_to_api
    )


@router.delete("/accesskeys/{accesskey_id}", summary="Revoke an access key")
async def delete_accesskey(accesskey_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    return await change_owned(
        db,
        Accesskey,
        parse_id(accesskey_id),
        principal.customer_id,
        NOT_FOUND,
        None,
        accesskey_to_api,
        delete=True,
    )
