"""Helpers for AI session tests: caller speech as 8 kHz PCM, event capture, waiting on conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from voipbin.events.bus import EventBus, Subscription
from voipbin.phone.speech import synthesize

_speech: dict[str, bytes] = {}


async def caller_speech(text: str) -> bytes:
    """``text`` spoken by Piper at 8 kHz (Whisper hears Piper more reliably than espeak-ng; cached)."""
    if text not in _speech:
        _speech[text] = await synthesize(text, "piper")
    return _speech[text]


class Events:
    """Everything published on the platform's bus from now on."""

    def __init__(self, bus: EventBus) -> None:
        self._sub: Subscription = bus.subscribe()
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        while not self._sub.queue.empty():
            ev = self._sub.queue.get_nowait()
            self.seen.append((ev.type, ev.data))
        return self.seen

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [d for t, d in self.drain() if t == type_]

    def messages(self, role: str) -> list[str]:
        return [d["content"] for d in self.of("aimessage_created") if d["role"] == role]

    async def wait_for(self, check: Callable[[Events], bool], within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while not check(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"events never matched; seen {[t for t, _ in self.drain()]}")
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self._sub.close()
