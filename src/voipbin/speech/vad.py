"""Voice activity detection: Silero (ONNX on onnxruntime) behind a webrtcvad gate, plus a segmenter.

Why hand-written: the ``silero_vad`` package imports torch at import time, so we load its bundled
``silero_vad.onnx`` directly (located with ``importlib.util.find_spec``, which does not execute the
package) and run it on onnxruntime. One ``InferenceSession`` is shared by every call; each stream
keeps its own recurrent state and context window.

webrtcvad (µs per frame) runs first: while we are in silence and it hears nothing, Silero (~0.2-0.35
ms per frame, almost all of it onnxruntime's per-run overhead) is skipped. Both are cheaper than a
thread hop, so the segmenter runs inline and is sans-I/O: feed PCM16 bytes, get :class:`VadEvent`
values back. Many calls on one loop use :meth:`VadSegmenter.feed_batched` instead: the frames that
need Silero in one loop iteration run as one batch (:class:`SileroBatch`; ~45-55 µs per stream at
8-30 streams against ~350 µs alone, measured on this 2-core machine).

Hysteresis follows VoIPBIN's ``vad_config``: speech must last ``start_secs`` before a segment
starts, silence must last ``stop_secs`` before it ends; a frame counts as speech when Silero's
probability is >= ``confidence`` and its loudness (see :func:`voipbin.speech.audio.volume`) is
>= ``min_volume``. Reported times are the first speech frame and the first silent frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from voipbin.speech.audio import check_rate, pcm16_to_float, volume


class OnnxSession(Protocol):
    """The part of ``onnxruntime.InferenceSession`` used here (onnxruntime ships no type hints)."""

    def run(self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class _WebRtcVad(Protocol):
    """``webrtcvad.Vad`` (a C extension without type hints)."""

    def is_speech(self, buf: bytes, sample_rate: int) -> bool: ...


_session_lock = threading.Lock()
_session: OnnxSession | None = None


def silero_model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("silero-vad is not installed (pip install --no-deps silero-vad)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.exists():
        raise RuntimeError(f"silero model missing at {path}")
    return path


def silero_session() -> OnnxSession:
    """The one process-wide Silero InferenceSession (created on first use)."""
    global _session
    with _session_lock:
        if _session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            _session = ort.InferenceSession(
                str(silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        return _session


class SileroVAD:
    """Per-stream Silero state. Frames are 256 samples at 8 kHz, 512 at 16 kHz (32 ms)."""

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = check_rate(sample_rate)
        self.frame_samples = 256 if sample_rate == 8000 else 512
        self._context_samples = 32 if sample_rate == 8000 else 64
        self._session = silero_session()
        self._sr = np.array(sample_rate, dtype=np.int64)
        self._fresh = False  # the state is the initial one (reset() has nothing to do)
        self.reset()

    def reset(self) -> None:
        if self._fresh:
            return  # called on every quiet frame: no new arrays while nothing changed
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, self._context_samples), dtype=np.float32)
        self._fresh = True

    def samples(self, frame: bytes) -> np.ndarray:
        """The frame as the model's (1, n) float input (checked for size)."""
        x = pcm16_to_float(frame).reshape(1, -1)
        if x.shape[1] != self.frame_samples:
            raise ValueError(f"Silero needs {self.frame_samples}-sample frames, got {x.shape[1]}")
        return x

    def model_input(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self._context, x], axis=1)

    def advance(self, x: np.ndarray, state: np.ndarray) -> None:
        """After a run on ``x``: keep the model's new recurrent state and ``x``'s tail as context."""
        self._state = state
        self._context = x[:, -self._context_samples :]
        self._fresh = False

    def probability(self, frame: bytes) -> float:
        x = self.samples(frame)
        out, state = self._session.run(
            None, {"input": self.model_input(x), "state": self._state, "sr": self._sr}
        )
        self.advance(x, state)
        return float(out[0][0])


_Item = tuple[SileroVAD, np.ndarray, "asyncio.Future[float]"]  # a stream, its frame, its answer


