"""Twilio Media Streams, spoken by the platform: a bot written for Twilio runs against a call unchanged.

``external_media_start`` with ``transport: websocket``, ``encapsulation: twilio`` and a ``ws(s)://``
``external_host`` connects out to the bot and speaks Twilio's bidirectional Media Streams protocol
(https://www.twilio.com/docs/voice/media-streams/websocket-messages):

* to the bot: ``connected``; ``start`` (``streamSid``, ``callSid`` = our call id, ``accountSid`` = the
  customer id, ``tracks``, ``customParameters``, ``mediaFormat`` audio/x-mulaw 8000 Hz mono); one ``media``
  message per 20 ms of the caller's audio (base64 µ-law, ``track: inbound``, ``chunk``, ``timestamp`` in
  ms); ``dtmf`` for each key the caller presses; ``mark`` when the audio sent before a bot's ``mark``
  has been played (or dropped by ``clear``); ``stop`` when the stream ends on our side.
* from the bot: ``media`` (base64 µ-law 8 kHz, any length: queued and played to the caller in order),
  ``mark``, ``clear`` (barge-in: queued and playing audio is dropped at once, pending marks are echoed).

The stream lives as long as the bot keeps the WebSocket open, the flow stops it (``external_media_stop``
from another flow path, the activeflow being stopped) or the call ends. Audio goes through the flow's
``CallAudio`` port only; the connection is made through the SSRF guard's checked socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from voipbin.flow.interfaces import CallAudio, CallControl, CallHungUp
from voipbin.media.g711 import ulaw_decode, ulaw_encode
from voipbin.security.outbound import OutboundPolicy, open_checked_socket

log = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0
MAX_MESSAGE = 1 << 20  # a bot's media message is a few KB; 1 MiB bounds a misbehaving one
MAX_QUEUED_SECONDS = 120  # bot audio queued ahead of playout; beyond it the bot is dropped


def custom_parameters(data: str) -> dict[str, Any]:
    """The action's ``data`` as Twilio's ``customParameters``: a JSON object as is, any other
    non-empty text as ``{"data": text}`` (bots index it like a dict)."""
    if not data:
        return {}
    try:
        parsed = json.loads(data)
    except ValueError:
        return {"data": data}
    return parsed if isinstance(parsed, dict) else {"data": data}


@dataclass(frozen=True)
class _Mark:
    name: str


_CLEARED = object()  # ends the current playout segment after a clear


class TwilioMediaStream:
    """One call's Media Stream to one bot."""

    def __init__(
        self,
        call: CallControl,
        audio: CallAudio,
        url: str,
        policy: OutboundPolicy,
        *,
        parameters: dict[str, Any],
        listen: bool = True,
        speak: bool = True,
    ) -> None:
        self.call = call
        self.audio = audio
        self.url = url
        self.policy = policy
        self.parameters = parameters
        self.listen = listen  # the bot hears the caller
        self.speak = speak  # the caller hears the bot
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.stopped = asyncio.Event()
        self._seq = 0
        self._ws: ClientConnection | None = None
        self._play: asyncio.Queue[object] = asyncio.Queue()
        self._queued_bytes = 0
        self._pending_marks: list[str] = []  # marks received, not yet echoed (in order)
        self._segment_marked = False  # the segment being played ended at a mark

    def stop(self) -> None:
        """End the stream from our side (``external_media_stop``); ``run`` then sends ``stop``."""
        self.stopped.set()

    async def run(self) -> str:
        """Connect, stream until the bot closes or :meth:`stop`; returns ``"closed"`` or ``"stopped"``.
        Raises ``CallHungUp`` when the call ends, ``OSError``/``OutboundBlocked``/websockets errors when
        the bot cannot be reached."""
        sock = await open_checked_socket(self.policy, self.url, connect_timeout=OPEN_TIMEOUT)
        async with websockets.connect(
            self.url,
            sock=sock,
            open_timeout=OPEN_TIMEOUT,
            close_timeout=2.0,
            max_size=MAX_MESSAGE,
            compression=None,
            user_agent_header="voipbin-media-stream",
        ) as ws:
            self._ws = ws
            await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await self._send(
                {
                    "event": "start",
                    "start": {
                        "streamSid": self.stream_sid,
                        "accountSid": str(self.call.customer_id),
                        "callSid": str(self.call.call_id),
                        "tracks": ["inbound"],
                        "customParameters": self.parameters,
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    },
                    "streamSid": self.stream_sid,
                }
            )
            tasks = {
                "bot": asyncio.create_task(self._from_bot(ws), name="twilio-stream bot"),
                "uplink": asyncio.create_task(self._uplink(), name="twilio-stream uplink"),
                "dtmf": asyncio.create_task(self._dtmf(), name="twilio-stream dtmf"),
                "playout": asyncio.create_task(self._playout(), name="twilio-stream playout"),
                "stopped": asyncio.create_task(self.stopped.wait(), name="twilio-stream stop"),
            }
            try:
                done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks.values():
                    task.cancel()
                results = await asyncio.gather(*tasks.values(), return_exceptions=True)
                if self.speak:
                    self.audio.flush_playout()  # the bot's audio ends with its stream
            failure = next(
                (
                    result
                    for name, result in zip(tasks, results, strict=True)
                    if tasks[name] in done and isinstance(result, BaseException) and name != "bot"
                ),
                None,
            )
            if tasks["bot"] in done:
                bot_error = results[0]
                if isinstance(bot_error, BaseException):
                    raise bot_error
                return "closed"
            with contextlib.suppress(websockets.ConnectionClosed, OSError):
                await self._send(
                    {
                        "event": "stop",
                        "stop": {"accountSid": str(self.call.customer_id), "callSid": str(self.call.call_id)},
                        "streamSid": self.stream_sid,
                    }
                )
            if failure is not None:
                raise failure  # CallHungUp from the call side, or a bug
            return "stopped"

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        self._seq += 1
        await self._ws.send(json.dumps({**message, "sequenceNumber": str(self._seq)}))

    # -- our side to the bot -------------------------------------------------------------------------
    async def _uplink(self) -> None:
        if not self.listen:
            await self.call.wait_hangup()
            raise CallHungUp(str(self.call.call_id))
        chunk = 0
        async for frame in self.audio.audio_in():  # raises CallHungUp when the call ends
            chunk += 1
            await self._send(
                {
                    "event": "media",
                    "media": {
                        "track": "inbound",
                        "chunk": str(chunk),
                        "timestamp": str((chunk - 1) * 20),
                        "payload": base64.b64encode(ulaw_encode(frame)).decode(),
                    },
                    "streamSid": self.stream_sid,
                }
            )

    async def _dtmf(self) -> None:
        while True:
            digit = await self.call.receive_digits(1, "", 3600.0)
            if digit:
                await self._send(
                    {
                        "event": "dtmf",
                        "dtmf": {"track": "inbound_track", "digit": digit},
                        "streamSid": self.stream_sid,
                    }
                )

    # -- the bot to our side -------------------------------------------------------------------------
    async def _from_bot(self, ws: ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                try:
                    message = json.loads(raw)
                    event = message.get("event")
                except (ValueError, AttributeError):
                    log.warning(
                        "media stream %s: a message that is not a JSON object; ignored", self.stream_sid
                    )
                    continue
                if event == "media":
                    self._queue_media(message)
                elif event == "mark":
                    name = str((message.get("mark") or {}).get("name", ""))
                    self._pending_marks.append(name)
                    self._play.put_nowait(_Mark(name))
                elif event == "clear":
                    await self._clear()
                else:
                    log.debug("media stream %s: %r from the bot ignored", self.stream_sid, event)

    def _queue_media(self, message: dict[str, Any]) -> None:
        try:
            payload = base64.b64decode((message.get("media") or {}).get("payload", ""), validate=True)
        except (ValueError, TypeError, AttributeError):
            log.warning("media stream %s: a media payload that is not base64; ignored", self.stream_sid)
            return
        if not payload or not self.speak:
            return
        self._queued_bytes += len(payload)
        if self._queued_bytes > MAX_QUEUED_SECONDS * 8000:
            raise ConnectionError(f"the bot queued more than {MAX_QUEUED_SECONDS} s of audio")
        self._play.put_nowait(ulaw_decode(payload))

    async def _clear(self) -> None:
        """Drop what is queued and what is playing; every mark not yet reached is echoed now."""
        while not self._play.empty():
            self._play.get_nowait()
        self._queued_bytes = 0
        self.audio.flush_playout()
        self._play.put_nowait(_CLEARED)
        await self._echo_marks(len(self._pending_marks))

    async def _echo_marks(self, count: int) -> None:
        for name in self._pending_marks[:count]:
            await self._send({"event": "mark", "mark": {"name": name}, "streamSid": self.stream_sid})
        del self._pending_marks[:count]

    async def _segment(self, first: bytes) -> AsyncIterator[bytes]:
        """Bot audio up to its next mark (or a clear): one ``play_stream``, so the mark is echoed once
        exactly that audio has been played out."""
        yield first
        while True:
            item = await self._play.get()
            if isinstance(item, bytes):
                self._queued_bytes -= len(item) // 2
                yield item
                continue
            self._segment_marked = isinstance(item, _Mark)
            return

    async def _playout(self) -> None:
        while True:
            item = await self._play.get()
            if isinstance(item, _Mark):
                await self._echo_marks(1)  # nothing queued before it: played already
                continue
            if not isinstance(item, bytes):
                continue  # a clear with nothing playing
            self._queued_bytes -= len(item) // 2
            self._segment_marked = False
            played = await self.audio.play_stream(self._segment(item))
            if played and self._segment_marked and self._pending_marks:
                await self._echo_marks(1)
