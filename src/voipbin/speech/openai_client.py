"""One ``AsyncOpenAI`` client per speech stream, configured for calls rather than batch jobs.

``max_retries=0``: a phone caller cannot wait out the SDK's back-off, and retrying is the caller's
decision (it gets :class:`SpeechRateLimited` with ``retry_after``). The base URL comes from
``VOIPBIN_OPENAI_BASE_URL`` via the registry (local fakes, proxies, Azure-style gateways).
"""

from __future__ import annotations

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def openai_client(api_key: str, base_url: str | None, timeout: float):
    from openai import AsyncOpenAI

    return AsyncOpenAI(api_key=api_key, base_url=base_url or DEFAULT_BASE_URL, max_retries=0, timeout=timeout)


def iso639_1(language: str | None) -> str | None:
    """``en-US`` -> ``en`` (OpenAI and ElevenLabs take the primary subtag)."""
    if not language:
        return None
    return language.strip().lower().replace("_", "-").split("-")[0] or None
