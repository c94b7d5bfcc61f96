"""AI voice conversations on a call (actions ``ai`` and ``ai_talk``), Pipecat-style.

Small single-purpose parts, each cancellable, wired in one place (:mod:`.pipeline`):

* :mod:`.config` — AI row + inline options + defaults, validated before the first word;
* :mod:`.listener` — inbound audio -> VAD start/stop + STT finals;
* :mod:`.turns` — turn-taking and barge-in decisions (sans-I/O);
* :mod:`.responder` — LLM stream -> TTS (clause by clause) -> playout;
* :mod:`.tools` — VoIPBIN's AI tools (connect_call, stop_service, ...; the refused ones named);
* :mod:`voipbin.ai.calls` — the aicall and its messages (rows, ``aicall_*`` / ``aimessage_*`` events).
"""

from voipbin.ai.calls import AICallRecord

from .config import AIConfigError, AIDeps, SessionConfig, resolve_config
from .pipeline import AISession, BargeIn, SessionMetrics

__all__ = [
    "AICallRecord",
    "AIConfigError",
    "AIDeps",
    "AISession",
    "BargeIn",
    "SessionConfig",
    "SessionMetrics",
    "resolve_config",
]
