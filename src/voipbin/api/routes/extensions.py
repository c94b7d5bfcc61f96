"""``/v1.0/extensions``: SIP logins for softphones at the customer's SIP domain.

The password is needed in clear for digest authentication, so it is encrypted (not hashed) at rest;
responses show it masked.
"""

from __future__ import annotations

import re
import secrets
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import AfterValidator, BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.api.deps import DbDep, EncryptorDep, PageDep, PrincipalDep, SettingsDep, parse_id
from voipbin.api.errors import ApiError
from voipbin.api.repo import ToApi, change_owned, get_owned_api, list_page
from voipbin.calls.routing import customer_domain
from voipbin.security import Encryptor, mask
from voipbin.serialize import timestamps, uid
from voipbin.store.tables import Extension

router = APIRouter(prefix="/v1.0", tags=["extensions"])
NOT_FOUND = "EXTENSION_NOT_FOUND"
EXTENSION_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def extension_to_api(encryptor: Encryptor, sip_domain: str, e: Extension) -> dict[str, Any]:
    return {
        "id": uid(e.id),
        "customer_id": uid(e.customer_id),
        "name": e.name,
        "detail": e.detail,
        "extension": e.extension,
        "domain_name": customer_domain(sip_domain, e.customer_id),
        "username": e.extension,
        "password": mask(encryptor.decrypt(e.password_enc)),
        "direct_hash": e.direct_hash,
        **timestamps(e),
    }


def extension_serializer(encryptor: EncryptorDep, settings: SettingsDep) -> ToApi[Extension]:
    """``extension_to_api`` bound to this node's encryptor and SIP domain (a request dependency)."""
    return partial(extension_to_api, encryptor, settings.sip_domain)


ExtensionToApi = Annotated[ToApi[Extension], Depends(extension_serializer)]


def _check_password(v: str) -> str:
    if not (8 <= len(v) <= 128):
        raise ValueError("password must be 8 to 128 characters")
    return v


Password = Annotated[str, AfterValidator(_check_password)]


class ExtensionCreate(BaseModel):
    extension: str
    password: Password
    name: str = Field(default="", max_length=255)
    detail: str = Field(default="", max_length=10_000)

    @field_validator("extension")
    @classmethod
    def _ext(cls, v: str) -> str:
        if not EXTENSION_RE.match(v):
            raise ValueError("extension must be 1-64 letters, digits, '_', '.', '-'")
        return v


class ExtensionUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    detail: str | None = Field(default=None, max_length=10_000)
    password: Password | None = None


@router.post("/extensions", summary="Create a SIP extension")
async def create_extension(
    body: ExtensionCreate, principal: PrincipalDep, db: DbDep, encryptor: EncryptorDep, to_api: ExtensionToApi
) -> dict[str, Any]:
    async with db.session() as session:
        exists = (
            await session.execute(
                select(Extension.id).where(
                    Extension.customer_id == principal.customer_id,
                    Extension.extension == body.extension,
                    Extension.tm_delete.is_(None),
                )
            )
        ).first()
        if exists:
            raise ApiError(409, "ALREADY_EXISTS", f"Extension {body.extension} already exists.")
        e = Extension(
            customer_id=principal.customer_id,
            extension=body.extension,
            password_enc=encryptor.encrypt(body.password),
            name=body.name,
            detail=body.detail,
            direct_hash=secrets.token_hex(12),
        )
        session.add(e)
        await session.commit()
        return to_api(e)


@router.get("/extensions", summary="List extensions")
async def list_extensions(
    principal: PrincipalDep, db: DbDep, to_api: ExtensionToApi, page: PageDep
) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(session, Extension, page, customer_id=principal.customer_id, to_api=to_api)


@router.get("/extensions/{extension_id}", summary="Get an extension")
async def get_extension(
    extension_id: str, principal: PrincipalDep, db: DbDep, to_api: ExtensionToApi
) -> dict[str, Any]:
    eid = parse_id(extension_id)
    return await get_owned_api(db, Extension, eid, principal.customer_id, NOT_FOUND, to_api)


@router.put("/extensions/{extension_id}", summary="Update an extension")
async def put_extension(
    extension_id: str,
    body: ExtensionUpdate,
    principal: PrincipalDep,
    db: DbDep,
    encryptor: EncryptorDep,
    to_api: ExtensionToApi,
) -> dict[str, Any]:
    def change(e: Extension, _: AsyncSession) -> None:
        if body.name is not None:
            e.name = body.name
        if body.detail is not None:
            e.detail = body.detail
        if body.password is not None:
            e.password_enc = encryptor.encrypt(body.password)

    return await change_owned(
        db, Extension, parse_id(extension_id), principal.customer_id, NOT_FOUND, change, to_api
    )


@router.delete("/extensions/{extension_id}", summary="Delete an extension")
async def delete_extension(
    extension_id: str, principal: PrincipalDep, db: DbDep, to_api: ExtensionToApi
) -> dict[str, Any]:
    return await change_owned(
        db, Extension, parse_id(extension_id), principal.customer_id, NOT_FOUND, None, to_api, delete=True
    )


@router.post(
    "/extensions/{extension_id}/direct-hash-regenerate", summary="Regenerate an extension's direct hash"
)
async def regenerate_extension_hash(
    extension_id: str, principal: PrincipalDep, db: DbDep, to_api: ExtensionToApi
) -> dict[str, Any]:
    def change(e: Extension, _: AsyncSession) -> None:
        e.direct_hash = secrets.token_hex(12)

    return await change_owned(
        db, Extension, parse_id(extension_id), principal.customer_id, NOT_FOUND, change, to_api
    )
