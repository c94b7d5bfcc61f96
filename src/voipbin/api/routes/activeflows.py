"""``/v1.0/activeflows``: running flows. ``POST`` starts one without a call (reference_type ``api``).

An API activeflow has no call, so call actions (answer, play, digits ...) end it with a clear error;
flow control, variables, fetch, fetch_flow, webhook_send and sleep work.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from voipbin.api.deps import DbDep, FlowsDep, ModelsDep, OutboundDep, PageDep, PrincipalDep, parse_id
from voipbin.api.errors import ApiError, check_owned
from voipbin.api.outbound import check_saved_url
from voipbin.api.repo import get_owned, list_page
from voipbin.api.routes.flows import checked_actions
from voipbin.flow.engine import FlowEngine
from voipbin.flow.records import activeflow_to_api
from voipbin.flow.variables import user_variables
from voipbin.store.tables import ZERO_UUID, Activeflow, Flow

router = APIRouter(prefix="/v1.0", tags=["activeflows"])
NOT_FOUND = "ACTIVEFLOW_NOT_FOUND"


class ActiveflowCreate(BaseModel):
    id: uuid.UUID | None = None
    flow_id: uuid.UUID | None = None
    actions: list[Any] | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    webhook_uri: str = Field(default="", max_length=2048)
    webhook_method: Literal["POST", "GET", "PUT", "DELETE", ""] = ""

    @field_validator("variables")
    @classmethod
    def _variables(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > 100:
            raise ValueError("at most 100 variables")
        if any(len(val) > 32_768 for val in v.values()):
            raise ValueError("a variable value may be at most 32 KB")
        if sum(len(k) + len(val) for k, val in v.items()) > 65_536:
            raise ValueError("variables may total at most 64 KB")
        return user_variables(v)

    @field_validator("webhook_uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v


@router.post("/activeflows", summary="Start an activeflow (reference_type api)")
async def create_activeflow(
    body: ActiveflowCreate,
    principal: PrincipalDep,
    db: DbDep,
    flows: FlowsDep,
    models: ModelsDep,
    outbound: OutboundDep,
) -> dict[str, Any]:
    await check_saved_url(outbound, body.webhook_uri, "webhook_uri")  # SSRF guard
    customer_id = principal.customer_id
    async with db.session() as session:
        if body.id is not None and await session.get(Activeflow, body.id) is not None:
            raise ApiError(
                400, "INVALID_ARGUMENT", "An activeflow with this id exists.", details=[{"field": "id"}]
            )
        if body.flow_id is not None and body.flow_id != ZERO_UUID:
            await get_owned(session, Flow, body.flow_id, customer_id, "FLOW_NOT_FOUND")
            flow_id = body.flow_id
        elif body.actions is not None:
            flow = Flow(
                customer_id=customer_id,
                name="tmp",
                detail="tmp activeflow flow",
                actions=checked_actions(body.actions, models=models, outbound=outbound),
                persist=False,
            )
            session.add(flow)
            await session.commit()
            flow_id = flow.id
        else:
            raise ApiError(
                400, "INVALID_ARGUMENT", "Give flow_id or actions.", details=[{"field": "actions"}]
            )
    row = await flows.create(
        customer_id,
        reference_type="api",
        flow_id=flow_id,
        variables=body.variables,
        activeflow_id=body.id,
        webhook_uri=body.webhook_uri,
        webhook_method=body.webhook_method or ("POST" if body.webhook_uri else ""),
    )
    return activeflow_to_api(row)


@router.get("/activeflows", summary="List activeflows")
async def list_activeflows(
    principal: PrincipalDep, db: DbDep, flows: FlowsDep, page: PageDep
) -> dict[str, Any]:
    """Stored rows; running activeflows of this node answer with their live state."""

    def to_api(row: Activeflow) -> dict[str, Any]:
        return activeflow_to_api(flows.live_row(row.id) or row)

    async with db.session() as session:
        return await list_page(session, Activeflow, page, customer_id=principal.customer_id, to_api=to_api)


@router.get("/activeflows/{activeflow_id}", summary="Get an activeflow")
async def get_activeflow(activeflow_id: str, principal: PrincipalDep, flows: FlowsDep) -> dict[str, Any]:
    row = await flows.get(parse_id(activeflow_id))
    return activeflow_to_api(check_owned(row, principal.customer_id, NOT_FOUND))


async def _stop(flows: FlowEngine, activeflow_id: str, customer_id: uuid.UUID) -> uuid.UUID:
    af_id = parse_id(activeflow_id)
    check_owned(await flows.get(af_id), customer_id, NOT_FOUND)
    await flows.stop(af_id)
    return af_id


@router.post("/activeflows/{activeflow_id}/stop", summary="Stop an activeflow")
async def stop_activeflow(activeflow_id: str, principal: PrincipalDep, flows: FlowsDep) -> dict[str, Any]:
    af_id = await _stop(flows, activeflow_id, principal.customer_id)
    return activeflow_to_api(check_owned(await flows.get(af_id), principal.customer_id, NOT_FOUND))


@router.delete("/activeflows/{activeflow_id}", summary="Delete an activeflow (stops it first)")
async def delete_activeflow(activeflow_id: str, principal: PrincipalDep, flows: FlowsDep) -> dict[str, Any]:
    af_id = await _stop(flows, activeflow_id, principal.customer_id)
    row = await flows.records.soft_delete(af_id)  # ownership checked by _stop
    assert row is not None
    return activeflow_to_api(row)
