"""Options of the AI and transcription actions: ai, ai_talk, ai_task, ai_summary, transcribe_*.

Two dialects are accepted and normalised to one internal form:

* VoIPBIN's: ``ai_talk``/``ai_task`` reference a pre-created AI (``assistance_type`` + ``assistance_id``,
  or the deprecated ``ai_id``); ``ai_summary`` takes ``reference_type``/``reference_id``.
* The seed tutorial's: ``ai``/``ai_talk`` configured inline (``initial_prompt``, ``language``,
  ``voice_type`` and optionally engine/TTS/STT settings), ``ai_summary`` with
  ``source_type``/``source_id``/``real_time`` and ``transcribe_start`` with ``real_time``.

Inline configuration is first-class here (VoIPBIN ignores it). An AI action needs either an inline
``initial_prompt`` or an AI reference, so a missing prompt is a 400 as the seed's troubleshooting says.
"""

import re
from typing import Annotated, Any

from pydantic import Field, model_validator

from voipbin.models.action_options.base import ActionOption, require
from voipbin.models.action_options.fields import Language, VarBool, VarStr, VarUuid, int_in, matching, one_of

# "<provider>.<model>", e.g. openai.gpt-4o; whether the provider/model exists is the provider
# registry's call (pass an option_check to validate_actions).
ENGINE_MODEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*\.[^\s.][^\s]*$")
EngineModel = Annotated[str, matching(ENGINE_MODEL_RE.pattern, "'<provider>.<model>', e.g. openai.gpt-4o")]
SummaryReferenceType = Annotated[str, one_of("call", "conference", "transcribe", "recording")]
TranscribeProvider = Annotated[str, one_of("gcp", "aws")]
TranscribeDirection = Annotated[str, one_of("in", "out", "both")]


class VadSettings(ActionOption):
    confidence: float | None = Field(default=None, ge=0, le=1)
    start_secs: float | None = Field(default=None, ge=0, le=30)
    stop_secs: float | None = Field(default=None, ge=0, le=30)
    min_volume: float | None = Field(default=None, ge=0, le=1)


class _Assistance(ActionOption):
    assistance_type: Annotated[str, one_of("ai", "team")] = ""
    assistance_id: VarUuid = None
    ai_id: VarUuid = None  # deprecated VoIPBIN alias of assistance_type=ai + assistance_id

    @model_validator(mode="after")
    def _fold_ai_id(self) -> "_Assistance":
        if self.assistance_id is None and self.ai_id is not None:
            self.assistance_id = self.ai_id
            self.assistance_type = self.assistance_type or "ai"
        elif self.assistance_id is not None and not self.assistance_type:
            self.assistance_type = "ai"
        return self


class AITaskOption(_Assistance):
    def check(self, field: str) -> None:
        require(self.assistance_id is not None, f"{field}.assistance_id", "the AI (or team) id is required")


class AIOption(_Assistance):
    """``ai`` and ``ai_talk``: an AI voice conversation on the call."""

    duration: Annotated[int | str, int_in(what="a duration in seconds")] = 0
    initial_prompt: VarStr = ""
    language: Language = ""
    voice_type: Annotated[str, one_of("male", "female", "neutral")] = ""
    engine_model: EngineModel = ""
    tts_type: VarStr = ""
    tts_voice_id: VarStr = ""
    stt_type: VarStr = ""
    stt_language: Language = ""
    tool_names: list[VarStr] = Field(default_factory=list)
    # Extensions of ours: the AI speaks first (True: the LLM opens; a string: said as is), and the AI
    # config's VAD settings inline (VoIPBIN's vad_config ranges).
    greeting: bool | str = False
    vad_config: VadSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _init_prompt_alias(cls, data: Any) -> Any:
        # The AI config resource calls it init_prompt; accept that spelling inline too.
        if isinstance(data, dict) and data.get("initial_prompt") in (None, "") and "init_prompt" in data:
            data = {**data, "initial_prompt": data["init_prompt"]}
        return data

    def check(self, field: str) -> None:
        require(
            self.initial_prompt.strip() != "" or self.assistance_id is not None,
            f"{field}.initial_prompt",
            "expected an inline initial_prompt or an assistance_id/ai_id of an AI created with POST /ais",
        )


class AISummaryOption(ActionOption):
    reference_type: SummaryReferenceType = ""
    reference_id: VarUuid = None
    language: Language = ""
    on_end_flow_id: VarUuid = None
    real_time: VarBool = False

    @model_validator(mode="before")
    @classmethod
    def _seed_names(cls, data: Any) -> Any:
        # Seed spelling: source_type/source_id. VoIPBIN's reference_* win when both are given.
        if isinstance(data, dict):
            data = dict(data)
            for seed, voipbin in (("source_type", "reference_type"), ("source_id", "reference_id")):
                if data.get(voipbin) in (None, "") and data.get(seed) not in (None, ""):
                    data[voipbin] = data[seed]
        return data


class TranscribeOption(ActionOption):
    """``transcribe_start`` and ``transcribe_recording``."""

    language: Language = ""
    provider: TranscribeProvider = ""
    direction: TranscribeDirection = ""
    on_end_flow_id: VarUuid = None
    real_time: VarBool = False  # seed: deliver transcripts while the call is up (always true here)
