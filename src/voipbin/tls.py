"""One TLS client context for the whole process, built once and shared by every provider SDK client.

Each provider SDK (OpenAI, Anthropic, Gemini) otherwise builds its own ``ssl.SSLContext`` — loading
the CA bundle, ~16-17 ms of CPU holding the GIL — every time a client is constructed, which is once
per AI session, on the event loop, even for an ``http://`` base URL. That stalled the media clock at
every AI call start (issue 8). Here the context is built once (``prewarm`` runs it off the loop at
start-up) and handed to the SDKs as their ``verify=`` argument; an ``SSLContext`` is thread-safe
and may serve any number of connections. Same trust as the SDKs' default (``httpx2.create_ssl_context``).
"""

from __future__ import annotations

import ssl
import threading

import httpx2

_ctx: ssl.SSLContext | None = None
_lock = threading.Lock()


def client_ssl_context() -> ssl.SSLContext:
    """The shared client context (built on first use if ``prewarm`` did not run)."""
    global _ctx
    if _ctx is None:
        with _lock:
            if _ctx is None:
                _ctx = httpx2.create_ssl_context()
    return _ctx


def prewarm() -> None:
    """Build the context now (call from a worker thread at start-up, never per session)."""
    client_ssl_context()
