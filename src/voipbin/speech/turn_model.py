"""Smart Turn v3 (end-of-turn audio model, BSD-2, Daily) on our onnxruntime, without Pipecat's runtime.

The ONNX file ships inside the ``pipecat-ai`` wheel; ``make install`` installs that wheel with
``--no-deps`` (none of Pipecat's dependencies, and we never import the package: the file is located
with ``importlib.util.find_spec``, which does not execute it). The file's sha256 is checked against
:data:`SMART_TURN_SHA256` before the first session is built, so a different model is refused rather
than silently used. Licence notice: ``docs/providers-speech.md``.

Input: the last 8 s of the turn at 16 kHz as Whisper-style log-mel features (80 mel bands, 25 ms
window, 10 ms hop, log10 clamped to 8 decades below the peak, scaled to about -1..1), after
zero-mean/unit-variance normalisation of the waveform; shorter audio is left-padded with silence.
Output: the probability that the turn is complete.

Why the feature extraction is ours: the model needs exactly the ``transformers`` Whisper extractor
(with the waveform normalisation and an 8 s window); ``transformers`` is far too heavy to pull in and
faster-whisper (an optional extra) pads and frames differently. The math is the standard one
(Slaney mel filterbank, periodic Hann window, centred reflect-padded STFT), written with numpy.

Inference costs ~50-60 ms of one core, so it runs on the shared speech pool
(:func:`voipbin.speech.executor.run_inference`), never on the event loop, admitted by
:class:`TurnModelQueue`: a bounded number at once, no queue of answers nobody waits for.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voipbin.speech.audio import pcm16_to_float, resample
from voipbin.speech.executor import inference_workers, run_inference
from voipbin.speech.vad import OnnxSession

SMART_TURN_FILE = "smart-turn-v3.2-cpu.onnx"
SMART_TURN_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
SMART_TURN_PACKAGE_VERSION = "1.14.0"  # pipecat-ai, pinned in the Makefile

RATE = 16000
WINDOW_SECS = 8
N_FFT = 400
HOP = 160
N_MELS = 80


class TurnModelUnavailable(RuntimeError):
    """The Smart Turn model file is missing or is not the one we checked."""


def smart_turn_path() -> Path:
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        wheel = f"pipecat-ai=={SMART_TURN_PACKAGE_VERSION}"
        raise TurnModelUnavailable(f"Smart Turn needs the pipecat-ai wheel (pip install --no-deps {wheel})")
    path = Path(next(iter(spec.submodule_search_locations))) / "audio/turn/smart_turn/data" / SMART_TURN_FILE
    if not path.exists():
        raise TurnModelUnavailable(f"Smart Turn model missing at {path}")
    return path


def model_available() -> bool:
    try:
        smart_turn_path()
    except TurnModelUnavailable:
        return False
    return True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_lock = threading.Lock()
_session: OnnxSession | None = None


def smart_turn_session() -> OnnxSession:
    """The process-wide Smart Turn session (checked and loaded on first use, thread-safe)."""
    global _session
    with _lock:
        if _session is None:
            import onnxruntime as ort

            path = smart_turn_path()
            digest = _sha256(path)
            if digest != SMART_TURN_SHA256:
                raise TurnModelUnavailable(f"{path} has sha256 {digest}, expected {SMART_TURN_SHA256}")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1  # many calls share 2 cores: one thread per inference
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            _session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        return _session


# -- Whisper log-mel features ------------------------------------------------------------------------
def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz * 3.0 / 200.0
    log_part = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * 200.0 / 3.0
    log_part = 1000.0 * np.exp((mel - 15.0) * (np.log(6.4) / 27.0))
    return np.where(mel >= 15.0, log_part, linear)


@functools.cache
def _mel_filters() -> np.ndarray:
    """(N_MELS, N_FFT//2+1) triangular filters with Slaney area normalisation."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(RATE / 2)), N_MELS + 2))
    bins = np.linspace(0, RATE // 2, N_FFT // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    tri = np.maximum(0.0, np.minimum(rising, falling))
    return np.asarray(tri * (2.0 / (upper - lower)), dtype=np.float64)


@functools.cache
def _hann() -> np.ndarray:
    n = np.arange(N_FFT)
    return np.asarray(0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT), dtype=np.float64)  # periodic


def log_mel_features(audio16k: np.ndarray) -> np.ndarray:
    """(80, 800) float32 features of the last 8 s of ``audio16k`` (float, -1..1)."""
    n = RATE * WINDOW_SECS
    x = np.asarray(audio16k, dtype=np.float32)[-n:]
    if x.size < n:
        x = np.concatenate([np.zeros(n - x.size, dtype=np.float32), x])
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _hann(), axis=-1)) ** 2  # (frames, bins)
    mel = np.log10(np.maximum(power @ _mel_filters().T, 1e-10)).T[:, :-1]  # (80, 800)
    mel = np.maximum(mel, mel.max() - 8.0)
    return np.asarray((mel + 4.0) / 4.0, dtype=np.float32)


