"""Twilio Media Streams: CPU per stream, side by side with a bare WebSocket echo of the same messages.

    .venv/bin/python bench/external_media.py [--streams 20] [--seconds 5]

``--streams`` concurrent ``TwilioMediaStream`` sessions (the platform side) run against one
``websockets`` echo bot in this process, each fed real-time 20 ms caller frames by a minimal in-memory
call (``CallAudio``) and playing the echoed audio back. Then the same number of bare WebSocket clients
send the identical JSON media message every 20 ms to the same echo bot. Both runs include the bot's
work; the difference is what our stream adds (µ-law, base64, JSON, playout queueing, DTMF/mark tasks).
Prints process CPU µs per 20 ms frame (both directions) for each and their ratio, and the per-message
encode/decode cost alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import platform
import sys
import time
import timeit
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

import numpy as np  # noqa: E402
import websockets  # noqa: E402

from voipbin.flow.streams.twilio import TwilioMediaStream  # noqa: E402
from voipbin.media.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from voipbin.security.outbound import OutboundPolicy  # noqa: E402

FRAME = 0.02
LOOPBACK = OutboundPolicy.parse("127.0.0.0/8")


class FakeCall:
    """Real-time 20 ms frames in; played audio consumed at real time out (counts frames)."""

    def __init__(self) -> None:
        self.call_id = uuid.uuid4()
        self.customer_id = uuid.uuid4()
        self.played = 0
        self.pcm = (np.sin(np.arange(160) / 3) * 8000).astype("<i2").tobytes()
        self._hung = asyncio.Event()

    async def audio_in(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        t0, n = loop.time(), 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * FRAME - loop.time()))
            yield self.pcm

    async def play_stream(self, chunks: AsyncIterable[bytes], rate: int = 8000) -> bool:
        async for chunk in chunks:
            self.played += len(chunk) // 320
        return True

    def flush_playout(self) -> int:
        return 0

    async def receive_digits(self, max_len: int, terminator: str, duration: float) -> str:
        await self._hung.wait()
        return ""

    async def wait_hangup(self) -> None:
        await self._hung.wait()


async def echo_bot(ws: Any) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        await _echo(ws)


async def _echo(ws: Any) -> None:
    async for raw in ws:
        message = json.loads(raw)
        if message.get("event") == "media":
            await ws.send(
                json.dumps(
                    {
                        "event": "media",
                        "streamSid": message["streamSid"],
                        "media": {"payload": message["media"]["payload"]},
                    }
                )
            )


async def run_streams(url: str, streams: int, seconds: float) -> tuple[float, int]:
    calls = [FakeCall() for _ in range(streams)]
    sessions = [TwilioMediaStream(c, c, url, LOOPBACK, parameters={}) for c in calls]  # type: ignore[arg-type]
    tasks = [asyncio.create_task(s.run()) for s in sessions]
    await asyncio.sleep(0.5)  # connected
    cpu0, played0 = time.process_time(), sum(c.played for c in calls)
    await asyncio.sleep(seconds)
    cpu, played = time.process_time() - cpu0, sum(c.played for c in calls) - played0
    for s in sessions:
        s.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    return cpu, played


async def run_bare(url: str, streams: int, seconds: float) -> tuple[float, int]:
    payload = base64.b64encode(ulaw_encode(FakeCall().pcm)).decode()
    text = json.dumps(
        {
            "event": "media",
            "streamSid": "MZ0",
            "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": payload},
        }
    )
    received = 0
    stop = asyncio.Event()

    async def client() -> None:
        nonlocal received
        async with websockets.connect(url, compression=None) as ws:

            async def reader() -> None:
                nonlocal received
                async for _ in ws:
                    received += 1

            task = asyncio.create_task(reader())
            loop = asyncio.get_running_loop()
            t0, n = loop.time(), 0
            while not stop.is_set():
                n += 1
                await asyncio.sleep(max(0.0, t0 + n * FRAME - loop.time()))
                await ws.send(text)
            task.cancel()

    tasks = [asyncio.create_task(client()) for _ in range(streams)]
    await asyncio.sleep(0.5)
    cpu0, received0 = time.process_time(), received
    await asyncio.sleep(seconds)
    cpu, got = time.process_time() - cpu0, received - received0
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return cpu, got


def per_message_costs() -> None:
    pcm = FakeCall().pcm
    out = {
        "event": "media",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": ""},
        "streamSid": "MZ0",
    }

    def encode() -> str:
        out["media"]["payload"] = base64.b64encode(ulaw_encode(pcm)).decode()  # type: ignore[index]
        return json.dumps(out)

    text = encode()

    def decode() -> bytes:
        return ulaw_decode(base64.b64decode(json.loads(text)["media"]["payload"]))

    for name, fn in (
        ("encode (PCM -> Twilio media JSON)", encode),
        ("decode (Twilio media JSON -> PCM)", decode),
    ):
        us = min(timeit.repeat(fn, number=20000, repeat=5)) / 20000 * 1e6
        print(f"{name:<36} {us:6.2f} µs/frame")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    per_message_costs()
    async with websockets.serve(echo_bot, "127.0.0.1", 0, compression=None) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        cpu_s, frames_s = await run_streams(url, args.streams, args.seconds)
        cpu_b, frames_b = await run_bare(url, args.streams, args.seconds)
    us_s = cpu_s / max(frames_s, 1) * 1e6
    us_b = cpu_b / max(frames_b, 1) * 1e6
    print(f"{args.streams} streams for {args.seconds:.0f} s (each echoed 20 ms frame: both directions + bot)")
    print(f"  TwilioMediaStream   {frames_s:6d} frames back  {us_s:6.1f} µs CPU/frame")
    print(f"  bare websockets     {frames_b:6d} frames back  {us_b:6.1f} µs CPU/frame")
    print(f"  ratio stream / bare {us_s / us_b:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
