"""Tenant-scoped queries shared by the resource routers: fetch one, list a page, change one, soft delete."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from voipbin.api.deps import PageParams
from voipbin.api.errors import check_owned
from voipbin.serialize import ts
from voipbin.store.db import Database
from voipbin.store.types import utcnow

T = TypeVar("T")
ToApi = Callable[[T], dict[str, Any]]
# Changes a fetched row in place; may be async (e.g. to check a referenced row in the same session).
Change = Callable[[T, AsyncSession], Awaitable[None] | None]


async def get_owned(
    session: AsyncSession, model: type[T], row_id: uuid.UUID, customer_id: uuid.UUID | None, reason: str
) -> T:
    """The row if it exists, is not deleted and belongs to the customer; else 404 (never 403: no oracle)."""
    return check_owned(await session.get(model, row_id), customer_id, reason)


async def list_page(
    session: AsyncSession,
    model: type[T],
    page: PageParams,
    *where: ColumnElement[bool],
    customer_id: uuid.UUID | None = None,
    to_api: ToApi[T],
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
        last: Any = rows[-1]
        body["next_page_token"] = ts(last.tm_create)
    return body


def touch(row: Any) -> None:
    row.tm_update = utcnow()


def soft_delete(row: Any) -> None:
    now = utcnow()
    row.tm_update = now
    row.tm_delete = now


async def get_owned_api(
    db: Database,
    model: type[T],
    row_id: uuid.UUID,
    customer_id: uuid.UUID | None,
    reason: str,
    to_api: ToApi[T],
) -> dict[str, Any]:
    """``GET /things/{id}``: the owned row in its API form, or the 404 of :func:`get_owned`."""
    async with db.session() as session:
        return to_api(await get_owned(session, model, row_id, customer_id, reason))


async def change_owned(
    db: Database,
    model: type[T],
    row_id: uuid.UUID,
    customer_id: uuid.UUID | None,
    reason: str,
    change: Change[T] | None,
    to_api: ToApi[T],
    *,
    delete: bool = False,
) -> dict[str, Any]:
    """Fetch the owned row (404 as :func:`get_owned`), apply ``change``, stamp ``tm_update`` (or soft
    delete it with ``delete=True``), commit, and return ``to_api(row)``."""
    async with db.session() as session:
        row = await get_owned(session, model, row_id, customer_id, reason)
        if change is not None:
            result = change(row, session)
            if inspect.isawaitable(result):
                await result
        if delete:
            soft_delete(row)
        else:
            touch(row)
        await session.commit()
        return to_api(row)
