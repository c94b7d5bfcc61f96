"""``/v1.0/calls`` and ``/v1.0/groupcalls``.

``POST /calls`` answers with the first call's fields at the top level (the seed tutorial's shape) and
also ``calls`` / ``groupcalls`` lists (VoIPBIN's shape), so clients written for either work.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Literal, cast

from fastapi import APIRouter, Request, WebSocket
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import select

from voipbin.ai.actions import AIConversations
from voipbin.ai.registry import ModelLocations
from voipbin.ai.session import AIConfigError
from voipbin.api.deps import (
    AIDep,
    CallManagerDep,
    CallRecordsDep,
    DbDep,
    ModelsDep,
    OutboundDep,
    PageDep,
    PrincipalDep,
    SettingsDep,
    current_principal,
    parse_id,
)
from voipbin.api.errors import ApiError, check_owned, envelope
from voipbin.api.repo import get_owned, list_page
from voipbin.api.routes.flows import action_error, checked_actions
from voipbin.billing.ledger import account_for, can_cover
from voipbin.calls.manager import CallManager
from voipbin.calls.media_stream import MediaStreamSession
from voipbin.calls.records import CallRecords, call_to_api, groupcall_to_api
from voipbin.calls.state import Status, local_hangup_status
from voipbin.flow.streams.framing import ENCAPSULATIONS
from voipbin.models.action_options.ai import AIOption
from voipbin.models.actions import ActionValidationError
from voipbin.models.address import Address, validate_dial_address
from voipbin.security.outbound import OutboundPolicy
from voipbin.store.db import Database
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


async def _ai_needs_credit(actions: list[Any], customer_id: uuid.UUID, ai: AIConversations) -> bool:
    """Whether the flow's actions hold an AI conversation that costs credit (cloud engines). Actions that
    cannot run are left to the flow's own validation and failure."""
    for action in actions:
        if not isinstance(action, dict) or action.get("type") not in ("ai", "ai_talk"):
            continue
        try:
            cfg = await ai.check(customer_id, AIOption.model_validate(action.get("option") or {}))
        except (ValidationError, AIConfigError):
            continue
        if ai.charged(cfg):
            return True
    return False


async def _flow_actions(
    db: Database,
    body: CallCreate,
    customer_id: uuid.UUID,
    models: ModelLocations,
    outbound: OutboundPolicy | None = None,
) -> tuple[uuid.UUID | None, list[Any]]:
    """The stored flow's id and actions (one read), or (None, the inline actions validated)."""
    if body.flow_id is not None and body.flow_id != uuid.UUID(int=0):
        async with db.session() as session:
            flow = await get_owned(session, Flow, body.flow_id, customer_id, "FLOW_NOT_FOUND")
            return flow.id, list(flow.actions or [])
    if body.actions is None:
        raise ApiError(400, "INVALID_ARGUMENT", "Give flow_id or actions.", details=[{"field": "actions"}])
    return None, checked_actions(body.actions, models=models, outbound=outbound)


async def _temporary_flow(db: Database, customer_id: uuid.UUID, actions: list[Any]) -> uuid.UUID:
    flow = Flow(
        customer_id=customer_id, name="tmp", detail="tmp outbound flow", actions=actions, persist=False
    )
    async with db.session() as session:
        session.add(flow)
        await session.commit()
    return flow.id


@router.post("/calls", summary="Create outgoing calls that run a flow once answered")
async def create_call(
    body: CallCreate,
    principal: PrincipalDep,
    db: DbDep,
    settings: SettingsDep,
    records: CallRecordsDep,
    calls: CallManagerDep,
    models: ModelsDep,
    outbound: OutboundDep,
    ai: AIDep,
) -> dict[str, Any]:
    source = body.source.to_api()
    if body.source.type == "tel":
        source = _checked_address(body.source, "source")
    destinations = [_checked_address(d, f"destinations[{i}]") for i, d in enumerate(body.destinations)]
    tel_count = sum(1 for d in destinations if d["type"] == "tel")
    async with db.session() as session:
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
            if not can_cover(account, settings.call_rate_per_minute * tel_count):
                raise ApiError(
                    402,
                    "INSUFFICIENT_BALANCE",
                    "The balance cannot cover these calls; check GET /v1.0/billing-accounts and top up.",
                )
    stored_flow_id, actions = await _flow_actions(db, body, principal.customer_id, models, outbound)
    if await _ai_needs_credit(actions, principal.customer_id, ai):
        async with db.session() as session:
            if not can_cover(await account_for(session, principal.customer_id), 1):
                raise ApiError(
                    402,
                    "INSUFFICIENT_BALANCE",
                    "The balance cannot cover these calls' AI conversation; "
                    "check GET /v1.0/billing-accounts.",
                )
    flow_id = stored_flow_id or await _temporary_flow(db, principal.customer_id, actions)

    new_calls: list[Call] = []
    groupcalls: list[Groupcall] = []
    for dest in destinations:
        if dest["type"] in CALL_TYPES:
            new_calls.append(
                records.new_call(
                    principal.customer_id,
                    flow_id=flow_id,
                    source=source,
                    destination=dest,
                    direction="outgoing",
                    variables=body.variables,
                    metadata={"anonymous": body.anonymous},
                )
            )
        else:
            groupcalls.append(
                records.new_groupcall(
                    principal.customer_id, flow_id=flow_id, source=source, destinations=[dest]
                )
            )
    if new_calls:
        await records.add(new_calls)
    if groupcalls:
        await records.add_groupcalls(groupcalls)
    response: dict[str, Any] = call_to_api(new_calls[0]) if new_calls else {}
    response["calls"] = [call_to_api(c) for c in new_calls]
    response["groupcalls"] = [groupcall_to_api(g) for g in groupcalls]
    for c in new_calls:
        await calls.start_outgoing(c.id)
    for g in groupcalls:
        await calls.start_groupcall(g.id)
    return response


