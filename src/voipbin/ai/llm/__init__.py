"""LLM interface (``base``) and one adapter module per provider family.

Adapters import their SDK at module import time, so import them lazily (the registry does):
``voipbin.ai.llm`` itself only re-exports the provider-neutral interface.
"""

from .base import (
    LLM,
    LLMAuthError,
    LLMBadRequest,
    LLMConnectionError,
    LLMError,
    LLMEvent,
    LLMRateLimited,
    LLMServerError,
    LLMTimeout,
    Message,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallEvent,
    Usage,
)

__all__ = [
    "LLM",
    "LLMAuthError",
    "LLMBadRequest",
    "LLMConnectionError",
    "LLMError",
    "LLMEvent",
    "LLMRateLimited",
    "LLMServerError",
    "LLMTimeout",
    "Message",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallEvent",
    "Usage",
]