class SileroBatch:
    """Silero for the frames of many streams that arrive in one loop iteration, in one run.

    Why: one run costs ~0.35 ms whatever its size up to ~30 streams (onnxruntime's per-run overhead
    dominates this small model), and at 60 AI calls the per-frame runs were the control loop's
    largest item after the I/O callbacks. The first request of an iteration schedules the run with
    ``call_soon``, so every listener woken by the same media tick joins it; each stream's recurrent
    state is gathered into the batch and scattered back. A stream has at most one frame per run (its
    next frame depends on this one's state): a second one waits for the next run.

    The run itself goes to a thread of its own (onnxruntime releases the GIL while it computes): a
    batch of 30-60 frames takes 1.5-3 ms, which held the loop, and every other call's frame, for that
    long on each media tick. One batch is in flight at a time; what is asked meanwhile forms the next.
    """

    def __init__(self) -> None:
        self._pending: list[_Item] = []
        self._scheduled = False
        self._inflight = False
        self.runs = 0  # batches run
        self.frames = 0  # frames they held

    def probability(self, vad: SileroVAD, frame: bytes) -> asyncio.Future[float]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[float] = loop.create_future()
        self._pending.append((vad, vad.samples(frame), fut))
        self._schedule(loop)
        return fut

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and not self._inflight and self._pending:
            self._scheduled = True
            loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        now: dict[int, list[_Item]] = {}  # by sample rate
        seen: set[int] = set()
        for item in pending:
            if id(item[0]) in seen:
                self._pending.append(item)  # same stream twice: after this one's state is known
                continue
            seen.add(id(item[0]))
            now.setdefault(item[0].sample_rate, []).append(item)
        batches: list[tuple[list[_Item], dict[str, np.ndarray]]] = []
        for items in now.values():
            feed = self._inputs(items)
            if feed is not None:
                batches.append((items, feed))
        loop = asyncio.get_running_loop()
        if not batches:
            self._schedule(loop)
            return
        self._inflight = True
        session = batches[0][0][0][0]._session
        job = loop.run_in_executor(_silero_thread(), _run_batches, session, [feed for _, feed in batches])
        job.add_done_callback(lambda done: self._scatter(loop, batches, done))

    @staticmethod
    def _inputs(
        items: list[_Item],
    ) -> dict[str, np.ndarray] | None:
        try:
            inp = np.concatenate([vad.model_input(x) for vad, x, _ in items], axis=0)
            state = np.concatenate([vad._state for vad, _, _ in items], axis=1)
        except Exception as exc:  # every waiting frame fails the same way
            _fail(items, exc)
            return None
        return {"input": inp, "state": state, "sr": items[0][0]._sr}

    def _scatter(
        self,
        loop: asyncio.AbstractEventLoop,
        batches: list[tuple[list[_Item], dict[str, np.ndarray]]],
        done: asyncio.Future[list[tuple[np.ndarray, np.ndarray] | BaseException]],
    ) -> None:
        self._inflight = False
        try:
            results = done.result()
        except BaseException as exc:  # the thread pool is gone (shutdown): the frames fail
            results = [exc] * len(batches)
        for (items, _), result in zip(batches, results, strict=True):
            if isinstance(result, BaseException):
                _fail(items, result)
                continue
            out, states = result
            self.runs += 1
            self.frames += len(items)
            for i, (vad, x, fut) in enumerate(items):
                vad.advance(x, states[:, i : i + 1, :])
                if not fut.done():
                    fut.set_result(float(out[i][0]))
        self._schedule(loop)


def _fail(items: list[_Item], exc: BaseException) -> None:
    for _, _, fut in items:
        if not fut.done():
            fut.set_exception(exc)


def _run_batches(
    session: OnnxSession, feeds: list[dict[str, np.ndarray]]
) -> list[tuple[np.ndarray, np.ndarray] | BaseException]:
    """On the Silero thread: each batch's (probabilities, states), or the error it raised."""
    out: list[tuple[np.ndarray, np.ndarray] | BaseException] = []
    for feed in feeds:
        try:
            probs, states = session.run(None, feed)
            out.append((probs, states))
        except Exception as exc:
            out.append(exc)
    return out


_thread_lock = threading.Lock()
_thread: ThreadPoolExecutor | None = None


def _silero_thread() -> ThreadPoolExecutor:
    """The process's one Silero thread (batches run one at a time anyway; the speech pool's threads
    stay free for Whisper, Piper and Smart Turn). Created from the loop thread, whose scheduling it
    copies (see :func:`_schedule_like`)."""
    global _thread
    with _thread_lock:
        if _thread is None:
            loop_tid = threading.get_native_id()
            _thread = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="silero", initializer=_schedule_like, initargs=(loop_tid,)
            )
        return _thread


