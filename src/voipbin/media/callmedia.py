"""``CallMedia``: what the calls layer needs of a call's media, wherever it runs.

Two implementations: :class:`~voipbin.media.mediasession.MediaSession` (in this process, on the
media thread) and :class:`~voipbin.media.remote.RemoteMediaSession` (in the media worker process).
The node picks one (``VOIPBIN_MEDIA_PROCESS``); the calls layer only sees this protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from voipbin.media.dtmf import DtmfDigit
from voipbin.media.recorder import RecordDirection, RecordingInfo
from voipbin.media.stats import RtpStats
from voipbin.media.taps import Tap


class CallMedia(Protocol):
    @property
    def local_port(self) -> int: ...

    @property
    def family_version(self) -> int: ...

    @property
    def stats(self) -> RtpStats: ...

    @property
    def queued_frames(self) -> int: ...

    @property
    def recording(self) -> bool: ...

    def negotiate(
        self,
        remote_addr: str,
        remote_port: int,
        payload_type: int = 0,
        dtmf_payload_type: int | None = None,
        ptime: int = 20,
        *,
        latch: bool = False,
        rtcp_port: int | None = None,
    ) -> None: ...

    def start(self) -> None: ...

    async def rebind(self, host: str) -> None: ...

    async def play_wav(self, path: str | Path, *, wait: bool = True) -> bool: ...

    async def play_pcm(self, source: Any, rate: int = 8000, *, wait: bool = True) -> bool: ...

    async def enqueue(self, pcm: bytes | np.ndarray, *, final: bool = False) -> bool: ...

    def flush(self) -> int: ...

    async def wait_played(self) -> None: ...

    async def record_start(
        self, path: str | Path, direction: RecordDirection = "both", stereo: bool = False, maxsize: int = 250
    ) -> None: ...

    async def record_stop(self) -> RecordingInfo | None: ...

    def tap(self, direction: str = "in", maxsize: int = 50) -> Tap: ...

    def untap(self, tap: Tap) -> None: ...

    def on_dtmf(self, callback: Callable[[DtmfDigit], None]) -> None: ...

    def on_lost(self, callback: Callable[[], None]) -> None: ...

    async def next_dtmf(self) -> DtmfDigit: ...

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None: ...

    def bridge(self, other: CallMedia, max_queue: int = 3) -> object: ...

    def unbridge(self) -> None: ...

    async def close(self) -> RecordingInfo | None: ...


class MediaFactory(Protocol):
    """A new call's media bound on ``host``, not started; ``near``: the call it will be bridged to."""

    def __call__(self, host: str, *, near: CallMedia | None = None) -> Awaitable[CallMedia]: ...
