"""``/v1.0/accesskeys``: API keys ``vb_`` + 32 characters, stored as SHA-256, shown once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from voipbin.api.deps import PageDep, PlatformDep, PrincipalDep, parse_id
from voipbin.api.repo import get_owned, list_page, soft_delete, touch
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
async def create_accesskey(
    body: AccesskeyCreate, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
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
    async with platform.db.session() as session:
        session.add(key)
        await session.commit()
    return {**accesskey_to_api(key), "token": token}


@router.get("/accesskeys", summary="List access keys")
async def list_accesskeys(principal: PrincipalDep, platform: PlatformDep, page: PageDep) -> dict[str, Any]:
    async with platform.db.session() as session:
        return await list_page(
            session, Accesskey, page, customer_id=principal.customer_id, to_api=accesskey_to_api
        )


@router.get("/accesskeys/{accesskey_id}", summary="Get an access key")
async def get_accesskey(accesskey_id: str, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    async with platform.db.session() as session:
        k = await get_owned(session, Accesskey, parse_id(accesskey_id), principal.customer_id, NOT_FOUND)
        return accesskey_to_api(k)


@router.put("/accesskeys/{accesskey_id}", summary="Rename an access key")
async def put_accesskey(
    accesskey_id: str, body: AccesskeyUpdate, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
    async with platform.db.session() as session:
        k = await get_owned(session, Accesskey, parse_id(accesskey_id), principal.customer_id, NOT_FOUND)
        if body.name is not None:
            k.name = body.name
        if body.detail is not None:
            k.detail = body.detail
        touch(k)
        await session.commit()
        return accesskey_to_api(k)


@router.delete("/accesskeys/{accesskey_id}", summary="Revoke an access key")
async def delete_accesskey(
    accesskey_id: str, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
    async with platform.db.session() as session:
        k = await get_owned(session, Accesskey, parse_id(accesskey_id), principal.customer_id, NOT_FOUND)
        soft_delete(k)
        await session.commit()
        return accesskey_to_api(k)
