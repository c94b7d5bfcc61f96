"""Fake Cartesia ``POST /tts/bytes`` on 127.0.0.1.

Checks ``X-API-Key`` and ``Cartesia-Version`` and the body ``{model_id, transcript, voice: {mode:
"id", id}, output_format: {container: "raw", encoding: "pcm_s16le", sample_rate}}``; answers raw
PCM16 at the requested rate (a tone whose length follows the transcript), streamed in chunks.
"""

from __future__ import annotations

import asyncio

from fakeproviders.speech_server import FakeHttpServer, HttpRequest, HttpResponse, json_response, tone


class FakeCartesia:
    def __init__(self, api_key: str = "cartesia-key") -> None:
        self.api_key = api_key
        self.http = FakeHttpServer(self._handle)
        self.http.fault_body = lambda status, fault: {"error": f"scripted {fault}", "status_code": status}
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []

    async def __aenter__(self) -> FakeCartesia:
        await self.http.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.stop()

    async def _handle(self, req: HttpRequest) -> HttpResponse:
        self.headers.append(req.headers)
        if req.headers.get("x-api-key") != self.api_key:
            return json_response(401, {"error": "Invalid API key"})
        if not req.headers.get("cartesia-version"):
            return json_response(400, {"error": "Cartesia-Version header is required"})
        if req.method != "POST" or req.path != "/tts/bytes":
            return json_response(404, {"error": "Not found"})
        body = req.json()
        self.bodies.append(body)
        fmt = body.get("output_format", {})
        voice = body.get("voice", {})
        if not body.get("transcript") or not body.get("model_id") or voice.get("mode") != "id":
            return json_response(400, {"error": "model_id, transcript and voice {mode: id} are required"})
        if (fmt.get("container"), fmt.get("encoding")) != ("raw", "pcm_s16le"):
            return json_response(400, {"error": "this fake only speaks raw pcm_s16le"})
        rate = int(fmt["sample_rate"])
        pcm = tone(0.06 * len(body["transcript"]), rate)
        step = rate // 10 * 2

        async def chunks():
            for i in range(0, len(pcm), step):
                yield pcm[i : i + step]
                await asyncio.sleep(0)

        return HttpResponse(200, headers={"content-type": "application/octet-stream"}, chunks=chunks())
