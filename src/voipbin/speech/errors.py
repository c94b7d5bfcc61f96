"""Typed speech errors.

Every adapter maps its provider's failures (HTTP status, WebSocket handshake status, close frames,
timeouts, dropped sockets) onto these classes so callers handle one vocabulary, never SDK types.
"""

from __future__ import annotations


class SpeechError(Exception):
    """Base class for all runtime failures of a TTS/STT engine."""

    def __init__(
        self, message: str, *, provider: str = "", status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        #: seconds the provider asked us to wait (``Retry-After`` on 429/503), if it said
        self.retry_after = retry_after


class SpeechAuthError(SpeechError):
    """The provider rejected our credentials (401/403)."""


class SpeechRateLimited(SpeechError):
    """The provider asked us to slow down (429)."""


class SpeechServerError(SpeechError):
    """The provider failed (5xx, error message, unexpected response)."""


class SpeechTimeout(SpeechError):
    """The provider stopped answering within the allowed time."""


class SpeechConnectionError(SpeechError):
    """The connection could not be opened or was lost mid-stream."""


class SpeechConfigError(ValueError):
    """Configuration problem detected before a call starts (maps to HTTP 400)."""


class InvalidSpeechProvider(SpeechConfigError):
    """Unknown tts_type/stt_type, or one this platform cannot run."""


class MissingProviderKey(SpeechConfigError):
    """A cloud provider is selected but its API key setting is empty."""


def error_for_status(
    status: int, message: str, *, provider: str, retry_after: float | None = None
) -> SpeechError:
    """Map an HTTP status code to the matching typed error."""
    if status in (401, 403):
        return SpeechAuthError(message, provider=provider, status=status)
    if status == 429:
        return SpeechRateLimited(message, provider=provider, status=status, retry_after=retry_after)
    if status in (408, 504):
        return SpeechTimeout(message, provider=provider, status=status)
    return SpeechServerError(message, provider=provider, status=status, retry_after=retry_after)
