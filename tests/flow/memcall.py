"""An in-memory call for engine tests: a real ``CallControl`` peer without SIP.

Time passes with real asyncio sleeps (a WAV plays for its length, DTMF tones take their duration),
hanging up ends every wait with ``CallHungUp``, DTMF can be injected, and the call row moves through
the same status changes the SIP-backed call makes (``finish_call``), so the API sees a real call.

It also has the ``CallAudio`` port: ``audio_in`` delivers a 20 ms frame per 20 ms of real time (what
tests queue with ``speak``, else silence) and ``play_stream`` plays at real-time pace into ``played``
(what the caller heard, with times), so barge-in and latency behave as on a line.
"""

from __future__ import annotations

import asyncio
import io
import uuid
import wave
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

from voipbin.flow.interfaces import CallHungUp, RecordingRequest
from voipbin.node import Node
from voipbin.speech.audio import StreamResampler

T = TypeVar("T")

FRAME_BYTES = 320  # 20 ms of 8 kHz PCM16
FRAME_SECONDS = 0.02
SILENCE = bytes(FRAME_BYTES)


def wav_seconds(source: str | Path | bytes) -> float:
    with wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as w:
        return w.getnframes() / w.getframerate()


class MemoryCall:
    def __init__(self, platform: Node, call_id: uuid.UUID, customer_id: uuid.UUID) -> None:
        self.platform = platform
        self._call_id = call_id
        self._customer_id = customer_id
        self._hung = asyncio.Event()
        self._dtmf: asyncio.Queue[str] = asyncio.Queue()
        self.answered = False
        self.activeflow_id: uuid.UUID | None = None
        self.hangup_reason: str | None = None
        self.log: list[tuple[str, object]] = []  # (operation, argument) in order
        self.recording: RecordingRequest | None = None
        # CallAudio state
        self._inbound: deque[tuple[bytes, str | None]] = deque()  # (frame, label of an utterance start)
        self.onsets: dict[str, float] = {}  # label -> loop time its first frame was delivered
        self.played: list[tuple[float, bytes]] = []  # (loop time, frame) the caller heard
        self.flushes: list[tuple[float, int]] = []  # (loop time, frames dropped)
        self._out_gen = 0
        self._out_pending = 0

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
            await self.platform.call_records.set_status(self._call_id, "progressing")
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
        await self.platform.call_records.finish(self._call_id, reason=reason, by="local")

    async def remote_hangup(self) -> None:
        """The far end hangs up: what a call manager does — end the call, stop its flow."""
        if self._hung.is_set():
            return
        self._hung.set()
        self.log.append(("remote_hangup", None))
        await self.platform.call_records.finish(self._call_id, reason="normal", by="remote")
        if self.activeflow_id is not None:
            await self.platform.flows.stop(self.activeflow_id, wait=False)

    async def wait_hangup(self) -> None:
        await self._hung.wait()

    # -- CallAudio ---------------------------------------------------------------------------------
    def speak(self, pcm: bytes, label: str = "") -> None:
        """Queue 8 kHz PCM16 as what the caller says next (delivered by ``audio_in`` in real time)."""
        pcm = pcm + bytes(-len(pcm) % FRAME_BYTES)
        for i in range(0, len(pcm), FRAME_BYTES):
            self._inbound.append((pcm[i : i + FRAME_BYTES], label if i == 0 and label else None))

    @property
    def speaking(self) -> bool:
        return bool(self._inbound)

    async def audio_in(self) -> AsyncIterator[bytes]:
        if self._hung.is_set():
            raise CallHungUp(str(self._call_id))
        loop = asyncio.get_running_loop()
        t0, n = loop.time(), 0
        while not self._hung.is_set():
            delay = t0 + n * FRAME_SECONDS - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            n += 1
            frame, label = self._inbound.popleft() if self._inbound else (SILENCE, None)
            if label:
                self.onsets[label] = loop.time()
            yield frame
        raise CallHungUp(str(self._call_id))

    async def play_stream(self, chunks: AsyncIterable[bytes], rate: int = 8000) -> bool:
        gen = self._out_gen
        loop = asyncio.get_running_loop()
        resampler = StreamResampler(rate, 8000)
        self.log.append(("play_stream", rate))

        async def frames() -> AsyncIterator[bytes]:
            buf = bytearray()
            async for chunk in chunks:
                buf += resampler.process(chunk)
                while len(buf) >= FRAME_BYTES:
                    self._out_pending = len(buf) // FRAME_BYTES
                    yield bytes(buf[:FRAME_BYTES])
                    del buf[:FRAME_BYTES]
            buf += resampler.process(b"", last=True)
            if buf:
                yield bytes(buf) + bytes(-len(buf) % FRAME_BYTES)

        async def play() -> bool:
            due = loop.time()
            async for frame in frames():
                due = max(due, loop.time())  # a late producer leaves a gap, it does not speed up
                await asyncio.sleep(due - loop.time())
                if gen != self._out_gen:
                    return False
                self.played.append((loop.time(), frame))
                due += FRAME_SECONDS
            await asyncio.sleep(max(0.0, due - loop.time()))  # the last frame takes its 20 ms too
            return gen == self._out_gen

        return await self._guard(play())

    def flush_playout(self) -> int:
        self._out_gen += 1
        dropped, self._out_pending = self._out_pending, 0
        self.flushes.append((asyncio.get_running_loop().time(), dropped))
        self.log.append(("flush", dropped))
        return dropped

    def heard_pcm(self) -> bytes:
        return b"".join(frame for _, frame in self.played)

    def ops(self) -> list[str]:
        return [op for op, _ in self.log]
