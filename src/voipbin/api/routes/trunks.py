"""Admin-only ``/v1.0/providers`` (outbound SIP trunks) and ``/v1.0/routes`` (which prefixes use them).

Trunk passwords are encrypted at rest and returned masked.
"""

from __future__ import annotations

import re
import uuid
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.api.deps import AdminDep, CallManagerDep, DbDep, EncryptorDep, PageDep, parse_id
from voipbin.api.repo import ToApi, change_owned, get_owned, get_owned_api, list_page
from voipbin.security import Encryptor, mask
from voipbin.serialize import timestamps, uid
from voipbin.store.tables import ZERO_UUID, Provider, Route

router = APIRouter(prefix="/v1.0", tags=["providers", "routes"])
HOST_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]{1,255}$")
TARGET_RE = re.compile(r"^(all|\+?[0-9]{1,15})$")
PROVIDER_NOT_FOUND = "PROVIDER_NOT_FOUND"
ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"


def provider_to_api(encryptor: Encryptor, p: Provider) -> dict[str, Any]:
    return {
        "id": uid(p.id),
        "type": p.type,
        "hostname": p.hostname,
        "tech_prefix": p.tech_prefix,
        "tech_postfix": p.tech_postfix,
        "tech_headers": p.tech_headers or {},
        "metadata": p.metadata_ or {},
        "name": p.name,
        "detail": p.detail,
        "codecs": p.codecs,
        "transport": p.transport,
        "auth_username": p.auth_username,
        "auth_password": mask(encryptor.decrypt(p.auth_password_enc)),
        "register": p.register,
        **timestamps(p),
    }


def provider_serializer(encryptor: EncryptorDep) -> ToApi[Provider]:
    """``provider_to_api`` bound to this node's encryptor (a request dependency)."""
    return partial(provider_to_api, encryptor)


ProviderToApi = Annotated[ToApi[Provider], Depends(provider_serializer)]


def route_to_api(r: Route) -> dict[str, Any]:
    return {
        "id": uid(r.id),
        "customer_id": uid(r.customer_id),
        "name": r.name,
        "detail": r.detail,
        "provider_id": uid(r.provider_id),
        "priority": r.priority,
        "target": r.target,
        **timestamps(r),
    }


class ProviderWrite(BaseModel):
    type: Literal["sip"] | None = None
    hostname: str | None = Field(default=None, description="host or host:port of the trunk")
    tech_prefix: str | None = Field(default=None, max_length=64)
    tech_postfix: str | None = Field(default=None, max_length=64)
    tech_headers: dict[str, str] | None = None
    name: str | None = Field(default=None, max_length=255)
    detail: str | None = Field(default=None, max_length=10_000)
    codecs: str | None = Field(default=None, pattern=r"^((PCMU|PCMA)(,(PCMU|PCMA))*)?$")
    transport: Literal["udp", "tcp"] | None = None
    auth_username: str | None = Field(default=None, max_length=255)
    auth_password: str | None = Field(default=None, max_length=255)
    register_: bool | None = Field(default=None, alias="register", description="REGISTER to the trunk")

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("hostname")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not HOST_RE.match(v):
            raise ValueError("hostname must be a host name or address, optionally with :port")
        return v


class ProviderCreate(ProviderWrite):
    hostname: str = Field(description="host or host:port of the trunk")


def _apply_provider(encryptor: Encryptor, p: Provider, body: ProviderWrite) -> None:
    for name, value in body.model_dump(exclude_unset=True, exclude={"auth_password"}).items():
        if value is not None:
            setattr(p, name.rstrip("_"), value)
    if body.auth_password is not None:
        p.auth_password_enc = encryptor.encrypt(body.auth_password)


class RouteWrite(BaseModel):
    customer_id: uuid.UUID | None = None
    name: str | None = Field(default=None, max_length=255)
    detail: str | None = Field(default=None, max_length=10_000)
    provider_id: uuid.UUID | None = None
    priority: int | None = Field(default=None, ge=0, le=1000)
    target: str | None = Field(default=None, description="'all' or a country/prefix such as +1 or +4420")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        if v is not None and not TARGET_RE.match(v):
            raise ValueError("target must be 'all' or a digit prefix such as +1")
        return v


class RouteCreate(RouteWrite):
    provider_id: uuid.UUID


