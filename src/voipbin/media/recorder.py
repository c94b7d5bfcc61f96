"""WAV recording of a session: inbound, outbound, or both (mixed mono or stereo in=left, out=right).

The recorder reads a :class:`~voipbin.media.taps.Tap`, so a slow disk can never stall the media clock,
and writes 16-bit 8 kHz PCM as frames arrive (memory stays constant). Frames carry the session tick,
so both directions are aligned, and ticks missing from the stream (a dropped tap frame, a loop stall)
are written as silence: the file's duration always matches the wall-clock time recorded.

Crash-friendly: every batch is written straight through to the file (no user-space buffer), and about
once a second of audio the header's sizes are rewritten, so a file left behind by ``kill -9`` is a
valid WAV holding all but the last second (and :func:`~voipbin.media.wav.repair_wav` recovers the
rest). ``stop()`` drains the tap and finalises the RIFF header.

Off the loop: mixing and every ``write``/``seek`` run on one shared writer thread (a single worker
keeps each file's writes in order), so a slow disk or a page-cache flush never blocks the control
loop — with 300 recordings that was 1 500 ``write(2)`` calls a second on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from voipbin.media.engine import inherit_control_priority
from voipbin.media.taps import Frame, Tap, TapClosed
from voipbin.media.wav import FRAME_BYTES, FRAME_SAMPLES, MEDIA_RATE, wav_header

log = logging.getLogger(__name__)
RecordDirection = Literal["in", "out", "both"]
_SILENCE = bytes(FRAME_BYTES)
_MAX_GAP_TICKS = 3000  # never invent more than a minute of silence for one gap
WRITE_BATCH = 20  # tapped frames per wake-up and write (200-400 ms); the tap holds 250
HEADER_SYNC_FRAMES = 50  # rewrite the header sizes after every second of audio
# Real-time like the control thread when it is (it holds the GIL while mixing: see the engine).
_WRITER = concurrent.futures.ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="voipbin-recorder", initializer=inherit_control_priority
)


@dataclass(slots=True, frozen=True)
class RecordingInfo:
    path: Path
    direction: str
    channels: int
    frames: int  # 20 ms frames written
    dropped: int  # frames the tap dropped (written as silence)

    @property
    def duration(self) -> float:
        return self.frames * FRAME_SAMPLES / MEDIA_RATE


def _log_failure(fut: concurrent.futures.Future[None]) -> None:
    exc = fut.exception()
    if exc is not None:  # e.g. disk full: the call goes on, the recording is short
        log.error("recording write failed: %s", exc)


class Recorder:
    def __init__(
        self, path: str | Path, tap: Tap, direction: RecordDirection = "both", stereo: bool = False
    ) -> None:
        if direction not in ("in", "out", "both"):
            raise ValueError("direction must be in, out or both")
        self.path = Path(path)
        self.direction = direction
        self.stereo = stereo and direction == "both"
        self.tap = tap
        self.frames = 0
        self._channels = 2 if self.stereo else 1
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in stop()
        self._fh.write(wav_header(self._channels, MEDIA_RATE, 2, 0))
        self._fh.flush()
        self._data_bytes = 0
        self._synced_frames = 0
        self._tick: int | None = None
        self._in = _SILENCE
        self._out = _SILENCE
        self._task: asyncio.Task[None] | None = None
        self._info: RecordingInfo | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                frames = await self.tap.get_batch(WRITE_BATCH)
            except TapClosed:
                return
            self._consume(frames)

    def _consume(self, frames: list[Frame]) -> None:
        """Align a batch of frames by tick and write every completed tick with one numpy op and one
        write (the tick in progress waits: its other direction may be in the next batch)."""
        if not self._consume_contiguous(frames):
            self._consume_each(frames)

    def _consume_contiguous(self, frames: list[Frame]) -> bool:
        """The common batch, without a Python step per frame: every tick after the held one, in
        order, each with all of this recording's directions (in before out, as the clock emits them).
        False (nothing consumed) for anything else: a gap, a tick split across batches, drops."""
        if not frames or self._tick is None:
            return False
        step = 2 if self.direction == "both" else 1
        k = len(frames) // step
        if k * step != len(frames) or frames[0].tick != self._tick + 1 or frames[-1].tick != self._tick + k:
            return False
        pcms = [f.pcm for f in frames]
        if step == 2:
            if [f.tick for f in frames[::2]] != [f.tick for f in frames[1::2]] or any(
                f.direction != "in" for f in frames[::2]
            ):
                return False
            new_in, new_out = pcms[::2], pcms[1::2]
        elif self.direction == "in":
            new_in, new_out = pcms, [_SILENCE] * k
        else:
            new_in, new_out = [_SILENCE] * k, pcms
        ticks = [f.tick for f in frames[::step]]
        if ticks != list(range(self._tick + 1, self._tick + k + 1)):
            return False
        ins = [self._in, *new_in[:-1]]
        outs = [self._out, *new_out[:-1]]
        self._in, self._out = new_in[-1], new_out[-1]
        self._tick = ticks[-1]
        self._write(ins, outs)
        return True

    def _consume_each(self, frames: list[Frame]) -> None:
        ins: list[bytes] = []
        outs: list[bytes] = []
        for frame in frames:
            if self._tick is None:
                self._tick = frame.tick
            elif frame.tick > self._tick:
                ins.append(self._in)
                outs.append(self._out)
                self._in = self._out = _SILENCE
                gap = min(frame.tick - self._tick - 1, _MAX_GAP_TICKS)
                ins.extend([_SILENCE] * gap)
                outs.extend([_SILENCE] * gap)
                self._tick = frame.tick
            elif frame.tick < self._tick:
                continue  # cannot happen with one clock; ignore defensively
            if frame.direction == "in":
                self._in = frame.pcm
            else:
                self._out = frame.pcm
        self._write(ins, outs)

    def _write(self, ins: list[bytes], outs: list[bytes]) -> None:
        if ins:
            _WRITER.submit(self._write_now, ins, outs).add_done_callback(_log_failure)

    def _write_now(self, ins: list[bytes], outs: list[bytes]) -> None:
        """On the writer thread. ``frames`` is published last: what it counts is in the file."""
        if self.direction == "in":
            data = b"".join(ins)
        elif self.direction == "out":
            data = b"".join(outs)
        else:
            a = np.frombuffer(b"".join(ins), dtype="<i2")
            b = np.frombuffer(b"".join(outs), dtype="<i2")
            if self.stereo:
                data = np.column_stack((a, b)).astype("<i2").tobytes()
            else:
                data = np.clip(a.astype(np.int32) + b, -32768, 32767).astype("<i2").tobytes()
        self._fh.write(data)
        self._fh.flush()  # one write(2) per batch: what was recorded is in the file if the process dies
        self._data_bytes += len(data)
        frames = self.frames + len(ins)
        if frames - self._synced_frames >= HEADER_SYNC_FRAMES:
            self._sync_header(frames)
        self.frames = frames

    def _sync_header(self, frames: int) -> None:
        """Rewrite the 44-byte header with the sizes written so far (a seek and one small write)."""
        self._fh.seek(0)
        self._fh.write(wav_header(self._channels, MEDIA_RATE, 2, self._data_bytes))
        self._fh.seek(0, 2)
        self._fh.flush()
        self._synced_frames = frames

    def _finish_now(self) -> None:
        self._sync_header(self.frames)
        self._fh.close()

    async def stop(self) -> RecordingInfo:
        """Finish: drain frames already tapped, close the file, return what was written."""
        if self._info is not None:
            return self._info
        self.tap.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        rest: list[Frame] = []
        while (nxt := self.tap.get_nowait()) is not None:
            rest.append(nxt)
        self._consume(rest)
        if self._tick is not None:  # the last tick
            self._write([self._in], [self._out])
        await asyncio.wrap_future(_WRITER.submit(self._finish_now))  # after every queued write
        self._info = RecordingInfo(self.path, self.direction, self._channels, self.frames, self.tap.dropped)
        return self._info
