"""``/v1.0/calls`` and ``/v1.0/groupcalls``.

``POST /calls`` answers with the first call's fields at the top level (the seed tutorial's shape) and
also ``calls`` / ``groupcalls`` lists (VoIPBIN's shape), so clients written for either work.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from voipbin.api.deps import PageDep, PlatformDep, PrincipalDep, parse_id
from voipbin.api.errors import ApiError
from voipbin.api.repo import get_owned, list_page, soft_delete
from voipbin.api.routes.flows import action_error, checked_actions
from voipbin.billing.ledger import account_for, can_cover
from voipbin.calls.service import (
    call_to_api,
    finish_call,
    groupcall_to_api,
    publish_call,
    set_status,
)
from voipbin.calls.state import Status, local_hangup_status
from voipbin.models.actions import ActionValidationError
from voipbin.models.address import Address, validate_dial_address
from voipbin.platform import Platform
from voipbin.store.tables import Call, Flow, Groupcall, Number

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1.0", tags=["calls"])
NOT_FOUND = "CALL_NOT_FOUND"
MAX_DESTINATIONS = 100
CALL_TYPES = ("tel", "sip")
GROUP_TYPES = ("extension", "agent")


class CallCreate(BaseModel):
    source: Address
    destinations: list[Address] = Field(min_length=1, max_length=MAX_DESTINATIONS)
    flow_id: uuid.UUID | None = None
    actions: list[Any] | None = None
    anonymous: Literal["yes", "no", "auto"] = "auto"
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("variables")
    @classmethod
    def _variables(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > 100:
            raise ValueError("at most 100 variables")
        if any(len(val) > 32_768 for val in v.values()):
            raise ValueError("a variable value may be at most 32 KB")
        if sum(len(k) + len(val) for k, val in v.items()) > 65_536:
            raise ValueError("variables may total at most 64 KB")
        # voipbin.* names are the platform's own; a caller cannot preset them.
        return {k: val for k, val in v.items() if not k.startswith("voipbin.")}


def _checked_address(addr: Address, field: str) -> dict[str, Any]:
    try:
        return validate_dial_address(addr, field).to_api()
    except ActionValidationError as exc:
        raise action_error(exc) from None


async def _resolve_flow(platform: Platform, body: CallCreate, customer_id: uuid.UUID) -> uuid.UUID:
    if body.flow_id is not None and body.flow_id != uuid.UUID(int=0):
        async with platform.db.session() as session:
            await get_owned(session, Flow, body.flow_id, customer_id, "FLOW_NOT_FOUND")
        return body.flow_id
    if body.actions is None:
        raise ApiError(400, "INVALID_ARGUMENT", "Give flow_id or actions.", details=[{"field": "actions"}])
    actions = checked_actions(body.actions)
    flow = Flow(
        customer_id=customer_id, name="tmp", detail="tmp outbound flow", actions=actions, persist=False
    )
    async with platform.db.session() as session:
        session.add(flow)
        await session.commit()
    return flow.id


@router.post("/calls", summary="Create outgoing calls that run a flow once answered")
async def create_call(body: CallCreate, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    source = body.source.to_api()
    if body.source.type == "tel":
        source = _checked_address(body.source, "source")
    destinations = [_checked_address(d, f"destinations[{i}]") for i, d in enumerate(body.destinations)]
    tel_count = sum(1 for d in destinations if d["type"] == "tel")
    async with platform.db.session() as session:
        if body.source.type == "tel":
            owned = (
                await session.execute(
                    select(Number.id).where(
                        Number.customer_id == principal.customer_id,
                        Number.number == source["target"],
                        Number.status == "active",
                        Number.tm_delete.is_(None),
                    )
                )
            ).first()
            if owned is None:
                raise ApiError(
                    400,
                    "INVALID_ARGUMENT",
                    f"Source {source['target']} is not a number owned by this account (GET /v1.0/numbers).",
                    details=[{"field": "source.target"}],
                )
        if tel_count:
            account = await account_for(session, principal.customer_id)
            if not can_cover(account, platform.settings.call_rate_per_minute * tel_count):
                raise ApiError(
                    402,
                    "INSUFFICIENT_BALANCE",
                    "The balance cannot cover these calls; check GET /v1.0/billing-accounts and top up.",
                )
    flow_id = await _resolve_flow(platform, body, principal.customer_id)

    calls: list[Call] = []
    groupcalls: list[Groupcall] = []
    async with platform.db.session() as session:
        for dest in destinations:
            if dest["type"] in CALL_TYPES:
                calls.append(
                    Call(
                        customer_id=principal.customer_id,
                        flow_id=flow_id,
                        type="flow",
                        source=source,
                        destination=dest,
                        status=Status.DIALING,
                        direction="outgoing",
                        variables=body.variables,
                        metadata_={"anonymous": body.anonymous},
                        chained_call_ids=[],
                        recording_ids=[],
                        action={},
                    )
                )
            else:
                groupcalls.append(
                    Groupcall(
                        customer_id=principal.customer_id,
                        flow_id=flow_id,
                        source=source,
                        destinations=[dest],
                        ring_method="ring_all",
                        answer_method="hangup_others",
                        call_ids=[],
                    )
                )
        session.add_all([*calls, *groupcalls])
        await session.commit()

    for c in calls:
        publish_call(platform, c, "call_created")
        publish_call(platform, c, "call_dialing")
    for g in groupcalls:
        platform.events.publish(g.customer_id, "groupcall_created", groupcall_to_api(g))
    response: dict[str, Any] = call_to_api(calls[0]) if calls else {}
    response["calls"] = [call_to_api(c) for c in calls]
    response["groupcalls"] = [groupcall_to_api(g) for g in groupcalls]
    if platform.calls is not None:
        for c in calls:
            await platform.calls.start_outgoing(c.id)
        for g in groupcalls:
            start_group = getattr(platform.calls, "start_groupcall", None)
            if start_group is not None:
                await start_group(g.id)
    return response


@router.get("/calls", summary="List calls")
async def list_calls(principal: PrincipalDep, platform: PlatformDep, page: PageDep) -> dict[str, Any]:
    async with platform.db.session() as session:
        return await list_page(session, Call, page, customer_id=principal.customer_id, to_api=call_to_api)


@router.get("/calls/{call_id}", summary="Get a call")
async def get_call(call_id: str, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    async with platform.db.session() as session:
        return call_to_api(
            await get_owned(session, Call, parse_id(call_id), principal.customer_id, NOT_FOUND)
        )


async def _hangup(platform: Platform, call: Call) -> None:
    """Start a local hangup: ``canceling``/``terminating`` now, ``hangup`` when the leg has ended."""
    if call.status in (Status.HANGUP, Status.TERMINATING, Status.CANCELING):
        return
    if platform.calls is None:
        await finish_call(platform, call.id, reason="normal", by="local")
        return
    await set_status(platform, call.id, local_hangup_status(call.status, call.direction))
    await platform.calls.hangup(call.id, "normal")


async def _settled(platform: Platform, call_id: uuid.UUID, customer_id: uuid.UUID) -> Call:
    """The call after a hangup request, waiting briefly so the answer usually shows ``hangup``."""
    for _ in range(20):
        async with platform.db.session() as session:
            c = await get_owned(session, Call, call_id, customer_id, NOT_FOUND)
        if c.status == Status.HANGUP:
            break
        await asyncio.sleep(0.05)
    return c


@router.post("/calls/{call_id}/hangup", summary="Hang up a call")
async def hangup_call(call_id: str, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    cid = parse_id(call_id)
    async with platform.db.session() as session:
        c = await get_owned(session, Call, cid, principal.customer_id, NOT_FOUND)
    await _hangup(platform, c)
    return call_to_api(await _settled(platform, cid, principal.customer_id))


@router.delete("/calls/{call_id}", summary="Hang up (if live) and delete a call")
async def delete_call(call_id: str, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    cid = parse_id(call_id)
    async with platform.db.session() as session:
        c = await get_owned(session, Call, cid, principal.customer_id, NOT_FOUND)
    await _hangup(platform, c)
    await _settled(platform, cid, principal.customer_id)
    async with platform.db.session() as session:
        c = await get_owned(session, Call, cid, principal.customer_id, NOT_FOUND)
        soft_delete(c)
        await session.commit()
    publish_call(platform, c, "call_deleted")
    return call_to_api(c)


@router.get("/groupcalls", summary="List groupcalls")
async def list_groupcalls(principal: PrincipalDep, platform: PlatformDep, page: PageDep) -> dict[str, Any]:
    async with platform.db.session() as session:
        return await list_page(
            session, Groupcall, page, customer_id=principal.customer_id, to_api=groupcall_to_api
        )


@router.get("/groupcalls/{groupcall_id}", summary="Get a groupcall")
async def get_groupcall(groupcall_id: str, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    async with platform.db.session() as session:
        g = await get_owned(
            session, Groupcall, parse_id(groupcall_id), principal.customer_id, "GROUPCALL_NOT_FOUND"
        )
        return groupcall_to_api(g)
