"""OpenAI STT through the official ``openai`` SDK: VAD-cut utterances to ``/v1/audio/transcriptions``.

The transcription endpoint takes whole files, so :class:`SegmentedSTT` cuts utterances with the
shared VAD and each one is uploaded as a WAV at the call's sample rate, with the language hint as
ISO-639-1. The client is pooled per loop; :meth:`cancel` cancels the in-flight upload, which
closes its connection.
"""

from __future__ import annotations

from typing import Any, Unpack

from voipbin.speech.audio import wav_bytes
from voipbin.speech.netutil import map_http_error
from voipbin.speech.openai_client import iso639_1, openai_client
from voipbin.speech.stt_segmented import Recognition, SegmentedSTT, SegmentedSttOptions

DEFAULT_MODEL = "gpt-4o-mini-transcribe"


class OpenAISTT(SegmentedSTT):
    provider = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        prompt: str | None = None,
        **kwargs: Unpack[SegmentedSttOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.prompt = prompt  # vocabulary hint (names, products)
        self.api_key = api_key
        self.base_url = base_url

    async def _transcribe(self, pcm: bytes) -> Recognition:
        extra: dict[str, Any] = {}
        if language := iso639_1(self.language):
            extra["language"] = language
        if self.prompt:
            extra["prompt"] = self.prompt
        try:
            client = openai_client(self.api_key, self.base_url)
            result = await client.audio.transcriptions.create(
                model=self.model,
                file=("utterance.wav", wav_bytes(pcm, self.sample_rate), "audio/wav"),
                response_format="json",
                timeout=self.timeout,
                **extra,
            )
        except Exception as exc:
            raise map_http_error(exc, self.provider) from exc
        return Recognition(text=result.text or "", language=self.language)