def _schedule_like(tid: int) -> None:
    """Run as real-time as thread ``tid`` (the control loop's) when that one is real-time.

    Why: this thread takes the GIL on every media tick (to hand a batch's results back). An ordinary
    thread that the OS deschedules while it holds the GIL stalls the real-time control and media
    threads until it runs again: on the loaded 2-core machine, for several ms. Its compute is the
    small Silero model only (~10 % of a core at 60 calls), so the real-time slot is bounded.
    """
    with contextlib.suppress(OSError, AttributeError):
        policy = os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK
        if policy in (os.SCHED_RR, os.SCHED_FIFO):
            os.sched_setscheduler(0, policy | os.SCHED_RESET_ON_FORK, os.sched_getparam(tid))


_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SileroBatch] = weakref.WeakKeyDictionary()


def silero_batch() -> SileroBatch:
    """The running loop's shared batch."""
    loop = asyncio.get_running_loop()
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = SileroBatch()
    return batch


class WebRtcGate:
    """webrtcvad on the 10 ms sub-frames of a Silero frame: True if any of them sounds like speech."""

    def __init__(self, sample_rate: int = 8000, mode: int = 0) -> None:
        import webrtcvad

        self.sample_rate = check_rate(sample_rate)
        self._vad: _WebRtcVad = webrtcvad.Vad(mode)
        self._sub = sample_rate // 100 * 2  # bytes in 10 ms

    def is_speech(self, frame: bytes) -> bool:
        sub = self._sub
        return any(
            self._vad.is_speech(frame[i : i + sub], self.sample_rate)
            for i in range(0, len(frame) - sub + 1, sub)
        )


@dataclass(frozen=True)
class VadConfig:
    """VoIPBIN ``vad_config`` (same names, ranges and defaults)."""

    confidence: float = 0.7
    start_secs: float = 0.2
    stop_secs: float = 0.2
    min_volume: float = 0.6

    def __post_init__(self) -> None:
        if not 0 <= self.confidence <= 1 or not 0 <= self.min_volume <= 1:
            raise ValueError("confidence and min_volume must be within 0..1")
        if not 0 <= self.start_secs <= 30 or not 0 <= self.stop_secs <= 30:
            raise ValueError("start_secs and stop_secs must be within 0..30")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, **overrides: float) -> VadConfig:
        values = {
            k: float(v) for k, v in (data or {}).items() if k in cls.__dataclass_fields__ and v is not None
        }
        values.update(overrides)
        return cls(**values)


