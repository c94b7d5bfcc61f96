"""Cartesia TTS over HTTP ``POST /tts/bytes`` with ``httpx`` (streamed raw PCM).

Why not the SDK: the ``cartesia`` package is not in our dependency set and the REST call is one
request; a streamed ``httpx`` POST is the whole protocol. Headers ``X-API-Key`` and
``Cartesia-Version``; body ``{model_id, transcript, voice: {mode: "id", id}, output_format:
{container: "raw", encoding: "pcm_s16le", sample_rate}, language}``. We request the call's rate
(8/16 kHz are native) so nothing is resampled. Each clause is one request on the loop's pooled
client; the per-read timeout catches stalls; :meth:`cancel` closes the streamed response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Unpack

from voipbin.speech.httpclients import shared_httpx
from voipbin.speech.netutil import map_http_error
from voipbin.speech.openai_client import iso639_1
from voipbin.speech.tts import ClauseTTS, TtsOptions

DEFAULT_BASE_URL = "https://api.cartesia.ai"
DEFAULT_MODEL = "sonic-2"
DEFAULT_VOICE = "71a7ad14-091c-4e8e-a314-022ece01c121"
API_VERSION = "2025-04-16"


class CartesiaTTS(ClauseTTS):
    provider = "cartesia"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        **kwargs: Unpack[TtsOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.source_rate = self.sample_rate
        self.api_key = api_key
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.model = model

    def request_body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model_id": self.model,
            "transcript": text,
            "voice": {"mode": "id", "id": self.voice or DEFAULT_VOICE},
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": self.sample_rate},
        }
        if language := iso639_1(self.language):
            body["language"] = language
        return body

    async def _synthesize_clause(self, text: str) -> AsyncIterator[bytes]:
        try:
            async with shared_httpx().stream(
                "POST",
                self.base_url + "/tts/bytes",
                json=self.request_body(text),
                headers={"X-API-Key": self.api_key, "Cartesia-Version": API_VERSION},
                timeout=self.timeout,
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    yield chunk
        except Exception as exc:
            raise map_http_error(exc, self.provider) from exc
