"""The small typed interfaces the flow engine owns: what it needs from a live call and from call records.

The engine never talks to SIP or RTP; the call manager hands it an object with these methods (the
SIP-backed call implements it, tests use an in-memory peer). Every method raises ``CallHungUp`` once
the call has ended; every awaiting method must be cancellable: when a call ends, its manager stops the
call's activeflow centrally, which cancels the running action (handlers do not race the hangup).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class CallHungUp(Exception):
    """The call ended while (or before) an action used it. Ends the activeflow quietly."""


@dataclass(frozen=True)
class RecordingRequest:
    """recording_start's options (VoIPBIN units: seconds) plus who asked."""

    format: str = "wav"
    end_of_silence: int = 0  # seconds of silence that stop the recording; 0 = never
    end_of_key: str = ""  # "", "none", "any", "*", "#"
    duration: int = 0  # max seconds; 0 = until stopped / hangup
    beep_start: bool = False
    on_end_flow_id: uuid.UUID | None = None
    activeflow_id: uuid.UUID | None = None


@runtime_checkable
class CallControl(Protocol):
    @property
    def call_id(self) -> uuid.UUID: ...

    @property
    def customer_id(self) -> uuid.UUID: ...

    @property
    def is_up(self) -> bool:
        """Answered (media flowing) and not hung up."""
        ...

    @property
    def is_hungup(self) -> bool: ...

    async def answer(self) -> None:
        """Answer an incoming call; a no-op for a call that is already up (e.g. outgoing, answered)."""

    async def play_wav(self, source: str | Path | bytes) -> None:
        """Play a WAV (file path or the file's bytes) to the caller; returns when it has been played."""

    async def play_tts(self, text: str, language: str, voice: str) -> None:
        """Speak ``text``; returns when it has been played."""

    async def send_dtmf(self, digits: str, duration_ms: int, interval_ms: int) -> None:
        """Send RFC 4733 DTMF; returns when all digits have been sent."""

    async def receive_digits(self, max_len: int, terminator: str, duration: float) -> str:
        """Collect DTMF (digits buffered since the last collection first) until ``max_len`` digits
        (0 = no limit), a terminator key (any character of ``terminator``; not included in the result)
        or ``duration`` seconds in total. Returns what was collected, possibly ``""``."""
        ...

    async def recording_start(self, request: RecordingRequest) -> uuid.UUID:
        """Start recording the call; returns the recording id."""
        ...

    async def recording_stop(self) -> None:
        """Stop the current recording (no-op if none)."""

    async def hangup(self, reason: str) -> None:
        """Hang up with a VoIPBIN hangup reason; idempotent."""

    async def wait_hangup(self) -> None:
        """Return when the call has ended."""


@runtime_checkable
class CallConnect(Protocol):
    """Calls that can dial further legs and bridge them (the ``connect`` action)."""

    async def connect(
        self, source: dict[str, Any], destinations: list[dict[str, Any]], anonymous: str = ""
    ) -> tuple[bool, str]:
        """Ring ``destinations`` (first answer wins), bridge the answered leg with this call and return
        ``(answered, hangup_reason)`` once that leg has ended (raises CallHungUp if this call ends)."""
        ...


@runtime_checkable
class CallAudio(Protocol):
    """Streaming audio of a live call, for conversational actions (``ai``, ``ai_talk``).

    Separate from :class:`CallControl` because only calls with a media path have it. PCM is 8 kHz
    mono PCM16LE. Like ``CallControl``, methods raise ``CallHungUp`` once the call has ended.
    """

    def audio_in(self) -> AsyncIterator[bytes]:
        """What the caller says: one 20 ms frame after another, in real time (silence included).
        Ends by raising ``CallHungUp`` when the call ends. One consumer per iterator."""
        ...

    async def play_stream(self, chunks: AsyncIterable[bytes], rate: int = 8000) -> bool:
        """Play PCM16 chunks at ``rate`` as they arrive; returns once played out: True, or False if
        :meth:`flush_playout` cut it short."""
        ...

    def flush_playout(self) -> int:
        """Barge-in: drop queued outbound audio at once (the next frame is silence); frames dropped."""
        ...


@runtime_checkable
class CallRecordsPort(Protocol):
    """What the engine needs of the call records (the calls table's owner implements it)."""

    async def get(self, call_id: uuid.UUID) -> Any:
        """The call (its live state if it is live), or None. Read-only: the owner changes it."""
        ...

    def note(self, call_id: uuid.UUID, **values: Any) -> Any:
        """Change a live call in memory (e.g. its ``activeflow_id``); written with its next change."""
        ...

    def set_action(self, call_id: uuid.UUID, action: dict[str, Any]) -> None:
        """The action the call's flow is executing now (VoIPBIN's ``call.action``)."""

    async def merge_metadata(self, call_id: uuid.UUID, **items: Any) -> Any:
        """Add keys to the call's ``metadata`` (e.g. ``flow_error``)."""
        ...


@runtime_checkable
class LiveCalls(Protocol):
    """The calls live on this node, by id (the call manager implements it)."""

    def live_call(self, call_id: uuid.UUID) -> CallControl | None: ...
