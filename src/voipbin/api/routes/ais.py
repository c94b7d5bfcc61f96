"""``/v1.0/ais``: AI configurations. Providers are checked against the registry at write time (400, not a
failure mid-call); ``engine_key`` is encrypted at rest and only ever returned masked."""

from __future__ import annotations

import secrets
import uuid
from functools import partial
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.ai import registry as llm_registry
from voipbin.ai.session.tools import refused_tools
from voipbin.api.deps import DbDep, EncryptorDep, PageDep, PrincipalDep, SettingsDep, parse_id
from voipbin.api.errors import ApiError
from voipbin.api.repo import change_owned, get_owned_api, list_page
from voipbin.security import Encryptor, mask
from voipbin.serialize import timestamps, uid
from voipbin.speech import registry as speech_registry
from voipbin.speech.language_check import UnsupportedLanguage, check_languages
from voipbin.store.tables import AI, ZERO_UUID

router = APIRouter(prefix="/v1.0", tags=["ais"])
SCRIPTED_NOTICE = (
    "The default engine offline.scripted is a demo rule table, not a language model: it ignores "
    "initial_prompt and answers a few fixed phrases (otherwise 'You said: ...'). For a real model set "
    "VOIPBIN_DEFAULT_ENGINE_MODEL=openai.gpt-4o-mini with VOIPBIN_OPENAI_API_KEY, or a local "
    "OpenAI-compatible server: VOIPBIN_DEFAULT_ENGINE_MODEL=ollama.<model> with VOIPBIN_OLLAMA_BASE_URL."
)
NOT_FOUND = "AI_NOT_FOUND"

TOOL_NAMES = frozenset(
    {
        "connect_call",
        "create_call",
        "send_email",
        "send_message",
        "stop_media",
        "stop_service",
        "stop_flow",
        "set_variables",
        "get_variables",
        "get_aicall_messages",
        "search_knowledge",
        "get_correlation",
        "get_resource",
        "describe_action",
        "case_create",
    }
)


def ai_to_api(encryptor: Encryptor, a: AI) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": uid(a.id),
        "customer_id": uid(a.customer_id),
        "type": a.type,
        "is_insight_active": False,
        "engine_model": a.engine_model,
        "parameter": a.parameter or {},
        "engine_key": mask(encryptor.decrypt(a.engine_key_enc)),
        "rag_id": uid(a.rag_id),
        "init_prompt": a.init_prompt,
        "current_prompt_history_id": uid(ZERO_UUID),
        "tts_type": a.tts_type,
        "tts_voice_id": a.tts_voice_id,
        "stt_type": a.stt_type,
        "stt_language": a.stt_language,
        "smart_turn_enabled": a.smart_turn_enabled,
        "auto_aicall_audit_enabled": a.auto_aicall_audit_enabled,
        "tool_names": a.tool_names or [],
        "direct_hash": a.direct_hash,
        **timestamps(a),
    }
    if a.name:
        out["name"] = a.name
    if a.detail:
        out["detail"] = a.detail
    if a.vad_config:
        out["vad_config"] = a.vad_config
    return out


class VadConfig(BaseModel):
    confidence: float | None = Field(default=None, ge=0, le=1)
    start_secs: float | None = Field(default=None, ge=0, le=30)
    stop_secs: float | None = Field(default=None, ge=0, le=30)
    min_volume: float | None = Field(default=None, ge=0, le=1)


