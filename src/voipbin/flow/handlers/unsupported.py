"""Action types this engine does not run yet, each with what it would need.

They are registered as "unsupported" markers: running one ends the activeflow with a clear logged error
and hangs the call up with reason ``failed`` — never a silent skip. A module that implements one of them
registers a real handler, which replaces the marker.
"""

from __future__ import annotations

from voipbin.flow.handlers.base import ActionContext, ActionFailed, HandlerRegistry, Outcome
from voipbin.models.actions import ACTION_TYPES

NOT_YET: dict[str, str] = {
    "ai_task": "headless AI tasks",
    "transcribe_recording": "recording transcription",
    "amd": "answering machine detection",
    "beep": "beep playback",
    "echo": "media echo",
    "stream_echo": "media echo",
    "mute": "call muting",
    "call": "dialing new calls",
    "confbridge_join": "conference bridges",
    "conference_join": "conferences",
    "queue_join": "queues",
    "block": "blocking until an external continue",
    "condition_call_digits": "the deprecated digit condition (use branch or condition_variable)",
    "condition_call_status": "the deprecated call status condition",
    "message_send": "SMS",
    "email_send": "email",
    "conversation_send": "conversations",
    "case_create": "CRM cases",
}


async def not_supported(ctx: ActionContext) -> Outcome:
    need = NOT_YET.get(ctx.action.type, "")
    suffix = f" (needs {need})" if need else ""
    raise ActionFailed(f"action type {ctx.action.type!r} is not yet supported by this engine{suffix}")


def register_unsupported(registry: HandlerRegistry) -> None:
    """Mark every known action type without a real handler (runs after every handler is registered)."""
    for type_ in sorted(ACTION_TYPES):
        registry.register(type_, not_supported, needs_call=False, supported=False)
