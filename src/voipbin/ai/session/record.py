"""The AIcall record of one conversation: its status, its messages, and the events that report them.

Shapes follow VoIPBIN's AIcall and AI message (``aicall_status_*``, ``aimessage_created``). The
record lives in memory for the length of the call and in the events; there is no ``/aicalls``
table yet, so the events are the durable transcript (webhooks / WebSocket).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from voipbin.ai.llm.base import ToolCall
from voipbin.events.bus import EventBus

from .config import SessionConfig

ZERO = "00000000-0000-0000-0000-000000000000"
_STATUS_EVENT = {"initiating": "aicall_status_initializing"}  # VoIPBIN's own naming mismatch
_DIRECTION = {"user": "incoming", "assistant": "outgoing", "tool": "outgoing"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class AICallRecord:
    events: EventBus
    customer_id: uuid.UUID
    activeflow_id: uuid.UUID
    call_id: uuid.UUID
    cfg: SessionConfig
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: str = "initiating"
    messages: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)  # ours: per-turn latency, barge-ins
    tm_create: str = field(default_factory=_now)
    tm_update: str | None = None
    tm_end: str | None = None

    def to_api(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "id": str(self.id),
            "customer_id": str(self.customer_id),
            "assistance_type": cfg.assistance_type,
            "assistance_id": str(cfg.ai_id) if cfg.ai_id else ZERO,
            "ai_engine_model": cfg.engine_model,
            "ai_tts_type": cfg.tts_type,
            "ai_tts_voice_id": cfg.tts_voice_id,
            "ai_stt_type": cfg.stt_type,
            "ai_vad_config": {
                "confidence": cfg.vad.confidence,
                "start_secs": cfg.vad.start_secs,
                "stop_secs": cfg.vad.stop_secs,
                "min_volume": cfg.vad.min_volume,
            },
            "parameter": dict(cfg.parameter),
            "activeflow_id": str(self.activeflow_id),
            "reference_type": "call",
            "reference_id": str(self.call_id),
            "confbridge_id": ZERO,
            "current_member_id": ZERO,
            "status": self.status,
            "stt_language": cfg.stt_language,
            "metadata": dict(self.metadata),
            "tm_end": self.tm_end,
            "tm_create": self.tm_create,
            "tm_update": self.tm_update,
            "tm_delete": None,
        }

    def set_status(self, status: str) -> None:
        self.status = status
        self.tm_update = _now()
        if status == "terminated":
            self.tm_end = self.tm_update
        event = _STATUS_EVENT.get(status, f"aicall_status_{status}")
        self.events.publish(self.customer_id, event, self.to_api())

    def add_message(
        self,
        role: str,
        content: str,
        *,
        tool_calls: tuple[ToolCall, ...] = (),
        tool_call_id: str | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "customer_id": str(self.customer_id),
            "aicall_id": str(self.id),
            "activeflow_id": str(self.activeflow_id),
            "active_ai_id": str(self.cfg.ai_id) if self.cfg.ai_id else ZERO,
            "role": role,
            "content": content,
            "direction": _DIRECTION.get(role, ""),
            "tm_create": _now(),
        }
        if tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in tool_calls
            ]
        if tool_call_id:
            message["tool_call_id"] = tool_call_id
        self.messages.append(message)
        self.events.publish(self.customer_id, "aimessage_created", message)
        return message