class AIWrite(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    detail: str | None = Field(default=None, max_length=10_000)
    type: Literal["normal", "insight"] | None = None
    engine_model: str | None = Field(default=None, max_length=255)
    engine_key: str | None = Field(default=None, max_length=4096)
    parameter: dict[str, Any] | None = None
    rag_id: uuid.UUID | None = None
    init_prompt: str | None = Field(default=None, max_length=100_000)
    tts_type: str | None = Field(default=None, max_length=32)
    tts_voice_id: str | None = Field(default=None, max_length=255)
    stt_type: str | None = Field(default=None, max_length=32)
    stt_language: str | None = Field(default=None, max_length=32)
    vad_config: VadConfig | None = None
    tool_names: list[str] | None = Field(default=None, max_length=64)
    auto_aicall_audit_enabled: bool | None = None


def _field_error(field: str, exc: Exception) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", f"Invalid {field}: {exc}", details=[{"field": field}])


def validate_ai(a: AI, engine_key: str, models: llm_registry.ModelLocations) -> None:
    """Check the merged configuration: providers exist, run here, and have a key (here or platform-wide).

    Empty ``tts_type``/``stt_type``/``engine_model`` mean the node's defaults, checked when it starts.
    """
    if a.engine_model:
        try:
            llm_registry.parse_engine_model(a.engine_model, models)
            llm_registry.check_llm_credentials(a.engine_model, engine_key or None, models)
        except ValueError as exc:
            raise _field_error("engine_model", exc) from None
    for field, validate in (
        ("tts_type", speech_registry.validate_tts_type),
        ("stt_type", speech_registry.validate_stt_type),
    ):
        try:
            validate(getattr(a, field))
        except ValueError as exc:
            raise _field_error(field, exc) from None
    try:
        check_languages(tts_type=a.tts_type, stt_type=a.stt_type, language=a.stt_language)
    except UnsupportedLanguage as exc:
        raise _field_error("stt_language", exc) from None
    try:
        speech_registry.check_speech_credentials(a.tts_type, a.stt_type)
    except ValueError as exc:
        raise _field_error("tts_type" if "tts" in str(exc).lower() else "stt_type", exc) from None
    names = a.tool_names or []
    if names == ["all"]:
        if a.type == "insight":
            raise ApiError(400, "INVALID_TOOL_NAMES", "tool_names 'all' is not valid for insight AIs.")
    elif unknown := sorted(set(names) - TOOL_NAMES):
        raise ApiError(
            400,
            "INVALID_TOOL_NAMES",
            f"Unknown tool names: {', '.join(unknown)}.",
            details=[{"field": "tool_names"}],
        )
    elif refused := refused_tools(names):
        raise ApiError(
            400,
            "UNSUPPORTED_TOOL_NAMES",
            "; ".join(f"tool {name} cannot run here: {why}" for name, why in refused.items()) + ".",
            details=[{"field": "tool_names", "tool": name} for name in refused],
        )


def apply_write(encryptor: Encryptor, a: AI, body: AIWrite) -> str:
    """Copy the fields the client sent onto the row; returns the effective (plaintext) engine key."""
    data = body.model_dump(exclude_unset=True)
    for name in (
        "name",
        "detail",
        "type",
        "engine_model",
        "init_prompt",
        "tts_type",
        "tts_voice_id",
        "stt_type",
        "stt_language",
        "auto_aicall_audit_enabled",
    ):
        if data.get(name) is not None:
            setattr(a, name, data[name])
    if body.parameter is not None:
        a.parameter = body.parameter
    if body.rag_id is not None:
        a.rag_id = body.rag_id
    if body.tool_names is not None:
        a.tool_names = body.tool_names
    if body.vad_config is not None:
        a.vad_config = body.vad_config.model_dump(exclude_none=True)
    if body.engine_key is not None:
        a.engine_key_enc = encryptor.encrypt(body.engine_key)
    return encryptor.decrypt(a.engine_key_enc)


@router.post("/ais", summary="Create an AI configuration")
async def create_ai(
    body: AIWrite, principal: PrincipalDep, db: DbDep, encryptor: EncryptorDep, settings: SettingsDep
) -> dict[str, Any]:
    a = AI(
        customer_id=principal.customer_id,
        type="normal",
        direct_hash=secrets.token_hex(12),
        parameter={},
        tool_names=[],
    )
    for name in (
        "name",
        "detail",
        "engine_model",
        "init_prompt",
        "tts_type",
        "tts_voice_id",
        "stt_type",
        "stt_language",
    ):
        setattr(a, name, "")
    a.engine_key_enc = ""
    validate_ai(a, apply_write(encryptor, a, body), llm_registry.ModelLocations.from_settings(settings))
    async with db.session() as session:
        session.add(a)
        await session.commit()
    return ai_to_api(encryptor, a)


@router.get("/ais", summary="List AI configurations")
async def list_ais(
    principal: PrincipalDep, db: DbDep, encryptor: EncryptorDep, page: PageDep
) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(
            session, AI, page, customer_id=principal.customer_id, to_api=partial(ai_to_api, encryptor)
        )


@router.get("/ais/{ai_id}", summary="Get an AI configuration")
async def get_ai(ai_id: str, principal: PrincipalDep, db: DbDep, encryptor: EncryptorDep) -> dict[str, Any]:
    return await get_owned_api(
        db, AI, parse_id(ai_id), principal.customer_id, NOT_FOUND, partial(ai_to_api, encryptor)
    )


@router.put("/ais/{ai_id}", summary="Update an AI configuration")
async def put_ai(
    ai_id: str,
    body: AIWrite,
    principal: PrincipalDep,
    db: DbDep,
    encryptor: EncryptorDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    models = llm_registry.ModelLocations.from_settings(settings)

    def change(a: AI, _: AsyncSession) -> None:
        validate_ai(a, apply_write(encryptor, a, body), models)

    return await change_owned(
        db, AI, parse_id(ai_id), principal.customer_id, NOT_FOUND, change, partial(ai_to_api, encryptor)
    )


@router.delete("/ais/{ai_id}", summary="Delete an AI configuration")
async def delete_ai(
    ai_id: str, principal: PrincipalDep, db: DbDep, encryptor: EncryptorDep
) -> dict[str, Any]:
    return await change_owned(
        db,
        AI,
        parse_id(ai_id),
        principal.customer_id,
        NOT_FOUND,
        None,
        partial(ai_to_api, encryptor),
        delete=True,
    )


@router.post("/ais/{ai_id}/direct-hash-regenerate", summary="Regenerate an AI's direct hash")
async def regenerate_ai_hash(
    ai_id: str, principal: PrincipalDep, db: DbDep, encryptor: EncryptorDep
) -> dict[str, Any]:
    def change(a: AI, _: AsyncSession) -> None:
        a.direct_hash = secrets.token_hex(12)

    return await change_owned(
        db, AI, parse_id(ai_id), principal.customer_id, NOT_FOUND, change, partial(ai_to_api, encryptor)
    )


@router.get("/ai_models", summary="LLM providers and models this installation can run")
async def list_ai_models(principal: PrincipalDep, settings: SettingsDep) -> dict[str, Any]:
    default = settings.default_engine_model
    return {
        "result": llm_registry.list_llm_models(llm_registry.ModelLocations.from_settings(settings)),
        "speech": speech_registry.list_speech_providers(settings.default_tts_type, settings.default_stt_type),
        "default_engine_model": default,
        "default_engine_notice": SCRIPTED_NOTICE if default == "offline.scripted" else "",
    }
