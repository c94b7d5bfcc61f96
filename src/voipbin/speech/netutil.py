"""Shared mapping of transport failures (websockets, httpx, SDK errors) onto typed speech errors."""

from __future__ import annotations

from voipbin.speech.errors import (
    SpeechAuthError,
    SpeechConnectionError,
    SpeechError,
    SpeechTimeout,
    error_for_status,
)


def ws_url(base_url: str) -> str:
    """``https://host`` -> ``wss://host`` (and http -> ws); ws(s) URLs pass through."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :]
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :]
    return base


def map_ws_error(exc: BaseException, provider: str) -> SpeechError:
    """websockets handshake/close errors -> typed errors."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

    if isinstance(exc, SpeechError):
        return exc
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return error_for_status(
            status, f"{provider} rejected the connection: HTTP {status}", provider=provider
        )
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        code = rcvd.code if rcvd else 1006
        reason = rcvd.reason if rcvd else "no close frame"
        if (code == 1008 and "key" in reason.lower()) or code == 4001:
            return SpeechAuthError(f"{provider}: {reason}", provider=provider, status=401)
        return SpeechConnectionError(f"{provider} connection lost ({code} {reason})", provider=provider)
    if isinstance(exc, TimeoutError):
        return SpeechTimeout(f"{provider} did not answer in time", provider=provider)
    if isinstance(exc, (OSError, InvalidURI)):
        return SpeechConnectionError(f"cannot connect to {provider}: {exc}", provider=provider)
    return SpeechConnectionError(f"{provider} connection failed: {exc!r}", provider=provider)


def map_httpx_error(exc: BaseException, provider: str) -> SpeechError:
    import httpx

    if isinstance(exc, SpeechError):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return SpeechTimeout(f"{provider} did not answer in time", provider=provider)
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return error_for_status(status, f"{provider} answered HTTP {status}", provider=provider)
    return SpeechConnectionError(f"{provider} connection failed: {exc!r}", provider=provider)


def retry_after(headers: object) -> float | None:
    """Seconds from ``Retry-After`` (delta form; HTTP dates are rare on APIs and ignored)."""
    get = getattr(headers, "get", None)
    value = get("retry-after") or get("Retry-After") if get is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _timeout_classes() -> tuple[type[BaseException], ...]:
    import httpx

    classes: list[type[BaseException]] = [TimeoutError, httpx.TimeoutException]
    try:  # the openai SDK ships its own httpx fork
        import httpx2

        classes.append(httpx2.TimeoutException)
    except ImportError:
        pass
    try:
        import openai

        classes.append(openai.APITimeoutError)
    except ImportError:
        pass
    return tuple(classes)


def map_http_error(exc: BaseException, provider: str) -> SpeechError:
    """Failures of an HTTP request through httpx, httpx2 or an SDK built on them -> typed errors.

    SDK status errors are recognised by shape (``status_code`` plus ``response.headers`` for openai,
    ``headers`` for the Fern-generated Deepgram/ElevenLabs SDKs) so no SDK is imported here.
    """
    if isinstance(exc, SpeechError):
        return exc
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if not isinstance(status, int) and response is not None:
        status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        headers = getattr(exc, "headers", None) or getattr(response, "headers", None) or {}
        body = getattr(exc, "body", None)
        detail = f": {body}" if body else ""
        return error_for_status(
            status,
            f"{provider} answered HTTP {status}{detail}"[:500],
            provider=provider,
            retry_after=retry_after(headers),
        )
    if isinstance(exc, _timeout_classes()):
        return SpeechTimeout(f"{provider} did not answer in time", provider=provider)
    return SpeechConnectionError(f"{provider} connection failed: {exc!r}", provider=provider)
