"""``/v1.0/flows``: stored action lists; actions are validated against their option models on write."""

from __future__ import annotations

import secrets
import uuid
from functools import partial
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.ai import registry as llm_registry
from voipbin.api.deps import DbDep, ModelsDep, OutboundDep, PageDep, PrincipalDep, parse_id
from voipbin.api.errors import ApiError
from voipbin.api.repo import change_owned, get_owned, get_owned_api, list_page
from voipbin.models.action_options.ai import AIOption
from voipbin.models.action_options.control import FetchOption, WebhookSendOption
from voipbin.models.action_options.media import ExternalMediaStartOption, PlayOption
from voipbin.models.actions import ActionValidationError, validate_actions
from voipbin.security.outbound import HTTP_SCHEMES, WS_SCHEMES, OutboundBlocked, OutboundPolicy, check_url
from voipbin.serialize import timestamps, uid
from voipbin.speech import registry as speech_registry
from voipbin.speech.language_check import check_languages
from voipbin.store.tables import ZERO_UUID, Flow

router = APIRouter(prefix="/v1.0", tags=["flows"])
NOT_FOUND = "FLOW_NOT_FOUND"
MAX_FLOWS_PER_CUSTOMER = 10_000


def flow_to_api(f: Flow) -> dict[str, Any]:
    return {
        "id": uid(f.id),
        "customer_id": uid(f.customer_id),
        "type": f.type,
        "name": f.name,
        "detail": f.detail,
        "actions": f.actions,
        "direct_hash": f.direct_hash,
        "on_complete_flow_id": uid(f.on_complete_flow_id),
        **timestamps(f),
    }


def check_inline_ai(
    path: str, type_: str, option: BaseModel, *, models: llm_registry.ModelLocations | None = None
) -> None:
    """Inline AI settings (the tutorial's ``ai`` / ``ai_talk`` options) are checked like ``POST /ais``:
    a provider that does not exist, cannot run here, or has no key is a 400 now, never a silent call."""
    if not isinstance(option, AIOption):
        return
    checks = []
    if option.engine_model and "${" not in option.engine_model:
        checks.append(
            ("engine_model", lambda: llm_registry.check_llm_credentials(option.engine_model, None, models))
        )
    for name, validate in (
        ("tts_type", speech_registry.validate_tts_type),
        ("stt_type", speech_registry.validate_stt_type),
    ):
        value = getattr(option, name)
        if value and "${" not in value:
            checks.append((name, partial(validate, value)))
    referenced = option.assistance_id is not None  # its engines are the AI's, checked when it runs
    checks.append(
        (
            "language",
            lambda: check_languages(
                tts_type=option.tts_type or (None if referenced else ""),
                stt_type=option.stt_type or (None if referenced else ""),
                language=option.language,
                stt_language=option.stt_language,
            ),
        )
    )
    for name, check in checks:
        try:
            check()
        except ValueError as exc:
            name = getattr(exc, "field", name)
            raise ActionValidationError(
                "INVALID_ARGUMENT", f"{path}.option.{name}", f"{path}.option.{name}: {exc}"
            ) from None


def _outbound_urls(type_: str, option: BaseModel) -> list[tuple[str, str, frozenset[str]]]:
    """(field, URL, allowed schemes) of the URLs an action makes the platform contact."""
    if isinstance(option, WebhookSendOption):
        return [("uri", option.uri, HTTP_SCHEMES)]
    if isinstance(option, FetchOption):
        return [("event_url", option.event_url, HTTP_SCHEMES)]
    if isinstance(option, PlayOption):
        return [
            (f"stream_urls[{i}]", url, HTTP_SCHEMES)
            for i, url in enumerate(option.stream_urls)
            if url.lower().startswith(("http:", "https:"))
        ]
    if isinstance(option, ExternalMediaStartOption):
        host = option.external_host
        if "://" in host:
            return [("external_host", host, WS_SCHEMES)]
        return [("external_host", f"udp://{host}", frozenset({"udp"}))]  # host:port for RTP
    return []


def check_outbound_urls(path: str, type_: str, option: BaseModel, *, policy: OutboundPolicy) -> None:
    """The SSRF guard's save-time check of an action's URLs (``${}`` URLs are checked when dialled)."""
    for name, url, schemes in _outbound_urls(type_, option):
        if not url or "${" in url:
            continue
        try:
            check_url(policy, url, schemes)
        except OutboundBlocked as exc:
            field = f"{path}.option.{name}"
            raise ActionValidationError("INVALID_ARGUMENT", field, f"{field}: {exc}") from None


def action_error(exc: ActionValidationError) -> ApiError:
    """An action/address validation failure in VoIPBIN's envelope, naming the field."""
    return ApiError(400, exc.reason, exc.message, details=[{"field": exc.field}])


