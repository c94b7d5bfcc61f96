"""Deepgram Aura TTS through the official ``deepgram-sdk`` (``speak.v1.audio.generate``).

Each clause is one ``POST /v1/speak?model=..&encoding=linear16&container=none&sample_rate=..`` with
``{"text": ..}``; the body is raw PCM16 streamed as it is synthesised. We ask for the call's own
rate (8 or 16 kHz, both native to Aura) so nothing is resampled, and ``container=none`` because
linear16 otherwise arrives wrapped in WAV. The SDK is pointed at ``VOIPBIN_DEEPGRAM_BASE_URL`` with
the same environment helper as the live STT, on the loop's pooled httpx client
(:mod:`voipbin.speech.httpclients`), with a per-request timeout (per read: catches stalls) and
``max_retries=0`` (the caller decides about retries). Cancel closes the streamed response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Unpack

from voipbin.speech.httpclients import loop_shared, shared_httpx
from voipbin.speech.netutil import map_http_error
from voipbin.speech.stt_deepgram import deepgram_environment
from voipbin.speech.tts import ClauseTTS, TtsOptions

DEFAULT_VOICE = "aura-2-thalia-en"


class DeepgramTTS(ClauseTTS):
    provider = "deepgram"

    def __init__(self, *, api_key: str, base_url: str | None = None, **kwargs: Unpack[TtsOptions]) -> None:
        super().__init__(**kwargs)
        self.source_rate = self.sample_rate  # Aura synthesises at the requested rate
        self.api_key = api_key
        self.base_url = base_url

    async def _run(self) -> None:
        from deepgram import AsyncDeepgramClient

        self._client = loop_shared(
            ("deepgram-speak", self.api_key, self.base_url),
            lambda: AsyncDeepgramClient(
                api_key=self.api_key,
                environment=deepgram_environment(self.base_url),
                httpx_client=shared_httpx(),
            ),
        )
        await super()._run()

    async def _synthesize_clause(self, text: str) -> AsyncIterator[bytes]:
        try:
            async with self._client.speak.v1.audio.with_raw_response.generate(
                text=text,
                model=self.voice or DEFAULT_VOICE,
                encoding="linear16",
                container="none",
                sample_rate=self.sample_rate,
                request_options={"max_retries": 0, "timeout_in_seconds": self.timeout},
            ) as response:
                async for chunk in response.data:
                    yield chunk
        except Exception as exc:
            raise map_http_error(exc, self.provider) from exc