def completion_probability_blocking(pcm: bytes, sample_rate: int) -> float:
    """P(turn complete) for the turn's PCM16 audio so far (blocking: call through the pool)."""
    audio = pcm16_to_float(resample(pcm[-(sample_rate * 2 * WINDOW_SECS) :], sample_rate, RATE))
    features = log_mel_features(audio)[None, ...]
    out = smart_turn_session().run(None, {"input_features": features})
    return float(np.asarray(out[0]).reshape(-1)[0])


async def completion_probability(pcm: bytes, sample_rate: int) -> float:
    """P(turn complete), computed on the shared speech inference pool."""
    return await run_inference(completion_probability_blocking, pcm, sample_rate)


# -- admission -------------------------------------------------------------------------------------
@dataclass
class TurnModelStats:
    runs: int = 0  # inferences that ran
    declined: int = 0  # refused at once: as many running and waiting as allowed
    expired: int = 0  # waited longer than the patience
    dropped: int = 0  # no longer wanted when their turn came (the pause ended, the words decided)


@dataclass
class _Waiter:
    granted: asyncio.Future[bool]
    wanted: Callable[[], bool]


@dataclass
class TurnModelQueue:
    """Admits Smart Turn inferences from every call on one loop to the shared speech pool.

    Why not just the pool's own queue: it is unbounded and FIFO, so under load it fills with
    requests for pauses that are long over, and every call's answer comes later than the last (at 60
    AI calls, turns waited seconds for it). Here at most ``running`` inferences run at once and at
    most ``waiting`` more wait; a request beyond that is declined at once, one that has waited
    ``patience`` seconds expires, and one that is no longer wanted when its turn comes (``wanted()``:
    the caller spoke again, or the words decided) is dropped. Declined or expired, the caller gets
    ``None`` and decides without the model for that pause. The pool is shared with Whisper and Piper.
    """

    running: int
    waiting: int
    patience: float = 0.5
    stats: TurnModelStats = field(default_factory=TurnModelStats)
    _busy: int = field(default=0, init=False)
    _queue: deque[_Waiter] = field(default_factory=deque, init=False)

    async def probability(self, infer: Callable[[], float], wanted: Callable[[], bool]) -> float | None:
        """``infer()`` on the pool once admitted and still ``wanted()``; None if declined/expired/dropped."""
        if self._busy >= self.running:
            if len(self._queue) >= self.waiting:
                self.stats.declined += 1
                return None
            loop = asyncio.get_running_loop()
            waiter = _Waiter(loop.create_future(), wanted)
            self._queue.append(waiter)
            timer = loop.call_later(self.patience, self._expire, waiter)
            try:
                if not await waiter.granted:
                    return None
            except asyncio.CancelledError:
                if waiter.granted.done() and not waiter.granted.cancelled() and waiter.granted.result():
                    self._release()  # granted as we were cancelled: pass the slot on
                raise
            finally:
                timer.cancel()
                if waiter in self._queue:
                    self._queue.remove(waiter)
        else:
            self._busy += 1
        try:

            def run() -> float | None:
                if not wanted():  # checked again on the worker: the pause may have ended meanwhile
                    return None
                return infer()

            p = await run_inference(run)
            if p is None:
                self.stats.dropped += 1
            else:
                self.stats.runs += 1
            return p
        finally:
            self._release()

    def _expire(self, waiter: _Waiter) -> None:
        if not waiter.granted.done():
            self.stats.expired += 1
            self._queue.remove(waiter)
            waiter.granted.set_result(False)

    def _release(self) -> None:
        """A slot is free: hand it to the oldest waiter still wanted (the others are dropped)."""
        while self._queue:
            waiter = self._queue.popleft()
            if waiter.granted.done():
                continue
            if not waiter.wanted():
                self.stats.dropped += 1
                waiter.granted.set_result(False)
                continue
            waiter.granted.set_result(True)  # the slot passes to it: _busy stays
            return
        self._busy -= 1


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TurnModelQueue] = weakref.WeakKeyDictionary()


def turn_model_queue() -> TurnModelQueue:
    """The running loop's queue: one thread of the speech pool kept free for Whisper/Piper (and a
    core for the loops, fakes and everything else on a 2-core machine), as many waiting as running."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        running = max(1, inference_workers() - 1)
        queue = _queues[loop] = TurnModelQueue(running=running, waiting=running)
    return queue