def checked_actions(
    raw: Any,
    field: str = "actions",
    models: llm_registry.ModelLocations | None = None,
    outbound: OutboundPolicy | None = None,
) -> list[dict[str, Any]]:
    """Validated actions in their stored (API) form, or a 400 in VoIPBIN's envelope naming the field.
    ``models``: the node's local model locations (inline ``llama.*`` engine models are checked there);
    ``outbound``: the SSRF policy the actions' URLs are checked against (public addresses only if None)."""
    policy = outbound if outbound is not None else OutboundPolicy()

    def option_check(path: str, type_: str, option: BaseModel) -> None:
        check_inline_ai(path, type_, option, models=models)
        check_outbound_urls(path, type_, option, policy=policy)

    try:
        actions = validate_actions(raw, field, option_check=option_check)
    except ActionValidationError as exc:
        raise action_error(exc) from None
    return [a.to_api() for a in actions]


async def checked_flow_ref(
    session: AsyncSession, flow_id: uuid.UUID | None, customer_id: uuid.UUID
) -> uuid.UUID:
    if flow_id is None or flow_id == ZERO_UUID:
        return ZERO_UUID
    await get_owned(session, Flow, flow_id, customer_id, NOT_FOUND)
    return flow_id


class FlowCreate(BaseModel):
    name: str = Field(default="", max_length=255)
    detail: str = Field(default="", max_length=10_000)
    actions: list[Any] = Field(default_factory=list)
    on_complete_flow_id: uuid.UUID | None = None


class FlowUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    detail: str | None = Field(default=None, max_length=10_000)
    actions: list[Any] | None = None
    on_complete_flow_id: uuid.UUID | None = None


@router.post("/flows", summary="Create a flow")
async def create_flow(
    body: FlowCreate, principal: PrincipalDep, db: DbDep, models: ModelsDep, outbound: OutboundDep
) -> dict[str, Any]:
    actions = checked_actions(body.actions, models=models, outbound=outbound)
    async with db.session() as session:
        count = (
            await session.execute(
                select(func.count())
                .select_from(Flow)
                .where(
                    Flow.customer_id == principal.customer_id,
                    Flow.tm_delete.is_(None),
                    Flow.persist.is_(True),
                )
            )
        ).scalar_one()
        if count >= MAX_FLOWS_PER_CUSTOMER:
            raise ApiError(409, "FLOW_STATE_INVALID", f"At most {MAX_FLOWS_PER_CUSTOMER} flows per customer.")
        flow = Flow(
            customer_id=principal.customer_id,
            name=body.name,
            detail=body.detail,
            actions=actions,
            direct_hash=secrets.token_hex(12),
            on_complete_flow_id=await checked_flow_ref(
                session, body.on_complete_flow_id, principal.customer_id
            ),
        )
        session.add(flow)
        await session.commit()
        return flow_to_api(flow)


@router.get("/flows", summary="List flows")
async def list_flows(principal: PrincipalDep, db: DbDep, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(
            session, Flow, page, Flow.persist.is_(True), customer_id=principal.customer_id, to_api=flow_to_api
        )


@router.get("/flows/{flow_id}", summary="Get a flow")
async def get_flow(flow_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    return await get_owned_api(db, Flow, parse_id(flow_id), principal.customer_id, NOT_FOUND, flow_to_api)


@router.put("/flows/{flow_id}", summary="Update a flow")
async def put_flow(
    flow_id: str,
    body: FlowUpdate,
    principal: PrincipalDep,
    db: DbDep,
    models: ModelsDep,
    outbound: OutboundDep,
) -> dict[str, Any]:
    actions = (
        checked_actions(body.actions, models=models, outbound=outbound) if body.actions is not None else None
    )

    async def change(flow: Flow, session: AsyncSession) -> None:
        if body.name is not None:
            flow.name = body.name
        if body.detail is not None:
            flow.detail = body.detail
        if actions is not None:
            flow.actions = actions
        if "on_complete_flow_id" in body.model_fields_set:
            flow.on_complete_flow_id = await checked_flow_ref(
                session, body.on_complete_flow_id, principal.customer_id
            )

    return await change_owned(
        db, Flow, parse_id(flow_id), principal.customer_id, NOT_FOUND, change, flow_to_api
    )


@router.delete("/flows/{flow_id}", summary="Delete a flow")
async def delete_flow(flow_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    return await change_owned(
        db, Flow, parse_id(flow_id), principal.customer_id, NOT_FOUND, None, flow_to_api, delete=True
    )


@router.post("/flows/{flow_id}/direct-hash-regenerate", summary="Regenerate a flow's direct hash")
async def regenerate_flow_hash(flow_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    def change(flow: Flow, _: AsyncSession) -> None:
        flow.direct_hash = secrets.token_hex(12)

    return await change_owned(
        db, Flow, parse_id(flow_id), principal.customer_id, NOT_FOUND, change, flow_to_api
    )
