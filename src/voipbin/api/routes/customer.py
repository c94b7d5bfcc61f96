"""``/v1.0/customer``: the caller's own customer, including webhook settings and signing secret."""

from __future__ import annotations

import secrets
from functools import partial
from typing import Any, Literal

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.api.deps import DbDep, EncryptorDep, OutboundDep, PrincipalDep, WebhooksDep
from voipbin.api.outbound import check_saved_url
from voipbin.api.repo import change_owned, get_owned_api
from voipbin.security import Encryptor, mask
from voipbin.serialize import timestamps, uid
from voipbin.store.tables import Customer

router = APIRouter(prefix="/v1.0", tags=["customer"])
NOT_FOUND = "CUSTOMER_NOT_FOUND"


def customer_to_api(encryptor: Encryptor, c: Customer) -> dict[str, Any]:
    secret = encryptor.decrypt(c.webhook_secret_enc)
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

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v:  # "" clears the address
            try:
                return validate_email(v, check_deliverability=False).normalized
            except EmailNotValidError as exc:
                raise ValueError(f"email is not a valid address: {exc}") from None
        return v

    @field_validator("webhook_uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        if v and not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError("webhook_uri must be an http:// or https:// URL")
        return v


@router.get("/customer", summary="Get your customer")
async def get_customer(principal: PrincipalDep, db: DbDep, encryptor: EncryptorDep) -> dict[str, Any]:
    return await get_owned_api(
        db, Customer, principal.customer_id, None, NOT_FOUND, partial(customer_to_api, encryptor)
    )


@router.put("/customer", summary="Update your customer (webhook settings included)")
async def put_customer(
    body: CustomerUpdate,
    principal: PrincipalDep,
    db: DbDep,
    encryptor: EncryptorDep,
    webhooks: WebhooksDep,
    outbound: OutboundDep,
) -> dict[str, Any]:
    await check_saved_url(outbound, body.webhook_uri, "webhook_uri")  # SSRF guard

    def change(c: Customer, _: AsyncSession) -> None:
        for name, value in body.model_dump(exclude_unset=True, exclude={"webhook_secret"}).items():
            if value is not None:
                setattr(c, name, value)
        if body.webhook_secret is not None:
            c.webhook_secret_enc = encryptor.encrypt(body.webhook_secret)

    out = await change_owned(
        db, Customer, principal.customer_id, None, NOT_FOUND, change, partial(customer_to_api, encryptor)
    )
    webhooks.forget(principal.customer_id)
    return out


@router.post(
    "/customer/webhook_secret_regenerate",
    summary="Generate a new webhook signing secret; the only response that shows it in full",
)
async def regenerate_webhook_secret(
    principal: PrincipalDep, db: DbDep, encryptor: EncryptorDep, webhooks: WebhooksDep
) -> dict[str, Any]:
    secret = "whsec_" + secrets.token_urlsafe(32)

    def change(c: Customer, _: AsyncSession) -> None:
        c.webhook_secret_enc = encryptor.encrypt(secret)

    out = await change_owned(
        db, Customer, principal.customer_id, None, NOT_FOUND, change, partial(customer_to_api, encryptor)
    )
    webhooks.forget(principal.customer_id)
    return {**out, "webhook_secret": secret}
