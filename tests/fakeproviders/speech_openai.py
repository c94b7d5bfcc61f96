"""Fake OpenAI audio API on 127.0.0.1: ``POST /v1/audio/speech`` and ``/v1/audio/transcriptions``.

Speech: ``Authorization: Bearer <key>``, JSON ``{model, input, voice, response_format}``; ``pcm``
answers raw PCM16 mono at 24 kHz (a tone whose length follows the text), streamed in chunks.
Transcriptions: multipart ``file`` (checked to be a real WAV), ``model``, optional ``language`` and
``response_format``; answers ``{"text": ..}`` from a script (upload n gets ``script[n]``). Errors
use OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import asyncio

from fakeproviders.speech_server import (
    FakeHttpServer,
    HttpRequest,
    HttpResponse,
    json_response,
    parse_multipart,
    tone,
    wav_info,
)

VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"}
ERROR_TYPES = {401: "invalid_request_error", 429: "requests", 500: "server_error"}


def openai_error(status: int, message: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                      "param": None, "code": code}}  # fmt: skip


class FakeOpenAIAudio:
    def __init__(self, api_key: str = "sk-test") -> None:
        self.api_key = api_key
        self.http = FakeHttpServer(self._handle)
        self.http.fault_body = lambda status, fault: openai_error(status, f"scripted {fault}", fault)
        self.script: list[str] = []
        self.speech: list[dict] = []
        self.uploads: list[dict[str, bytes]] = []
        self.upload_wavs: list[tuple[int, float]] = []

    @property
    def base_url(self) -> str:
        return self.http.base_url + "/v1"

    async def __aenter__(self) -> FakeOpenAIAudio:
        await self.http.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.stop()

    async def _handle(self, req: HttpRequest) -> HttpResponse:
        if req.headers.get("authorization") != f"Bearer {self.api_key}":
            return json_response(401, openai_error(401, "Incorrect API key provided.", "invalid_api_key"))
        if req.method == "POST" and req.path == "/v1/audio/speech":
            return self._speech(req.json())
        if req.method == "POST" and req.path == "/v1/audio/transcriptions":
            return self._transcribe(parse_multipart(req))
        return json_response(404, openai_error(404, "Unknown request URL", "unknown_url"))

    def _speech(self, body: dict) -> HttpResponse:
        self.speech.append(body)
        if not body.get("input") or not body.get("model"):
            return json_response(400, openai_error(400, "input and model are required"))
        if body.get("voice") not in VOICES:
            return json_response(400, openai_error(400, f"Invalid voice {body.get('voice')!r}"))
        if body.get("response_format") != "pcm":
            return json_response(400, openai_error(400, "this fake only speaks pcm"))
        pcm = tone(0.06 * len(body["input"]), 24000)

        async def chunks():
            for i in range(0, len(pcm), 4800):
                yield pcm[i : i + 4800]
                await asyncio.sleep(0)

        return HttpResponse(200, headers={"content-type": "audio/pcm"}, chunks=chunks())

    def _transcribe(self, parts: dict[str, bytes]) -> HttpResponse:
        self.uploads.append(parts)
        if "file" not in parts or "model" not in parts:
            return json_response(400, openai_error(400, "file and model are required"))
        try:
            self.upload_wavs.append(wav_info(parts["file"]))
        except ValueError as exc:
            return json_response(400, openai_error(400, f"Invalid file format: {exc}"))
        text = self.script.pop(0) if self.script else "hello world"
        return json_response(200, {"text": text, "usage": {"type": "tokens", "input_tokens": 10}})
