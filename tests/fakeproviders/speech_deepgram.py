"""Fake Deepgram: live ``/v1/listen`` WebSocket and Aura ``/v1/speak`` REST, on 127.0.0.1.

Listen: ``Authorization: Token <key>``; binary linear16 audio in; JSON out — ``SpeechStarted``
(vad_events=true), interim ``Results`` (is_final=false) while speech goes on, a final ``Results``
(is_final + speech_final) after ``endpointing`` ms of silence, ``UtteranceEnd`` (utterance_end_ms),
``Metadata`` and a 1000 close after ``{"type":"CloseStream"}``. Speech is found by energy and
"recognised" from a script: utterance n gets ``script[n]``.
Speak: ``POST /v1/speak?model=..&encoding=linear16&sample_rate=..`` with ``{"text": ..}`` returns
PCM16 (a tone whose length follows the text), streamed in chunks; like the real service, linear16
comes in a WAV container unless ``container=none``. Errors use ``{"err_code", "err_msg", "request_id"}``.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
import uuid

import numpy as np

from fakeproviders.speech_server import (
    FakeHttpServer,
    FakeWsServer,
    HttpRequest,
    HttpResponse,
    json_response,
    tone,
)


class FakeDeepgram:
    def __init__(self, api_key: str = "dg-key") -> None:
        self.api_key = api_key
        self.script: list[str] = []
        self.ws = FakeWsServer(self._listen)
        self.ws.api_key = api_key
        self.ws.auth_header = ("Authorization", "Token ")
        self.http = FakeHttpServer(self._speak)
        self.http.fault_body = lambda status, fault: {
            "err_code": fault.upper(),
            "err_msg": f"scripted {fault}",
            "request_id": str(uuid.uuid4()),
        }
        self.speak_requests: list[HttpRequest] = []
        self.received_audio = 0
        self.control: list[dict] = []
        self.drop_after_results = False
        self.finals_at: list[float] = []  # time.monotonic() of each final sent (benches)
        self.last_voice_at: list[float] = []  # time.monotonic() each utterance's last voiced frame came
        # > 0: during silence, an empty final ``Results`` every this many seconds of audio, as the
        # live service sends them (a client that times out a quiet stream must not trip on silence).
        self.silence_results_every = 0.0

    @property
    def environment_urls(self) -> tuple[str, str]:
        return self.http.base_url, self.ws.ws_url

    async def __aenter__(self) -> FakeDeepgram:
        await self.ws.start()
        await self.http.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.stop()
        await self.http.stop()

    # -- /v1/listen --------------------------------------------------------------------------------
    async def _listen(self, conn, path: str, q: dict[str, str]) -> None:
        if path != "/v1/listen":
            await conn.close(1008, "unknown path")
            return
        rate = int(q.get("sample_rate", "16000"))
        endpointing = int(q.get("endpointing", "300")) / 1000
        vad_events = q.get("vad_events") == "true"
        interim = q.get("interim_results") == "true"
        utt_end = q.get("utterance_end_ms")
        meta = {
            "request_id": str(uuid.uuid4()),
            "model_info": {"name": q.get("model", "nova-2"), "version": "fake", "arch": "fake"},
            "model_uuid": str(uuid.uuid4()),
        }
        win = rate // 50 * 2  # 20 ms
        buf = b""
        t = 0.0
        speaking = False
        start = last_voice = 0.0
        next_interim = 0.0
        utterance = 0
        last_voice_wall = 0.0
        next_quiet = 0.0

        def words() -> list[str]:
            return (self.script[utterance] if utterance < len(self.script) else "hello world").split()

        def results(text: str, s: float, e: float, final: bool) -> str:
            return json.dumps(
                {
                    "type": "Results",
                    "channel_index": [0, 1],
                    "duration": round(e - s, 3),
                    "start": round(s, 3),
                    "is_final": final,
                    "speech_final": final,
                    "from_finalize": False,
                    "channel": {"alternatives": [{"transcript": text, "confidence": 0.97, "words": []}]},
                    "metadata": meta,
                }
            )

        async def finalize() -> None:
            nonlocal speaking, utterance, last_voice_wall
            self.finals_at.append(time.monotonic())
            self.last_voice_at.append(last_voice_wall)
            await conn.send(results(" ".join(words()), start, last_voice, True))
            if utt_end:
                await conn.send(
                    json.dumps({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": last_voice})
                )
            speaking = False
            utterance += 1
            if self.drop_after_results:
                self.ws.drop(conn)

        async for msg in conn:
            if isinstance(msg, str):
                ctl = json.loads(msg)
                self.control.append(ctl)
                if ctl.get("type") == "CloseStream":
                    if speaking:
                        await finalize()
                    await conn.send(
                        json.dumps({"type": "Metadata", "request_id": meta["request_id"], "duration": t})
                    )
                    await conn.close(1000)
                    return
                continue
            self.received_audio += len(msg)
            buf += msg
            while len(buf) >= win:
                frame, buf = buf[:win], buf[win:]
                x = np.frombuffer(frame, dtype=np.int16).astype(np.float64)
                voiced = np.sqrt(np.mean(x * x)) > 300
                if voiced:
                    if not speaking:
                        speaking, start, next_interim = True, t, t + 0.5
                        if vad_events:
                            await conn.send(
                                json.dumps({"type": "SpeechStarted", "channel": [0], "timestamp": t})
                            )
                    last_voice = t + 0.02
                    last_voice_wall = time.monotonic()
                elif speaking and t - last_voice >= endpointing:
                    await finalize()
                elif not speaking and self.silence_results_every and t >= next_quiet:
                    await conn.send(results("", t, t + self.silence_results_every, True))
                    next_quiet = t + self.silence_results_every
                if speaking and interim and t >= next_interim:
                    n = max(1, int((t - start) / 0.5))
                    await conn.send(results(" ".join(words()[:n]), start, t, False))
                    next_interim = t + 0.5
                t += 0.02

    # -- /v1/speak ---------------------------------------------------------------------------------
    async def _speak(self, req: HttpRequest) -> HttpResponse:
        if req.headers.get("authorization") != f"Token {self.api_key}":
            return json_response(401, {"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."})
        if req.method != "POST" or req.path != "/v1/speak":
            return json_response(404, {"err_code": "NOT_FOUND"})
        self.speak_requests.append(req)
        if req.query.get("encoding") != "linear16":
            return json_response(400, {"err_code": "UNSUPPORTED_ENCODING"})
        rate = int(float(req.query.get("sample_rate", "24000")))
        if rate not in (8000, 16000, 24000, 32000, 48000):
            return json_response(400, {"err_code": "UNSUPPORTED_SAMPLE_RATE"})
        text = req.json()["text"]
        pcm = tone(0.06 * len(text), rate)
        if req.query.get("container", "wav") == "wav":
            pcm = wav_header(rate) + pcm

        async def chunks():
            for i in range(0, len(pcm), 3200):
                yield pcm[i : i + 3200]
                await asyncio.sleep(0)

        return HttpResponse(200, headers={"content-type": "audio/l16"}, chunks=chunks())


def wav_header(rate: int) -> bytes:
    """Streaming WAV header with the unknown-length placeholder sizes Aura uses."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16, b"data", 0xFFFFFFFF,
    )  # fmt: skip
