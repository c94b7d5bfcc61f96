"""Pooled HTTP clients for the REST speech adapters, one per event loop and provider configuration.

A TTS/STT object lives for one utterance; giving each its own client would pay a new TCP+TLS
handshake to the provider per utterance (and ~60 ms of SSL context set-up on this machine, see
docs/bench-speech.md). Pooled clients reuse connections across utterances and calls. Barge-in
still hangs up at once: closing a streamed response before its end closes that connection instead of
returning it to the pool. Timeouts are passed per request, so one client serves all timeouts.
Clients are keyed by loop because httpx connections belong to the loop that opened them.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import TypeVar

import httpx

T = TypeVar("T")

_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, object]] = (
    weakref.WeakKeyDictionary()
)


def loop_shared(key: Hashable, factory: Callable[[], T]) -> T:
    """The object made by ``factory`` for ``key`` on the running loop (made on first use)."""
    per_loop = _by_loop.setdefault(asyncio.get_running_loop(), {})
    obj = per_loop.get(key)
    if obj is None or _is_closed(obj):
        obj = per_loop[key] = factory()
    return obj  # type: ignore[return-value]


def _is_closed(obj: object) -> bool:
    closed = getattr(obj, "is_closed", False)  # httpx: property; openai SDK: method
    return bool(closed() if callable(closed) else closed)


def shared_httpx() -> httpx.AsyncClient:
    """The loop's pooled ``httpx`` client (no default timeout: each request passes its own)."""
    return loop_shared("httpx", lambda: httpx.AsyncClient(timeout=None))


async def close_shared_clients() -> None:
    """Close the running loop's pooled clients (application shutdown)."""
    for obj in _by_loop.pop(asyncio.get_running_loop(), {}).values():
        close = getattr(obj, "aclose", None) or getattr(obj, "close", None)
        if close is not None:
            await close()
