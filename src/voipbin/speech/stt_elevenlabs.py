"""ElevenLabs STT (Scribe) through the official ``elevenlabs`` SDK: ``POST /v1/speech-to-text``.

Batch endpoint, so :class:`SegmentedSTT` cuts utterances with the shared VAD; each is uploaded as a
WAV (multipart ``file``, ``model_id=scribe_v1``, ``language_code``) with the ``xi-api-key`` header.
``tag_audio_events`` is off: "(laughs)" is not something the LLM should read as the caller's words.
The SDK runs on the loop's pooled httpx client (:mod:`voipbin.speech.httpclients`) with a
per-request timeout and ``max_retries=0``; cancel aborts the in-flight upload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Unpack

from voipbin.speech.audio import wav_bytes
from voipbin.speech.httpclients import loop_shared, shared_httpx
from voipbin.speech.netutil import map_http_error
from voipbin.speech.openai_client import iso639_1
from voipbin.speech.stt_segmented import Recognition, SegmentedSTT, SegmentedSttOptions

if TYPE_CHECKING:
    from elevenlabs.client import AsyncElevenLabs
    from elevenlabs.core.request_options import RequestOptions

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "scribe_v1"


class ElevenLabsSTT(SegmentedSTT):
    provider = "elevenlabs"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        **kwargs: Unpack[SegmentedSttOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.base_url = base_url or DEFAULT_BASE_URL
        self.model = model

    def _client(self) -> AsyncElevenLabs:
        from elevenlabs.client import AsyncElevenLabs

        return loop_shared(
            ("elevenlabs", self.api_key, self.base_url),
            lambda: AsyncElevenLabs(
                api_key=self.api_key, base_url=self.base_url, httpx_client=shared_httpx()
            ),
        )

    async def _transcribe(self, pcm: bytes) -> Recognition:
        extra: dict[str, Any] = {"language_code": lang} if (lang := iso639_1(self.language)) else {}
        # The SDK types the timeout as int; it hands it to httpx, which takes float seconds.
        options: RequestOptions = {"max_retries": 0, "timeout_in_seconds": self.timeout}  # type: ignore[typeddict-item]
        try:
            result = await self._client().speech_to_text.convert(
                model_id=self.model,
                file=("utterance.wav", wav_bytes(pcm, self.sample_rate), "audio/wav"),
                tag_audio_events=False,
                request_options=options,
                **extra,
            )
        except Exception as exc:
            raise map_http_error(exc, self.provider) from exc
        text = getattr(result, "text", "") or ""
        prob = getattr(result, "language_probability", None)
        return Recognition(text=text, confidence=None, language=self.language or _lang(result, prob))


def _lang(result: object, probability: float | None) -> str | None:
    """The detected language when we gave no hint (Scribe answers ISO-639-3, e.g. ``eng``)."""
    code = getattr(result, "language_code", None)
    return code if code and (probability is None or probability >= 0.5) else None
