"""``/v1.0/customer``: the caller's own customer, including webhook settings and signing secret."""

from __future__ import annotations

import secrets
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from voipbin.api.deps import PlatformDep, PrincipalDep
from voipbin.api.repo import get_owned, touch
from voipbin.platform import Platform
from voipbin.security import mask
from voipbin.serialize import timestamps, uid
from voipbin.store.tables import Customer

router = APIRouter(prefix="/v1.0", tags=["customer"])


def customer_to_api(platform: Platform, c: Customer) -> dict[str, Any]:
    secret = platform.encryptor.decrypt(c.webhook_secret_enc)
    out: dict[str, Any] = {"email": c.email} if c.email else {}  # spec: format email, so never ""
    return {
        **out,
        "id": uid(c.id),
        "name": c.name,
        "detail": c.detail,
        "phone_number": c.phone_number,
        "address": c.address,
        "webhook_method": c.webhook_method,
        "webhook_uri": c.webhook_uri,
        "webhook_secret": mask(secret),
        "billing_account_id": uid(c.billing_account_id),
        "metadata": c.metadata_ or {},
        "email_verified": c.email_verified,
        "status": c.status,
        "identity_verification_status": c.identity_verification_status,
        **timestamps(c),
    }


class CustomerUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    detail: str | None = Field(default=None, max_length=10_000)
    email: str | None = Field(default=None, max_length=255)
    phone_number: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=10_000)
    webhook_method: Literal["", "POST", "GET", "PUT", "DELETE"] | None = None
    webhook_uri: str | None = Field(default=None, max_length=2048)
    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=256, description="HMAC-SHA256 key for X-VoIPBIN-Signature."
    )

    @field_validator("webhook_uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        if v and not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError("webhook_uri must be an http:// or https:// URL")
        return v


@router.get("/customer", summary="Get your customer")
async def get_customer(principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    async with platform.db.session() as session:
        c = await get_owned(session, Customer, principal.customer_id, None, "CUSTOMER_NOT_FOUND")
        return customer_to_api(platform, c)


@router.put("/customer", summary="Update your customer (webhook settings included)")
async def put_customer(
    body: CustomerUpdate, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
    async with platform.db.session() as session:
        c = await get_owned(session, Customer, principal.customer_id, None, "CUSTOMER_NOT_FOUND")
        for name, value in body.model_dump(exclude_unset=True, exclude={"webhook_secret"}).items():
            if value is not None:
                setattr(c, name, value)
        if body.webhook_secret is not None:
            c.webhook_secret_enc = platform.encryptor.encrypt(body.webhook_secret)
        touch(c)
        await session.commit()
    if platform.webhooks is not None:
        platform.webhooks.forget(principal.customer_id)
    return customer_to_api(platform, c)


@router.post(
    "/customer/webhook_secret_regenerate",
    summary="Generate a new webhook signing secret; the only response that shows it in full",
)
async def regenerate_webhook_secret(principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    secret = "whsec_" + secrets.token_urlsafe(32)
    async with platform.db.session() as session:
        c = await get_owned(session, Customer, principal.customer_id, None, "CUSTOMER_NOT_FOUND")
        c.webhook_secret_enc = platform.encryptor.encrypt(secret)
        touch(c)
        await session.commit()
    if platform.webhooks is not None:
        platform.webhooks.forget(principal.customer_id)
    return {**customer_to_api(platform, c), "webhook_secret": secret}