@router.get("/calls", summary="List calls")
async def list_calls(
    principal: PrincipalDep, db: DbDep, records: CallRecordsDep, page: PageDep
) -> dict[str, Any]:
    """Stored rows; calls live on this node answer with their live state."""

    def to_api(c: Call) -> dict[str, Any]:
        return call_to_api(records.live(c.id) or c)

    async with db.session() as session:
        return await list_page(session, Call, page, customer_id=principal.customer_id, to_api=to_api)


@router.get("/calls/{call_id}", summary="Get a call")
async def get_call(call_id: str, principal: PrincipalDep, records: CallRecordsDep) -> dict[str, Any]:
    return call_to_api(check_owned(await records.get(parse_id(call_id)), principal.customer_id, NOT_FOUND))


@router.websocket("/calls/{call_id}/media_stream")
async def call_media_stream(websocket: WebSocket, call_id: str, encapsulation: str = "rtp") -> None:
    """The call's audio both ways over this WebSocket (calls/media_stream.py). Authenticated like REST
    (token / accesskey in the query, an Authorization header or a cookie); errors before the upgrade
    are HTTP answers in VoIPBIN's envelope."""
    node = websocket.app.state.node
    as_request = cast(Request, websocket)  # the REST dependencies read only what both share
    try:
        principal = await current_principal(as_request, node.db, node.secrets)
        call = check_owned(await node.call_records.get(parse_id(call_id)), principal.customer_id, NOT_FOUND)
        if encapsulation not in ENCAPSULATIONS:
            raise ApiError(
                400,
                "INVALID_ARGUMENT",
                f"encapsulation must be one of {', '.join(ENCAPSULATIONS)}.",
                details=[{"field": "encapsulation"}],
            )
        live = node.calls.live_call(call.id)
        if live is None or not live.is_up:
            raise ApiError(
                409, "CALL_STATE_INVALID", "The call has no media to stream (not answered or ended)."
            )
    except ApiError as err:
        await websocket.send_denial_response(envelope(as_request, err))
        return
    await websocket.accept()
    await MediaStreamSession(websocket, live, live, encapsulation).run()


async def _hangup(records: CallRecords, calls: CallManager, call: Call) -> None:
    """Start a local hangup: ``canceling``/``terminating`` now, ``hangup`` when the leg has ended."""
    if call.status in (Status.HANGUP, Status.TERMINATING, Status.CANCELING):
        return
    await records.set_status(call.id, local_hangup_status(call.status, call.direction))
    await calls.hangup(call.id, "normal")


async def _settled(records: CallRecords, call_id: uuid.UUID, customer_id: uuid.UUID) -> Call:
    """The call after a hangup request, waiting briefly so the answer usually shows ``hangup``."""
    for _ in range(20):
        c = check_owned(await records.get(call_id), customer_id, NOT_FOUND)
        if c.status == Status.HANGUP:
            break
        await asyncio.sleep(0.05)
    return c


@router.post("/calls/{call_id}/hangup", summary="Hang up a call")
async def hangup_call(
    call_id: str, principal: PrincipalDep, records: CallRecordsDep, calls: CallManagerDep
) -> dict[str, Any]:
    cid = parse_id(call_id)
    c = check_owned(await records.get(cid), principal.customer_id, NOT_FOUND)
    await _hangup(records, calls, c)
    return call_to_api(await _settled(records, cid, principal.customer_id))


@router.delete("/calls/{call_id}", summary="Hang up (if live) and delete a call")
async def delete_call(
    call_id: str, principal: PrincipalDep, records: CallRecordsDep, calls: CallManagerDep
) -> dict[str, Any]:
    cid = parse_id(call_id)
    c = check_owned(await records.get(cid), principal.customer_id, NOT_FOUND)
    await _hangup(records, calls, c)
    c = await _settled(records, cid, principal.customer_id)
    return call_to_api(await records.soft_delete(c))


@router.get("/groupcalls", summary="List groupcalls")
async def list_groupcalls(principal: PrincipalDep, db: DbDep, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(
            session, Groupcall, page, customer_id=principal.customer_id, to_api=groupcall_to_api
        )


@router.get("/groupcalls/{groupcall_id}", summary="Get a groupcall")
async def get_groupcall(groupcall_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    async with db.session() as session:
        g = await get_owned(
            session, Groupcall, parse_id(groupcall_id), principal.customer_id, "GROUPCALL_NOT_FOUND"
        )
        return groupcall_to_api(g)
