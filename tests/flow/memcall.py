"""An in-memory call for engine tests: a real ``CallControl`` peer without SIP.

Time passes with real asyncio sleeps (a WAV plays for its length, DTMF tones take their duration),
hanging up ends every wait with ``CallHungUp``, DTMF can be injected, and the call row moves through
the same status changes the SIP-backed call makes (``finish_call``), so the API sees a real call.
"""

from __future__ import annotations

import asyncio
import io
import uuid
import wave
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from voipbin.calls.service import finish_call, set_status
from voipbin.flow import stop_flow
from voipbin.flow.interfaces import CallHungUp, RecordingRequest
from voipbin.platform import Platform
from voipbin.store.tables import Call

T = TypeVar("T")


def wav_seconds(source: str | Path | bytes) -> float:
    with wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as w:
        return w.getnframes() / w.getframerate()


class MemoryCall:
    def __init__(self, platform: Platform, call_id: uuid.UUID, customer_id: uuid.UUID) -> None:
        self.platform = platform
        self._call_id = call_id
        self._customer_id = customer_id
        self._hung = asyncio.Event()
        self._dtmf: asyncio.Queue[str] = asyncio.Queue()
        self.answered = False
        self.hangup_reason: str | None = None
        self.log: list[tuple[str, object]] = []  # (operation, argument) in order
        self.recording: RecordingRequest | None = None

    @property
    def call_id(self) -> uuid.UUID:
        return self._call_id

    @property
    def customer_id(self) -> uuid.UUID:
        return self._customer_id

    @property
    def is_up(self) -> bool:
        return self.answered and not self._hung.is_set()

    @property
    def is_hungup(self) -> bool:
        return self._hung.is_set()

    async def _guard(self, work: Awaitable[T]) -> T:
        if self._hung.is_set():
            raise CallHungUp(str(self._call_id))
        task = asyncio.ensure_future(work)
        hung = asyncio.ensure_future(self._hung.wait())
        try:
            await asyncio.wait({task, hung}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, hung):
                t.cancel()
            await asyncio.gather(task, hung, return_exceptions=True)
        if task.done() and not task.cancelled() and task.exception() is None:
            return task.result()
        raise CallHungUp(str(self._call_id))

    async def answer(self) -> None:
        await self._guard(asyncio.sleep(0.005))
        if not self.answered:
            self.answered = True
            await set_status(self.platform, self._call_id, "progressing")
        self.log.append(("answer", None))

    async def play_wav(self, source: str | Path | bytes) -> None:
        seconds = wav_seconds(source)
        self.log.append(("play", Path(source).name if not isinstance(source, bytes) else len(source)))
        await self._guard(asyncio.sleep(seconds))

    async def play_tts(self, text: str, language: str, voice: str) -> None:
        self.log.append(("tts", text))
        await self._guard(asyncio.sleep(0.01 * len(text.split())))

    async def send_dtmf(self, digits: str, duration_ms: int, interval_ms: int) -> None:
        self.log.append(("dtmf_send", (digits, duration_ms, interval_ms)))
        await self._guard(asyncio.sleep(len(digits) * (duration_ms + interval_ms) / 1000))

    def inject_dtmf(self, digits: str) -> None:
        for d in digits:
            self._dtmf.put_nowait(d)

    async def receive_digits(self, max_len: int, terminator: str, duration: float) -> str:
        async def collect() -> str:
            got = ""
            loop = asyncio.get_running_loop()
            deadline = loop.time() + duration
            while max_len == 0 or len(got) < max_len:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    async with asyncio.timeout(left):
                        digit = await self._dtmf.get()
                except TimeoutError:
                    break
                if terminator and digit in terminator:
                    break
                got += digit
            return got

        digits = await self._guard(collect())
        self.log.append(("dtmf_received", digits))
        return digits

    async def recording_start(self, request: RecordingRequest) -> uuid.UUID:
        if self._hung.is_set():
            raise CallHungUp(str(self._call_id))
        self.recording = request
        recording_id = uuid.uuid4()
        self.log.append(("recording_start", recording_id))
        return recording_id

    async def recording_stop(self) -> None:
        self.log.append(("recording_stop", None))
        self.recording = None

    async def hangup(self, reason: str) -> None:
        if self._hung.is_set():
            return
        self.hangup_reason = reason
        self._hung.set()
        self.log.append(("hangup", reason))
        await finish_call(self.platform, self._call_id, reason=reason, by="local")

    async def remote_hangup(self) -> None:
        """The far end hangs up: what a call manager does — end the call, stop its flow."""
        if self._hung.is_set():
            return
        self._hung.set()
        self.log.append(("remote_hangup", None))
        await finish_call(self.platform, self._call_id, reason="normal", by="remote")
        async with self.platform.db.session() as session:
            row = await session.get(Call, self._call_id)
        if row is not None:
            await stop_flow(self.platform, row.activeflow_id, wait=False)

    async def wait_hangup(self) -> None:
        await self._hung.wait()

    def ops(self) -> list[str]:
        return [op for op, _ in self.log]
