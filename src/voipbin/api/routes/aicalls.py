"""``/v1.0/aicalls``: AI conversations — list, get, delete, start on a live call, terminate, participants.

An aicall running on this node answers with its live state. ``POST /aicalls`` starts a conversation on
a live, answered call (``reference_type`` ``call``); the call's own flow is not blocked by it (use a
flow's ``ai_talk`` for that). ``POST /aicalls/{id}/terminate`` ends the conversation; a flow that ran
it continues with its next action.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from voipbin.ai.calls import AICalls, aicall_to_api, participants_to_api
from voipbin.ai.session import AIConfigError
from voipbin.api.deps import (
    AICallsDep,
    AIDep,
    CallManagerDep,
    CallRecordsDep,
    DbDep,
    PageDep,
    PrincipalDep,
    parse_id,
)
from voipbin.api.errors import ApiError, check_owned
from voipbin.api.repo import list_page
from voipbin.billing.ledger import account_for, can_cover
from voipbin.flow.interfaces import CallAudio
from voipbin.models.action_options.ai import AIOption
from voipbin.store.tables import AICall

router = APIRouter(prefix="/v1.0", tags=["aicalls"])
NOT_FOUND = "AICALL_NOT_FOUND"


class AICallCreate(BaseModel):
    assistance_type: Literal["ai", "team"]
    assistance_id: uuid.UUID
    reference_type: Literal["call", "conversation", "task", "contact_case"]
    reference_id: uuid.UUID


async def owned_aicall(aicalls: AICalls, aicall_id: str, customer_id: uuid.UUID) -> AICall:
    return check_owned(await aicalls.get(parse_id(aicall_id)), customer_id, NOT_FOUND)


@router.get("/aicalls", summary="List AI calls")
async def list_aicalls(
    principal: PrincipalDep,
    db: DbDep,
    aicalls: AICallsDep,
    page: PageDep,
    reference_id: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    where = [AICall.reference_id == parse_id(reference_id, "reference_id")] if reference_id else []
    await aicalls.writer.flush()  # rows of calls started a moment ago are listed too

    def to_api(row: AICall) -> dict[str, Any]:
        live = aicalls.live.get(row.id)
        return aicall_to_api(live.row if live else row)

    async with db.session() as session:
        return await list_page(
            session, AICall, page, *where, customer_id=principal.customer_id, to_api=to_api
        )


@router.get("/aicalls/{aicall_id}", summary="Get an AI call")
async def get_aicall(aicall_id: str, principal: PrincipalDep, aicalls: AICallsDep) -> dict[str, Any]:
    return aicall_to_api(await owned_aicall(aicalls, aicall_id, principal.customer_id))


@router.get("/aicalls/{aicall_id}/participants", summary="The AIs that took part in an AI call")
async def get_participants(aicall_id: str, principal: PrincipalDep, aicalls: AICallsDep) -> dict[str, Any]:
    return {"result": participants_to_api(await owned_aicall(aicalls, aicall_id, principal.customer_id))}


@router.post("/aicalls/{aicall_id}/terminate", summary="End an AI call (a flow running it continues)")
async def terminate_aicall(aicall_id: str, principal: PrincipalDep, aicalls: AICallsDep) -> dict[str, Any]:
    row = await owned_aicall(aicalls, aicall_id, principal.customer_id)
    if row.status != "terminated" and not aicalls.terminate(row.id):
        raise ApiError(409, "AICALL_STATE_INVALID", "The AI call is not running on this node.")
    return aicall_to_api(row)


@router.delete("/aicalls/{aicall_id}", summary="Delete an AI call and its messages (ends it first)")
async def delete_aicall(aicall_id: str, principal: PrincipalDep, aicalls: AICallsDep) -> dict[str, Any]:
    row = await owned_aicall(aicalls, aicall_id, principal.customer_id)
    if row.status != "terminated":
        aicalls.terminate(row.id)
        raise ApiError(
            409,
            "AICALL_STATE_INVALID",
            "The AI call was running; it is being terminated. Delete it once ended.",
        )
    deleted = await aicalls.soft_delete(row.id)
    assert deleted is not None
    return aicall_to_api(deleted)


@router.post("/aicalls", summary="Start an AI conversation on a live call")
async def create_aicall(
    body: AICallCreate,
    principal: PrincipalDep,
    db: DbDep,
    records: CallRecordsDep,
    calls: CallManagerDep,
    ai: AIDep,
) -> dict[str, Any]:
    if body.assistance_type != "ai":
        raise ApiError(400, "INVALID_ARGUMENT", "assistance_type 'team' is not supported; reference an AI.",
                       details=[{"field": "assistance_type"}])  # fmt: skip
    if body.reference_type != "call":
        why = f"AI calls on a {body.reference_type} are not supported; use call."
        raise ApiError(400, "INVALID_ARGUMENT", why, details=[{"field": "reference_type"}])
    row = check_owned(await records.get(body.reference_id), principal.customer_id, "CALL_NOT_FOUND")
    live = calls.live_call(body.reference_id)
    if live is None or live.is_hungup:
        raise ApiError(409, "CALL_ALREADY_HANGUP", "The call is not live.")
    if not live.is_up or not isinstance(live, CallAudio):
        raise ApiError(409, "CALL_STATE_INVALID", "The call is not answered yet.")
    option = AIOption.model_validate({"assistance_type": "ai", "assistance_id": str(body.assistance_id)})
    try:
        cfg = await ai.check(principal.customer_id, option)
    except AIConfigError as exc:
        missing = "not found" in str(exc)
        raise ApiError(
            404 if missing else 400, "AI_NOT_FOUND" if missing else "INVALID_ARGUMENT", str(exc)
        ) from None
    if ai.charged(cfg):
        async with db.session() as session:
            if not can_cover(await account_for(session, principal.customer_id), 1):
                raise ApiError(402, "INSUFFICIENT_BALANCE", "The balance cannot cover an AI call; top up.")
    record = await ai.start_on_call(
        principal.customer_id, live, row.id, option, row.activeflow_id, {"voipbin.call.id": str(row.id)}
    )
    return aicall_to_api(record.row)
