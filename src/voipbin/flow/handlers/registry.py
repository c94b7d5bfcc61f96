"""The default handler registry every handler module registers into (``@REGISTRY.handler(...)``)."""

from voipbin.flow.handlers.base import HandlerRegistry

REGISTRY = HandlerRegistry()
