"""Action handlers, one module per action family, all registered in ``REGISTRY``.

To add handlers (e.g. talk, ai_talk, transcribe_*): write a module that decorates its functions with
``@REGISTRY.handler("type")`` and import it below, before ``register_unsupported()``.
"""

from voipbin.flow.handlers import (  # noqa: F401  (registration)
    ai,
    connect,
    control,
    dtmf,
    http,
    media,
    recording,
    speech,
    summary,
    transcribe,
)
from voipbin.flow.handlers.base import (
    CONTINUE,
    ActionContext,
    ActionFailed,
    Continue,
    End,
    Goto,
    HandlerRegistry,
    Outcome,
    Push,
)
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.flow.handlers.unsupported import register_unsupported

register_unsupported()

__all__ = [
    "CONTINUE",
    "REGISTRY",
    "ActionContext",
    "ActionFailed",
    "Continue",
    "End",
    "Goto",
    "HandlerRegistry",
    "Outcome",
    "Push",
]
