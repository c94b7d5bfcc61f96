"""What one AI conversation runs with: the AI row (``assistance_id``/``ai_id``) overlaid with the
action's inline options, platform defaults for the rest, and every check that can fail done *here*,
before the first word: an unknown AI, a bad engine model or a missing provider key fails the action
at once (the call is hung up ``failed`` with the reason) instead of leaving the caller in silence.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voipbin.ai import registry as llm_registry
from voipbin.ai.calls import AICalls
from voipbin.ai.session.tools import CreateCall, GetResource
from voipbin.config import Settings, provider_setting
from voipbin.flow.variables import substitute
from voipbin.models.action_options.ai import AIOption
from voipbin.security import Encryptor
from voipbin.speech import registry as speech_registry
from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.vad import VadConfig
from voipbin.store.db import Database
from voipbin.store.tables import AI


class AIConfigError(Exception):
    """The AI conversation cannot start; the message says why (shown as the flow error)."""


@dataclass(frozen=True)
class SessionConfig:
    engine_model: str
    engine_key: str | None = field(default=None, repr=False)
    init_prompt: str = ""
    parameter: Mapping[str, Any] = field(default_factory=dict)
    language: str = "en-US"  # "" = detect from the caller's speech
    voice_type: str = ""
    tts_type: str = ""
    tts_voice_id: str = ""
    stt_type: str = ""
    stt_language: str = ""
    vad: VadConfig = field(default_factory=VadConfig)
    tool_names: tuple[str, ...] = ()
    ai_id: uuid.UUID | None = None
    assistance_type: str = "ai"
    greeting: bool | str = False  # True: the LLM opens the call; a string: said verbatim
    smart_turn: bool = True  # the Smart Turn audio model joins the turn detector (see listener.py)


@dataclass(frozen=True)
class AIDeps:
    """What AI conversations need (handed in by the composition root)."""

    db: Database  # reads of the customer's AIs
    settings: Settings
    encryptor: Encryptor
    models: llm_registry.ModelLocations | None = None  # local GGUF models (llama.*, offline gemma)
    aicalls: AICalls | None = None  # the aicalls/aimessages owner (None: one is made per use, tests)
    # Ports of the tools that reach beyond the AI package (wired by the root; None: the tool fails).
    get_resource: GetResource | None = None
    create_call: CreateCall | None = None


async def load_ai(deps: AIDeps, customer_id: uuid.UUID, ai_id: uuid.UUID) -> AI:
    async with deps.db.session() as session:
        row = await session.get(AI, ai_id)
    if row is None or row.customer_id != customer_id or row.tm_delete is not None:
        raise AIConfigError(f"ai {ai_id} not found")
    return row


def default_tts_type(settings: Settings) -> str:
    """The voice of an AI that names no TTS: ElevenLabs once the platform has an ElevenLabs key (the
    tutorial's ``ai_talk`` and its ``voipbin.tts.elevenlabs.voice_id`` variable assume it), else the
    platform default (offline Piper)."""
    if provider_setting("elevenlabs", "API_KEY"):
        return "elevenlabs"
    return settings.default_tts_type


async def resolve_config(
    deps: AIDeps,
    customer_id: uuid.UUID,
    option: AIOption,
    variables: Mapping[str, str],
    raw_option: Mapping[str, Any] | None = None,
) -> SessionConfig:
    """Merge AI row + inline option + defaults and validate everything; raises :class:`AIConfigError`."""
    settings = deps.settings
    row: AI | None = None
    if option.assistance_id is not None:
        if option.assistance_type == "team":
            raise AIConfigError(
                "assistance_type 'team' is not supported; reference an AI (assistance_type 'ai')"
            )
        if not isinstance(option.assistance_id, uuid.UUID):  # a ${variable} that did not hold an id
            raise AIConfigError(f"assistance_id {option.assistance_id!r} is not an AI id")
        row = await load_ai(deps, customer_id, option.assistance_id)

    engine_model = option.engine_model or (row.engine_model if row else "") or settings.default_engine_model
    engine_key: str | None = None
    if row is not None and row.engine_key_enc:
        same_provider = engine_model.split(".", 1)[0] == (row.engine_model or "").split(".", 1)[0]
        if same_provider:  # an inline model of another provider must not get this AI's key
            engine_key = deps.encryptor.decrypt(row.engine_key_enc) or None
    try:
        llm_registry.parse_engine_model(engine_model, deps.models)
        llm_registry.check_llm_credentials(engine_model, engine_key, deps.models)
    except (llm_registry.InvalidEngineModel, llm_registry.MissingProviderKey) as exc:
        raise AIConfigError(str(exc)) from None

    # The inline prompt was substituted by the engine with the option; the AI row's is done here.
    prompt = option.initial_prompt or substitute(row.init_prompt if row else "", variables)
    # No language anywhere: "" (the STT detects it and the reply is spoken in the detected language).
    language = option.language or (row.stt_language if row else "")
    tts_type = option.tts_type or (row.tts_type if row else "") or default_tts_type(settings)
    stt_type = option.stt_type or (row.stt_type if row else "") or settings.default_stt_type
    stt_language = option.stt_language or option.language or (row.stt_language if row else "") or language
    try:
        speech_registry.validate_tts_type(tts_type)
        speech_registry.validate_stt_type(stt_type, language=stt_language)
        speech_registry.check_speech_credentials(tts_type, stt_type)
    except SpeechConfigError as exc:
        raise AIConfigError(str(exc)) from None
    raw = dict(raw_option or {})
    try:
        vad = VadConfig.from_dict(raw.get("vad_config") or (row.vad_config if row else None))
    except (TypeError, ValueError) as exc:
        raise AIConfigError(f"invalid vad_config: {exc}") from None
    smart_turn = settings.turn_model == "smart-turn" or bool(
        raw.get("smart_turn_enabled") or (row.smart_turn_enabled if row else False)
    )
    greeting = raw.get("greeting", False)
    if isinstance(greeting, str) and greeting.strip().lower() in ("true", "false"):
        greeting = greeting.strip().lower() == "true"
    return SessionConfig(
        engine_model=engine_model,
        engine_key=engine_key,
        init_prompt=prompt,
        parameter=dict(row.parameter or {}) if row else {},
        language=language,
        voice_type=option.voice_type,
        tts_type=tts_type,
        tts_voice_id=option.tts_voice_id or (row.tts_voice_id if row else ""),
        stt_type=stt_type,
        stt_language=stt_language,
        vad=vad,
        tool_names=tuple(option.tool_names or (row.tool_names if row else None) or ()),
        ai_id=row.id if row else None,
        greeting=greeting if isinstance(greeting, bool | str) else bool(greeting),
        smart_turn=smart_turn,
    )