class VadState(Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass
class VadEvent:
    kind: str  # "start" | "end"
    time: float  # seconds from stream start
    start: float = 0.0  # for "end": when the segment started
    audio: bytes = field(default=b"", repr=False)  # for "end" when collecting: the segment's PCM


class VadSegmenter:
    """Streaming speech segmenter with start/stop hysteresis.

    ``collect=True`` keeps each segment's audio (plus ``pre_roll_secs`` before the start) and returns
    it on the "end" event, which is what VAD-segmented transcription needs. ``max_segment_secs``
    forces a cut in very long speech so batch recognisers get bounded inputs.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        config: VadConfig | None = None,
        *,
        collect: bool = False,
        pre_roll_secs: float = 0.3,
        max_segment_secs: float = 30.0,
        use_gate: bool = True,
    ) -> None:
        self.sample_rate = check_rate(sample_rate)
        self.config = config or VadConfig()
        self.silero = SileroVAD(sample_rate)
        self.gate = WebRtcGate(sample_rate) if use_gate else None
        self.frame_bytes = self.silero.frame_samples * 2
        self.frame_secs = self.silero.frame_samples / sample_rate
        self.collect = collect
        self.max_segment_secs = max_segment_secs
        self.state = VadState.QUIET
        self.silero_frames = 0  # how many frames actually ran Silero (the gate's saving)
        self._pending = b""
        self._frames_done = 0
        self._run = 0.0
        self._misses = 0
        self._mark = 0.0  # start time of the candidate segment, or of the candidate silence
        self._seg_start = 0.0
        keep = pre_roll_secs + self.config.start_secs
        self._preroll: deque[bytes] = deque(maxlen=max(1, round(keep / self.frame_secs) + 1))
        self._segment: list[bytes] = []

    @property
    def time(self) -> float:
        return self._frames_done * self.frame_secs

    @property
    def in_speech(self) -> bool:
        return self.state in (VadState.SPEAKING, VadState.STOPPING)

    def _gated_out(self, frame: bytes) -> bool:
        """True if the frame is silence without asking Silero (too quiet, or the gate hears none)."""
        quiet = self.state == VadState.QUIET
        if volume(frame) < self.config.min_volume or (quiet and self.gate and not self.gate.is_speech(frame)):
            if quiet:
                self.silero.reset()
            return True
        self.silero_frames += 1
        return False

    def is_speech_frame(self, frame: bytes) -> bool:
        if self._gated_out(frame):
            return False
        return self.silero.probability(frame) >= self.config.confidence

    def _frames(self, pcm: bytes) -> list[bytes]:
        data = self._pending + pcm
        n = len(data) // self.frame_bytes
        self._pending = data[n * self.frame_bytes :]
        return [data[i * self.frame_bytes : (i + 1) * self.frame_bytes] for i in range(n)]

    def feed(self, pcm: bytes) -> list[VadEvent]:
        events: list[VadEvent] = []
        for frame in self._frames(pcm):
            events.extend(self._frame(frame, self.is_speech_frame(frame)))
        return events

    async def feed_batched(self, pcm: bytes, batch: SileroBatch) -> list[VadEvent]:
        """:meth:`feed`, with the Silero runs joined to other streams' in ``batch``."""
        events: list[VadEvent] = []
        for frame in self._frames(pcm):
            speech = not self._gated_out(frame) and (
                await batch.probability(self.silero, frame) >= self.config.confidence
            )
            events.extend(self._frame(frame, speech))
        return events

    def flush(self) -> list[VadEvent]:
        """End of stream: close an open segment."""
        if self.in_speech:
            end = self._mark if self.state == VadState.STOPPING else self.time
            return [self._end(end)]
        self.state = VadState.QUIET
        return []

    def cut(self) -> list[VadEvent]:
        """End the open segment now (the turn detector decided the caller is done): the batch
        recogniser gets it at once instead of after ``stop_secs`` of silence."""
        if not self.in_speech:
            return []
        end = self._mark if self.state == VadState.STOPPING else self.time
        return [self._end(end)]

    @property
    def last_frame_speech(self) -> bool:
        """Whether the caller's voice is on at the latest frame (a starting run counts as voice)."""
        return self.state in (VadState.SPEAKING, VadState.STARTING)

    def _frame(self, frame: bytes, speech: bool) -> list[VadEvent]:
        t = self.time
        self._frames_done += 1
        dur = self.frame_secs
        cfg = self.config
        events: list[VadEvent] = []
        st = self.state
        if self.collect:
            (self._segment if self.in_speech else self._preroll).append(frame)
        if st == VadState.QUIET:
            if speech:
                self._mark, self._run, self._misses = t, dur, 0
                self.state = VadState.STARTING
                if self._run >= cfg.start_secs:
                    events.append(self._start())
        elif st == VadState.STARTING:
            if speech:
                self._misses = 0
                self._run += dur
                if self._run >= cfg.start_secs:
                    events.append(self._start())
            else:
                # One quiet frame (a stop consonant's closure) does not cancel a starting segment.
                self._misses += 1
                if self._misses > 1:
                    self.state = VadState.QUIET
        elif st == VadState.SPEAKING:
            if not speech:
                self._mark, self._run = t, dur
                self.state = VadState.STOPPING
                if self._run >= cfg.stop_secs:
                    events.append(self._end(self._mark))
        elif st == VadState.STOPPING:
            if speech:
                self.state = VadState.SPEAKING
            else:
                self._run += dur
                if self._run >= cfg.stop_secs:
                    events.append(self._end(self._mark))
        if self.in_speech and self.time - self._seg_start >= self.max_segment_secs:
            events.append(self._end(self.time))
            self._seg_start = self.time
            self.state = VadState.SPEAKING
            events.append(VadEvent("start", self.time))
        return events

    def _start(self) -> VadEvent:
        self.state = VadState.SPEAKING
        self._seg_start = self._mark
        if self.collect:  # the pre-roll already holds the frames of the start run
            self._segment = list(self._preroll)
            self._preroll.clear()
        return VadEvent("start", self._mark)

    def _end(self, end: float) -> VadEvent:
        self.state = VadState.QUIET
        audio = b"".join(self._segment) if self.collect else b""
        self._segment = []
        self.silero.reset()
        return VadEvent("end", end, start=self._seg_start, audio=audio)
