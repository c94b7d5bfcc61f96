"""A bot written for Twilio Media Streams (``websockets`` server on loopback), as a customer would write
it: it knows nothing of voipbin, only Twilio's messages."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from websockets.asyncio.server import ServerConnection

from voipbin.media.g711 import ulaw_encode


def tone_ulaw(seconds: float, freq: float, rate: int = 8000, amp: float = 0.4) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return ulaw_encode((amp * 32767 * np.sin(2 * math.pi * freq * t)).astype("<i2").tobytes())


@dataclass
class Bot:
    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/media"

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("event") == name]

    async def wait_for(self, check: Callable[[Bot], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not check(self):
                self.changed.clear()
                await self.changed.wait()


Behaviour = Callable[[Bot, ServerConnection, dict[str, Any]], Awaitable[bool]]


async def echo(bot: Bot, ws: ServerConnection, message: dict[str, Any]) -> bool:
    """Echo the caller's audio; a ``mark`` after the first second; ``#`` hangs the stream up."""
    sid = message.get("streamSid")
    if message["event"] == "media":
        await ws.send(
            json.dumps(
                {"event": "media", "streamSid": sid, "media": {"payload": message["media"]["payload"]}}
            )
        )
        if message["media"]["chunk"] == "50":
            await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "one-second"}}))
    return not (message["event"] == "dtmf" and message["dtmf"]["digit"] == "#")


@asynccontextmanager
async def twilio_bot(behaviour: Behaviour) -> AsyncIterator[Bot]:
    bot = Bot()

    async def handler(ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                bot.received.append(message)
                bot.changed.set()
                if not await behaviour(bot, ws, message):
                    break
        finally:
            bot.closed.set()
            bot.changed.set()

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        bot.port = server.sockets[0].getsockname()[1]
        yield bot


def payload(message: dict[str, Any]) -> bytes:
    return base64.b64decode(message["media"]["payload"])
