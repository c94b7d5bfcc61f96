"""Tenant-scoped queries shared by the resource routers: fetch one, list a page, soft delete."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from voipbin.api.deps import PageParams
from voipbin.api.errors import ApiError
from voipbin.serialize import ts
from voipbin.store.types import utcnow

T = TypeVar("T")


async def get_owned(
    session: AsyncSession, model: type[T], row_id: uuid.UUID, customer_id: uuid.UUID | None, reason: str
) -> T:
    """The row if it exists, is not deleted and belongs to the customer; else 404 (never 403: no oracle)."""
    row = await session.get(model, row_id)
    if (
        row is None
        or getattr(row, "tm_delete", None) is not None
        or (customer_id is not None and getattr(row, "customer_id", None) != customer_id)
    ):
        what = reason.removesuffix("_NOT_FOUND").lower().replace("_", " ")
        raise ApiError(404, reason, f"The {what} was not found.")
    return row


async def list_page(
    session: AsyncSession,
    model: type[T],
    page: PageParams,
    *where: ColumnElement[bool],
    customer_id: uuid.UUID | None = None,
    to_api: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """VoIPBIN pagination: newest first, ``tm_create < page_token``, token = last item's tm_create."""
    col: Any = model
    q = select(model).where(col.tm_delete.is_(None), *where)
    if customer_id is not None:
        q = q.where(col.customer_id == customer_id)
    if page.token is not None:
        q = q.where(col.tm_create < page.token)
    q = q.order_by(col.tm_create.desc(), col.id.desc()).limit(page.size)
    rows: Sequence[T] = (await session.execute(q)).scalars().all()
    body: dict[str, Any] = {"result": [to_api(r) for r in rows]}
    if rows:
        body["next_page_token"] = ts(rows[-1].tm_create)
    return body


def touch(row: Any) -> None:
    row.tm_update = utcnow()


def soft_delete(row: Any) -> None:
    now = utcnow()
    row.tm_update = now
    row.tm_delete = now
