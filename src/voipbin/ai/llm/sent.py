"""Tell the caller of :meth:`LLM.stream` the moment its request has left for the provider.

The AI session does its bookkeeping for a turn (the caller's aimessage: serialization, its event,
the outbox row) only once the model is working on the request, so none of it delays the request.
The SDKs have no such callback; their HTTP stack (httpx -> httpcore) has one: httpcore's ``trace``
request extension reports ``send_request_body.complete``. :func:`notifying_hooks` gives an SDK's
``DefaultAsyncHttpxClient`` a request hook that attaches it while :func:`notify_sent_during` is
active in the current task (a context variable: one client serves every stream of a session).
Adapters without it are notified by :meth:`LLM.stream` once their first event came (or failed).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

log = logging.getLogger(__name__)

_on_sent: ContextVar[Callable[[], None] | None] = ContextVar("llm_request_sent", default=None)


def call_once(callback: Callable[[], None] | None) -> Callable[[], None]:
    """``callback`` at most once however often it is called; its failure is logged, never raised
    (it runs inside the HTTP client's send: bookkeeping must not fail the request)."""
    called = callback is None

    def once() -> None:
        nonlocal called
        if not called:
            called = True
            assert callback is not None
            try:
                callback()
            except Exception:
                log.exception("the request-sent callback failed")

    return once


@contextlib.contextmanager
def notify_sent_during(on_sent: Callable[[], None] | None) -> Iterator[None]:
    """Requests sent by this task inside the block call ``on_sent`` once their body is written."""
    token = _on_sent.set(on_sent)
    try:
        yield
    finally:
        _on_sent.reset(token)


async def _attach_trace(request: Any) -> None:
    on_sent = _on_sent.get()
    if on_sent is None:
        return

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name.endswith("send_request_body.complete"):
            on_sent()

    request.extensions = {**request.extensions, "trace": trace}


def notifying_hooks() -> dict[str, list[Callable[[Any], Awaitable[None]]]]:
    """``event_hooks`` for an SDK's async httpx client."""
    return {"request": [_attach_trace]}