# Provider writes re-sync the trunk REGISTER bindings at once (``calls.sync_trunks``).


@router.post("/providers", summary="Create a SIP trunk (platform admin)")
async def create_provider(
    body: ProviderCreate,
    _: AdminDep,
    db: DbDep,
    encryptor: EncryptorDep,
    calls: CallManagerDep,
    to_api: ProviderToApi,
) -> dict[str, Any]:
    p = Provider(hostname=body.hostname, tech_headers={}, metadata_={}, auth_password_enc="")
    _apply_provider(encryptor, p, body)
    async with db.session() as session:
        session.add(p)
        await session.commit()
    await calls.sync_trunks()
    return to_api(p)


@router.get("/providers", summary="List SIP trunks (platform admin)")
async def list_providers(_: AdminDep, db: DbDep, to_api: ProviderToApi, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(session, Provider, page, to_api=to_api)


@router.get("/providers/{provider_id}", summary="Get a SIP trunk (platform admin)")
async def get_provider(provider_id: str, _: AdminDep, db: DbDep, to_api: ProviderToApi) -> dict[str, Any]:
    return await get_owned_api(db, Provider, parse_id(provider_id), None, PROVIDER_NOT_FOUND, to_api)


@router.put("/providers/{provider_id}", summary="Update a SIP trunk (platform admin)")
async def put_provider(
    provider_id: str,
    body: ProviderWrite,
    _: AdminDep,
    db: DbDep,
    encryptor: EncryptorDep,
    calls: CallManagerDep,
    to_api: ProviderToApi,
) -> dict[str, Any]:
    def change(p: Provider, _session: AsyncSession) -> None:
        _apply_provider(encryptor, p, body)

    out = await change_owned(db, Provider, parse_id(provider_id), None, PROVIDER_NOT_FOUND, change, to_api)
    await calls.sync_trunks()
    return out


@router.delete("/providers/{provider_id}", summary="Delete a SIP trunk (platform admin)")
async def delete_provider(
    provider_id: str, _: AdminDep, db: DbDep, calls: CallManagerDep, to_api: ProviderToApi
) -> dict[str, Any]:
    out = await change_owned(
        db, Provider, parse_id(provider_id), None, PROVIDER_NOT_FOUND, None, to_api, delete=True
    )
    await calls.sync_trunks()
    return out


@router.post("/routes", summary="Create a route (platform admin)")
async def create_route(body: RouteCreate, _: AdminDep, db: DbDep) -> dict[str, Any]:
    async with db.session() as session:
        await get_owned(session, Provider, body.provider_id, None, PROVIDER_NOT_FOUND)
        r = Route(
            customer_id=body.customer_id or ZERO_UUID,
            name=body.name or "",
            detail=body.detail or "",
            provider_id=body.provider_id,
            priority=body.priority if body.priority is not None else 1,
            target=body.target or "all",
        )
        session.add(r)
        await session.commit()
        return route_to_api(r)


@router.get("/routes", summary="List routes (platform admin)")
async def list_routes(_: AdminDep, db: DbDep, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(session, Route, page, to_api=route_to_api)


@router.get("/routes/{route_id}", summary="Get a route (platform admin)")
async def get_route(route_id: str, _: AdminDep, db: DbDep) -> dict[str, Any]:
    return await get_owned_api(db, Route, parse_id(route_id), None, ROUTE_NOT_FOUND, route_to_api)


@router.put("/routes/{route_id}", summary="Update a route (platform admin)")
async def put_route(route_id: str, body: RouteWrite, _: AdminDep, db: DbDep) -> dict[str, Any]:
    async def change(r: Route, session: AsyncSession) -> None:
        if body.provider_id is not None:
            await get_owned(session, Provider, body.provider_id, None, PROVIDER_NOT_FOUND)
        for name, value in body.model_dump(exclude_unset=True).items():
            if value is not None:
                setattr(r, name, value)

    return await change_owned(db, Route, parse_id(route_id), None, ROUTE_NOT_FOUND, change, route_to_api)


@router.delete("/routes/{route_id}", summary="Delete a route (platform admin)")
async def delete_route(route_id: str, _: AdminDep, db: DbDep) -> dict[str, Any]:
    return await change_owned(
        db, Route, parse_id(route_id), None, ROUTE_NOT_FOUND, None, route_to_api, delete=True
    )
