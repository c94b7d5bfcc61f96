"""ElevenLabs TTS over the WebSocket ``stream-input`` protocol.

Hand-wired on ``websockets``: the official SDK's realtime TTS helper is synchronous (a text
iterator on a thread), which does not fit a per-call asyncio pipeline with barge-in. Protocol:
``wss://api.elevenlabs.io/v1/text-to-speech/{voice_id}/stream-input?model_id=..&output_format=pcm_16000
&auto_mode=true`` (no server-side chunk schedule: we send whole clauses);
first message ``{"text": " ", "voice_settings": .., "xi_api_key": ..}``, then text chunks (each
clause as soon as it is complete, ``try_trigger_generation``), ``{"text": " ", "flush": true}`` on
flush, ``{"text": ""}`` to finish; the server sends ``{"audio": base64 PCM16 16 kHz, "isFinal": ..}``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any, Unpack
from urllib.parse import quote, urlencode

import websockets
from websockets.asyncio.client import ClientConnection

from voipbin.speech.errors import SpeechAuthError, SpeechConnectionError, SpeechServerError, SpeechTimeout
from voipbin.speech.netutil import map_ws_error, ws_url
from voipbin.speech.tts import TTS, TtsOptions
from voipbin.speech.voices import ELEVENLABS_DEFAULT_VOICE

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "eleven_multilingual_v2"


class ElevenLabsTTS(TTS):
    provider = "elevenlabs"
    source_rate = 16000

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        voice_settings: dict[str, Any] | None = None,
        **kwargs: Unpack[TtsOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.base_url = base_url or DEFAULT_BASE_URL
        self.model = model
        self.voice_settings = voice_settings or {"stability": 0.5, "similarity_boost": 0.8}
        self._awaiting = False  # text sent whose audio has not started yet

    @property
    def url(self) -> str:
        voice = quote(self.voice or ELEVENLABS_DEFAULT_VOICE, safe="")
        # auto_mode: each clause we send is synthesised at once; without it the service buffers text
        # until its chunk schedule (120+ characters) is met, so a short first clause would wait.
        query = urlencode({"model_id": self.model, "output_format": "pcm_16000", "auto_mode": "true"})
        return f"{ws_url(self.base_url)}/v1/text-to-speech/{voice}/stream-input?{query}"

    async def _run(self) -> None:
        try:
            ws = await asyncio.wait_for(
                # No permessage-deflate: inflating the base64 audio ran zlib on the control loop for
                # every chunk (the calls' loop lag); the bytes saved on the wire are few.
                websockets.connect(self.url, open_timeout=self.timeout, max_size=2**24, compression=None),
                self.timeout,
            )
        except Exception as exc:
            raise map_ws_error(exc, self.provider) from exc
        sender: asyncio.Task[None] | None = None
        finished = False
        try:
            bos = {"text": " ", "voice_settings": self.voice_settings, "xi_api_key": self.api_key}
            await ws.send(json.dumps(bos))
            sender = asyncio.create_task(self._send_text(ws))
            await self._receive(ws, sender)
            finished = True
        except (SpeechAuthError, SpeechServerError, SpeechTimeout, SpeechConnectionError):
            raise
        except Exception as exc:
            raise map_ws_error(exc, self.provider) from exc
        finally:
            if sender is not None:
                sender.cancel()
            if finished:  # polite close; the server closes right after isFinal anyway
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 1)
            if ws.transport is not None:  # cancelled or failed: drop the socket now (barge-in)
                ws.transport.abort()

    async def _send_text(self, ws: ClientConnection) -> None:
        while True:
            item = await self._next_text()
            if self._is_end(item):
                self._awaiting = True
                await ws.send(json.dumps({"text": ""}))
                return
            if isinstance(item, str):
                await ws.send(json.dumps({"text": item + " ", "try_trigger_generation": True}))
            else:
                await ws.send(json.dumps({"text": " ", "flush": True}))
            self._awaiting = True

    async def _receive(self, ws: ClientConnection, sender: asyncio.Task[None]) -> None:
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel() that races with
        # an arriving message, and barge-in must never be lost.
        while not self.cancelled:
            try:
                async with asyncio.timeout(self.timeout):
                    raw = await ws.recv()
            except TimeoutError as exc:
                if sender.done() and (failure := sender.exception()) is not None:
                    raise failure from exc
                if self._awaiting:
                    raise SpeechTimeout("elevenlabs sent no audio in time", provider=self.provider) from exc
                continue  # the LLM is slow; nothing is owed yet
            msg = json.loads(raw)
            if msg.get("error") or (msg.get("message") and "audio" not in msg):
                text = f"elevenlabs: {msg.get('message') or msg.get('error')}"
                err = str(msg.get("error", "")).lower()
                if "key" in err or "auth" in err or msg.get("code") == 1008:
                    raise SpeechAuthError(text, provider=self.provider, status=401)
                if "rate" in err or "quota" in err or "limit" in err:
                    from voipbin.speech.errors import SpeechRateLimited

                    raise SpeechRateLimited(text, provider=self.provider, status=429)
                raise SpeechServerError(text, provider=self.provider)
            if msg.get("audio"):
                self._awaiting = False
                self._emit(base64.b64decode(msg["audio"]))
            if msg.get("isFinal"):
                return
