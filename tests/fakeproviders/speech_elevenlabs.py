"""Fake ElevenLabs: TTS ``stream-input`` WebSocket and ``POST /v1/speech-to-text``, on 127.0.0.1.

stream-input (``/v1/text-to-speech/{voice_id}/stream-input?model_id=..&output_format=pcm_16000``):
the first message ``{"text": " ", "voice_settings": .., "xi_api_key": ..}`` opens the stream (a bad
key gets an error message and a 1008 close, as the real service does); text messages are buffered
and synthesised at sentence ends, on ``flush: true`` and at the closing ``{"text": ""}`` (with
``auto_mode=true`` every text message at once); audio
comes back as ``{"audio": <base64 pcm>, "isFinal": false, "normalizedAlignment": ..}`` and the
stream ends with ``{"isFinal": true}``. speech-to-text: multipart upload with ``model_id`` and
``file``, ``xi-api-key`` header, answers ``{"text", "language_code", "language_probability", "words"}``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time

from fakeproviders.speech_server import (
    FakeHttpServer,
    FakeWsServer,
    HttpRequest,
    HttpResponse,
    json_response,
    parse_multipart,
    tone,
    wav_info,
)


class FakeElevenLabs:
    def __init__(self, api_key: str = "xi-key") -> None:
        self.api_key = api_key
        self.ws = FakeWsServer(self._stream_input)
        self.http = FakeHttpServer(self._http)
        self.messages: list[dict] = []
        self.script: list[str] = []
        self.uploads: list[dict[str, bytes]] = []
        self.upload_wavs: list[tuple[int, float]] = []
        self.drop_after_audio = False
        self.first_audio_delay = 0.0  # seconds from a flushed text to its first audio (benches)
        self.spoken_at: list[tuple[float, float]] = []  # (text complete, first audio sent), monotonic

    async def __aenter__(self) -> FakeElevenLabs:
        await self.ws.start()
        await self.http.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.stop()
        await self.http.stop()

    async def _stream_input(self, conn, path: str, q: dict[str, str]) -> None:
        m = re.fullmatch(r"/v1/text-to-speech/([^/]+)/stream-input", path)
        if not m or q.get("output_format") != "pcm_16000":
            await conn.close(1008, "bad request")
            return
        first = json.loads(await conn.recv())
        self.messages.append(first)
        if first.get("xi_api_key") != self.api_key:
            await conn.send(
                json.dumps({"message": "Invalid API key", "error": "invalid_api_key", "code": 1008})
            )
            await conn.close(1008, "Invalid API key")
            return
        pending = ""
        # auto_mode=true: every text message is spoken at once; else (the service's chunk schedule,
        # simplified) text waits for a sentence end or a flush.
        auto = q.get("auto_mode") == "true"

        async def speak(text: str) -> None:
            asked = time.monotonic()
            if self.first_audio_delay:
                await asyncio.sleep(self.first_audio_delay)
            pcm = tone(0.05 * len(text), 16000)
            for i in range(0, len(pcm), 3200):
                audio = base64.b64encode(pcm[i : i + 3200]).decode()
                if not i:
                    self.spoken_at.append((asked, time.monotonic()))
                await conn.send(json.dumps({"audio": audio, "isFinal": False, "normalizedAlignment": None}))
                if self.drop_after_audio:
                    self.ws.drop(conn)
                    await asyncio.sleep(1)
                    return

        async for raw in conn:
            msg = json.loads(raw)
            self.messages.append(msg)
            text = msg.get("text")
            if text == "":
                if pending.strip():
                    await speak(pending)
                await conn.send(json.dumps({"isFinal": True}))
                await conn.close(1000)
                return
            pending += text or ""
            if msg.get("flush") or (auto and text) or re.search(r"[.!?]\s*$", pending):
                if pending.strip():
                    await speak(pending)
                pending = ""
        # auto_mode=true: every text message is spoken at once; else (the service's chunk schedule,
        # simplified) text waits for a sentence end or a flush.
        auto = q.get("auto_mode") == "true"

    async def _http(self, req: HttpRequest) -> HttpResponse:
        if req.headers.get("xi-api-key") != self.api_key:
            return json_response(401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}})
        if req.method == "POST" and req.path == "/v1/speech-to-text":
            parts = parse_multipart(req)
            self.uploads.append(parts)
            if "file" not in parts or "model_id" not in parts:
                return json_response(422, {"detail": "file and model_id are required"})
            try:
                self.upload_wavs.append(wav_info(parts["file"]))
            except ValueError as exc:
                return json_response(400, {"detail": {"status": "invalid_file", "message": str(exc)}})
            text = self.script.pop(0) if self.script else "hello world"
            words = [{"text": w, "type": "word"} for w in text.split()]
            body = {"language_code": "eng", "language_probability": 0.99, "text": text, "words": words}
            return json_response(200, body)
        return json_response(404, {"detail": "not found"})
