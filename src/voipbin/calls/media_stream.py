"""``GET /v1.0/calls/{id}/media_stream``: a live call's audio over a WebSocket the client opened.

One binary message per 20 ms frame, both ways, in VoIPBIN's ``encapsulation`` (default ``rtp``):

* ``rtp`` — RTP packets, G.711 µ-law (payload type 0); the client sends RTP packets of the same type.
* ``audiosocket`` — Asterisk AudioSocket frames: first a UUID frame (``0x01``, the call id), then audio
  frames (``0x10``, 16-bit signed linear 8 kHz mono); the client sends ``0x10`` frames, ``0x00`` hangs
  the stream up (not the call).
* ``none`` — bare µ-law payloads.

The client hears the caller; what it sends is played to the caller. The WebSocket closes (1000) when the
call ends; the call goes on when the client closes. Text messages are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from voipbin.flow.interfaces import CallAudio, CallControl, CallHungUp
from voipbin.flow.streams.framing import (
    AS_AUDIO,
    AS_HANGUP,
    RtpPacketizer,
    audiosocket_frame,
    audiosocket_uuid,
    g711,
    parse_audiosocket,
    rtp_payload,
)
from voipbin.flow.streams.pump import AudioPump

log = logging.getLogger(__name__)
ULAW = g711("ulaw")


class MediaStreamSession:
    def __init__(self, websocket: WebSocket, call: CallControl, audio: CallAudio, encapsulation: str) -> None:
        self.ws = websocket
        self.call = call
        self.encapsulation = encapsulation
        self.pump = AudioPump(call, audio)
        self._rtp = RtpPacketizer(ULAW.payload_type)

    async def _send(self, pcm: bytes) -> None:
        if self.encapsulation == "rtp":
            data = self._rtp.packet(ULAW.encode(pcm))
        elif self.encapsulation == "audiosocket":
            data = audiosocket_frame(AS_AUDIO, pcm)
        else:
            data = ULAW.encode(pcm)
        await self.ws.send_bytes(data)

    def _received(self, data: bytes) -> bool:
        """Feed one client message; False when the client asked to end the stream."""
        if self.encapsulation == "rtp":
            payload = rtp_payload(data, ULAW.payload_type)
            if payload is not None:
                self.pump.feed(ULAW.decode(payload))
        elif self.encapsulation == "audiosocket":
            for kind, payload in parse_audiosocket(data):
                if kind == AS_HANGUP:
                    return False
                if kind == AS_AUDIO:
                    self.pump.feed(payload[: len(payload) // 2 * 2])
        else:
            self.pump.feed(ULAW.decode(data))
        return True

    async def _from_client(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data:
                try:
                    if not self._received(data):
                        return
                except ValueError as exc:
                    log.info("media_stream of call %s: bad frame from the client: %s", self.call.call_id, exc)
                    return

    async def run(self) -> None:
        if self.encapsulation == "audiosocket":
            await self.ws.send_bytes(audiosocket_uuid(self.call.call_id))
        pump = asyncio.create_task(self.pump.run(self._send))
        client = asyncio.create_task(self._from_client())
        try:
            await asyncio.wait({pump, client}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, client):
                task.cancel()
            results = await asyncio.gather(pump, client, return_exceptions=True)
        call_ended = isinstance(results[0], CallHungUp)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, CallHungUp | asyncio.CancelledError | WebSocketDisconnect | RuntimeError
            ):
                log.error("media_stream of call %s failed: %r", self.call.call_id, result)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            if call_ended and self.encapsulation == "audiosocket":
                await self.ws.send_bytes(audiosocket_frame(AS_HANGUP))
            await self.ws.close(1000, "call ended" if call_ended else "")
