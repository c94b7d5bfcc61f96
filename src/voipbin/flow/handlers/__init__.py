"""Action handlers, one module per action family.

The core handlers (no collaborators beyond ``FlowDeps``) register into ``REGISTRY`` when imported. The
composition root starts from :func:`core_registry`, adds the handlers of the AI and transcription
packages (which close over their services), then marks what is left as unsupported.
"""

from voipbin.flow.handlers import (  # noqa: F401  (registration)
    connect,
    control,
    dtmf,
    external_media,
    http,
    media,
    recording,
    speech,
)
from voipbin.flow.handlers.base import (
    CONTINUE,
    ActionContext,
    ActionFailed,
    Continue,
    End,
    FlowDeps,
    Goto,
    HandlerRegistry,
    Outcome,
    Push,
)
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.flow.handlers.unsupported import register_unsupported


def core_registry() -> HandlerRegistry:
    """A fresh registry with the core handlers, to be extended and then finished with
    ``register_unsupported``."""
    return REGISTRY.copy()


__all__ = [
    "CONTINUE",
    "REGISTRY",
    "ActionContext",
    "ActionFailed",
    "Continue",
    "End",
    "FlowDeps",
    "Goto",
    "HandlerRegistry",
    "Outcome",
    "Push",
    "core_registry",
    "register_unsupported",
]
