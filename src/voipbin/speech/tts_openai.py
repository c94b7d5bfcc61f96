"""OpenAI TTS through the official ``openai`` SDK (``audio.speech`` with a streaming response).

Each clause is one ``POST /v1/audio/speech`` with ``response_format="pcm"``: raw PCM16 mono at
24 kHz, streamed as it is synthesised, resampled to the call rate on the way out. Failures map to
typed errors (:func:`voipbin.speech.netutil.map_http_error`); a stalled body hits the client's read
timeout; :meth:`cancel` cancels the task, which closes the streamed response and its connection
(the pooled client keeps only connections whose response was read to the end).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Unpack

from voipbin.speech.netutil import map_http_error
from voipbin.speech.openai_client import openai_client
from voipbin.speech.tts import ClauseTTS, TtsOptions

DEFAULT_MODEL = "gpt-4o-mini-tts"
DEFAULT_VOICE = "alloy"


class OpenAITTS(ClauseTTS):
    provider = "openai"
    source_rate = 24000  # response_format=pcm is always 24 kHz

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        instructions: str | None = None,
        **kwargs: Unpack[TtsOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.instructions = instructions  # gpt-4o-mini-tts only: tone/style prompt
        self.api_key = api_key
        self.base_url = base_url

    async def _synthesize_clause(self, text: str) -> AsyncIterator[bytes]:
        extra: dict[str, Any] = {"instructions": self.instructions} if self.instructions else {}
        try:
            client = openai_client(self.api_key, self.base_url)
            async with client.audio.speech.with_streaming_response.create(
                model=self.model,
                voice=self.voice or DEFAULT_VOICE,
                input=text,
                response_format="pcm",
                timeout=self.timeout,
                **extra,
            ) as response:
                async for chunk in response.iter_bytes():
                    yield chunk
        except Exception as exc:
            raise map_http_error(exc, self.provider) from exc
