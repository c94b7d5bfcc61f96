"""``/v1.0/aimessages``: the messages of an AI call — list by aicall, get, delete, and inject.

``POST /aimessages {aicall_id, role, content}`` into a live AI call: a ``user`` message is answered
(as if the caller had said it), a ``system`` message steers the next reply, an ``assistant`` message
is spoken to the caller as it is.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from voipbin.ai.calls import aimessage_to_api
from voipbin.api.deps import AICallsDep, DbDep, PageDep, PrincipalDep, parse_id
from voipbin.api.errors import ApiError
from voipbin.api.repo import get_owned, list_page
from voipbin.api.routes.aicalls import owned_aicall
from voipbin.store.tables import AIMessage

router = APIRouter(prefix="/v1.0", tags=["aicalls"])
NOT_FOUND = "AIMESSAGE_NOT_FOUND"


class AIMessageCreate(BaseModel):
    aicall_id: uuid.UUID
    role: Literal["user", "system", "assistant"]
    content: str = Field(min_length=1, max_length=8000)


@router.get("/aimessages", summary="List an AI call's messages")
async def list_aimessages(
    principal: PrincipalDep,
    db: DbDep,
    aicalls: AICallsDep,
    page: PageDep,
    aicall_id: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    if not aicall_id:
        raise ApiError(
            400, "MISSING_REQUEST_PARAMETER", "aicall_id is required.", details=[{"field": "aicall_id"}]
        )
    row = await owned_aicall(aicalls, aicall_id, principal.customer_id)
    await aicalls.writer.flush()  # messages of a live call that are still queued
    async with db.session() as session:
        return await list_page(
            session, AIMessage, page, AIMessage.aicall_id == row.id,
            customer_id=principal.customer_id, to_api=aimessage_to_api,
        )  # fmt: skip


@router.get("/aimessages/{message_id}", summary="Get an AI message")
async def get_aimessage(
    message_id: str, principal: PrincipalDep, db: DbDep, aicalls: AICallsDep
) -> dict[str, Any]:
    mid = parse_id(message_id)
    await aicalls.writer.flush()
    async with db.session() as session:
        return aimessage_to_api(await get_owned(session, AIMessage, mid, principal.customer_id, NOT_FOUND))


@router.delete("/aimessages/{message_id}", summary="Delete an AI message")
async def delete_aimessage(
    message_id: str, principal: PrincipalDep, db: DbDep, aicalls: AICallsDep
) -> dict[str, Any]:
    mid = parse_id(message_id)
    await aicalls.writer.flush()
    async with db.session() as session:
        await get_owned(session, AIMessage, mid, principal.customer_id, NOT_FOUND)
    deleted = await aicalls.delete_message(mid)
    assert deleted is not None
    return aimessage_to_api(deleted)


@router.post("/aimessages", summary="Send a message into a live AI call")
async def create_aimessage(
    body: AIMessageCreate, principal: PrincipalDep, aicalls: AICallsDep
) -> dict[str, Any]:
    row = await owned_aicall(aicalls, str(body.aicall_id), principal.customer_id)
    message = aicalls.inject(row.id, body.role, body.content)
    if message is None:
        raise ApiError(409, "AICALL_STATE_INVALID", "The AI call is not running (it has ended).")
    return aimessage_to_api(message)
