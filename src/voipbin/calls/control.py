"""``LiveCall``: the flow engine's ``CallControl`` (and ``CallConnect``, ``CallAudio``) for one leg.

Media operations go to the leg; what needs more than the leg (answering, hanging up, recording,
connecting further legs) goes to ``CallOps``, which the call manager implements. The leg itself never
points back at the manager.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from voipbin.calls.leg import CallLeg, TtsFactory
from voipbin.flow.interfaces import RecordingRequest
from voipbin.media.callmedia import CallMedia


class CallOps(Protocol):
    """What a live call asks of its manager."""

    async def answer(self, call: LiveCall) -> None: ...

    async def hangup_call(self, call: LiveCall, reason: str) -> None: ...

    async def recording_start(self, call: LiveCall, request: RecordingRequest) -> uuid.UUID: ...

    async def recording_stop(self, call: LiveCall) -> None: ...

    async def connect(
        self, call: LiveCall, source: dict[str, Any], destinations: list[dict[str, Any]], anonymous: str
    ) -> tuple[bool, str]: ...


class LiveCall:
    def __init__(self, leg: CallLeg, ops: CallOps, tts: TtsFactory) -> None:
        self.leg = leg
        self._ops = ops
        self._tts = tts

    # -- identity and state --------------------------------------------------------------------------
    @property
    def call_id(self) -> uuid.UUID:
        return self.leg.call_id

    @property
    def customer_id(self) -> uuid.UUID:
        return self.leg.customer_id

    @property
    def media(self) -> CallMedia:
        """The leg's media session (taps for transcription and summaries)."""
        return self.leg.media

    @property
    def is_up(self) -> bool:
        return self.leg.is_up

    @property
    def is_hungup(self) -> bool:
        return self.leg.ended.is_set()

    @property
    def recording_active(self) -> bool:
        return self.leg.recording_id is not None

    # -- CallControl ---------------------------------------------------------------------------------
    async def answer(self) -> None:
        await self._ops.answer(self)

    async def play_wav(self, source: str | Path | bytes) -> None:
        await self.leg.play_wav(source)

    async def play_tts(self, text: str, language: str, voice: str) -> None:
        self.leg.require_up()
        await self.leg.play_tts(self._tts(voice, language), text)

    async def send_dtmf(self, digits: str, duration_ms: int = 100, interval_ms: int = 0) -> None:
        await self.leg.send_dtmf(digits, duration_ms, interval_ms)

    async def receive_digits(self, max_len: int, terminator: str, duration: float) -> str:
        return await self.leg.receive_digits(max_len, terminator, duration)

    async def recording_start(self, request: RecordingRequest) -> uuid.UUID:
        return await self._ops.recording_start(self, request)

    async def recording_stop(self) -> None:
        await self._ops.recording_stop(self)

    async def hangup(self, reason: str = "normal") -> None:
        await self._ops.hangup_call(self, reason)

    async def wait_hangup(self) -> None:
        await self.leg.ended.wait()

    # -- CallConnect ---------------------------------------------------------------------------------
    async def connect(
        self, source: dict[str, Any], destinations: list[dict[str, Any]], anonymous: str = ""
    ) -> tuple[bool, str]:
        self.leg.require_up()
        return await self._ops.connect(self, source, destinations, anonymous)

    # -- CallAudio -----------------------------------------------------------------------------------
    def audio_in(self) -> AsyncIterator[bytes]:
        return self.leg.audio_in()

    async def play_stream(self, chunks: AsyncIterable[bytes], rate: int = 8000) -> bool:
        return await self.leg.play_stream(chunks, rate)

    def flush_playout(self) -> int:
        return self.leg.flush_playout()

    def push_digit(self, digit: str) -> None:
        self.leg.push_digit(digit)
