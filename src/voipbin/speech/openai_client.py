"""The ``AsyncOpenAI`` client for speech, configured for calls rather than batch jobs.

Pooled per event loop, key and base URL (:mod:`voipbin.speech.httpclients`): connections are
reused across utterances; timeouts are passed per request.

``max_retries=0``: a phone caller cannot wait out the SDK's back-off, and retrying is the caller's
decision (it gets :class:`SpeechRateLimited` with ``retry_after``). The base URL comes from
``VOIPBIN_OPENAI_BASE_URL`` via the registry (local fakes, proxies, Azure-style gateways).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voipbin.speech.httpclients import loop_shared

if TYPE_CHECKING:
    from openai import AsyncOpenAI

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def openai_client(api_key: str, base_url: str | None) -> AsyncOpenAI:
    from openai import AsyncOpenAI

    base_url = base_url or DEFAULT_BASE_URL
    return loop_shared(
        ("openai", api_key, base_url),
        lambda: AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0),
    )


def iso639_1(language: str | None) -> str | None:
    """``en-US`` -> ``en`` (OpenAI and ElevenLabs take the primary subtag)."""
    if not language:
        return None
    return language.strip().lower().replace("_", "-").split("-")[0] or None
