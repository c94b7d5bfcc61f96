"""The control process's side of the media worker: :class:`MediaWorker` and :class:`RemoteMediaSession`.

``RemoteMediaSession`` has :class:`~voipbin.media.mediasession.MediaSession`'s API (the
:class:`~voipbin.media.callmedia.CallMedia` protocol), so the calls layer cannot tell where its
media runs. Each method is one message to the worker (:mod:`voipbin.media.worker`); the ones that
return something the caller waits for are requests answered by the worker. The rest stay local:

* ``enqueue`` (streamed TTS) does not wait for an answer while the worker's playout queue has room:
  the worker reports each streaming session's queue depth when it changes, and the frames sent
  since that report are counted here; only a producer that would overfill the queue waits for the
  worker's answer (backpressure, as ``PlayoutQueue.enqueue``);
* ``flush`` answers at once with that estimate of the frames dropped (barge-in must not wait for a
  round trip) and bumps the generation, so producers started before it return False;
* taps are local :class:`~voipbin.media.taps.Tap` s fed by the worker's frames;
* ``stats`` is the last snapshot, the final one from ``close``.

If the worker dies, every session it held ends: requests fail with :class:`MediaError`, taps close,
producers return False; the next session starts a new worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voipbin.media.callmedia import CallMedia
from voipbin.media.dtmf import DtmfDigit, deliver_digit
from voipbin.media.errors import MediaError
from voipbin.media.recorder import RecordDirection, RecordingInfo
from voipbin.media.session import PcmSource, check_remote, enqueue_chunks
from voipbin.media.stats import RtpStats
from voipbin.media.taps import Frame, Tap
from voipbin.media.wav import FRAME_BYTES, MEDIA_RATE
from voipbin.media.wire import Channel, Message

log = logging.getLogger(__name__)
START_TIMEOUT = 20.0


class MediaWorker:
    """Starts and talks to one media worker process; ``open_session`` is the calls layer's factory."""

    def __init__(
        self,
        *,
        port_min: int = 20000,
        port_max: int = 20999,
        realtime: bool = False,
        log_level: str = "INFO",
        log_format: str = "text",
    ) -> None:
        self.config = {
            "port_min": port_min, "port_max": port_max, "realtime": realtime,
            "log_level": log_level, "log_format": log_format,
        }  # fmt: skip
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0
        self.scheduling = ""
        self.metrics: dict[str, Any] = {}
        self.restarts = 0
        self._chan: Channel | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._sessions: dict[int, RemoteMediaSession] = {}
        self._taps: dict[int, Tap] = {}
        self._closing = False

    @property
    def running(self) -> bool:
        return self._chan is not None and not self._chan.closed

    async def start(self) -> None:
        async with self._lock:
            if not self.running:
                await self._spawn()

    async def _spawn(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "voipbin.media.worker", "--fd", str(child.fileno()),
                "--config", json.dumps(self.config), pass_fds=(child.fileno(),),
            )  # fmt: skip
        finally:
            child.close()
        reader, writer = await asyncio.open_unix_connection(sock=parent)
        chan = self._chan = Channel(reader, writer)
        self._ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._serve(chan))
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT)
        except (TimeoutError, MediaError) as exc:
            await self._kill()
            raise MediaError(f"the media worker did not start: {exc!r}") from None
        log.info("media worker %d started (%s)", self.pid, self.scheduling or "normal scheduling")

    async def _serve(self, chan: Channel) -> None:
        await chan.serve(self._handle)
        if chan is self._chan:
            self._lost()

    def _lost(self) -> None:
        """The worker is gone: every session it held ends now."""
        if not self._closing:
            log.error("media worker %d exited; %d session(s) lost their media", self.pid, len(self._sessions))
            self.restarts += 1
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(MediaError("media worker exited"))
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(MediaError("media worker exited"))
        sessions, self._sessions = self._sessions, {}
        for s in sessions.values():
            s._ended(lost=True)
        self._taps.clear()
        self._chan = None

    async def _kill(self) -> None:
        if self._chan is not None:
            self._chan.close()
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    async def close(self) -> None:
        self._closing = True
        chan = self._chan
        if chan is not None and not chan.closed:
            chan.send(("exit",))
            with contextlib.suppress(Exception):
                await chan.drain()
        if self.proc is not None:
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                await self._kill()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader
        self._chan = None

    # -- messages --------------------------------------------------------------------------------------
    def _handle(self, msg: Message) -> None:
        kind = msg[0]
        if kind == "f":
            tap = self._taps.get(msg[1])
            if tap is not None:
                tap.put(Frame(msg[2], msg[3], msg[4]))
        elif kind == "r":
            fut = self._pending.pop(msg[1], None)
            if fut is not None and not fut.done():
                if msg[2]:
                    fut.set_result(msg[3])
                else:
                    fut.set_exception(msg[3])
        elif kind == "q":
            s = self._sessions.get(msg[1])
            if s is not None:
                s._report(msg[2], msg[3], msg[4])
        elif kind == "d":
            s = self._sessions.get(msg[1])
            if s is not None:
                s._digit(msg[2])
        elif kind == "m":
            self.metrics = msg[1]
        elif kind == "ready":
            self.pid, self.scheduling = msg[1], msg[2]
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)

    def send(self, msg: Message) -> None:
        if self._chan is None or self._chan.closed:
            raise MediaError("the media worker is not running")
        self._chan.send(msg)

    def request(self, op: str, sid: int, *args: Any) -> asyncio.Future[Any]:
        req = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.send((op, sid, req, *args))
        self._pending[req] = fut
        return fut

    def new_id(self) -> int:
        return next(self._ids)

    def add_tap(self, tid: int, tap: Tap) -> None:
        self._taps[tid] = tap

    def drop_tap(self, tid: int) -> None:
        self._taps.pop(tid, None)

    # -- the factory ------------------------------------------------------------------------------------
    async def open_session(
        self, host: str = "0.0.0.0", port: int | None = None, playout_frames: int = 50
    ) -> RemoteMediaSession:
        if not self.running:
            await self.start()
        sid = self.new_id()
        s = RemoteMediaSession(self, sid, host, playout_frames)
        self._sessions[sid] = s
        try:
            s.local_port = await self.request("open", sid, host, port, playout_frames)
        except BaseException:
            self._sessions.pop(sid, None)
            raise
        return s

    def forget(self, sid: int) -> None:
        self._sessions.pop(sid, None)


class RemoteMediaSession:
    """A call's media in the worker (see the module docstring)."""

    def __init__(self, worker: MediaWorker, sid: int, host: str, playout_frames: int) -> None:
        self.worker = worker
        self.sid = sid
        self.host = host
        self.playout_frames = playout_frames
        self.local_port = 0
        self.stats = RtpStats()
        self.dtmf_queue: asyncio.Queue[DtmfDigit] = asyncio.Queue(maxsize=64)
        self._dtmf_callbacks: list[Callable[[DtmfDigit], None]] = []
        self._lost_callbacks: list[Callable[[], None]] = []
        self._taps: dict[int, Tap] = {}
        self._recording = False
        self._bridged: RemoteMediaSession | None = None
        self._closed = False
        self._started = False
        # streamed playout: ops sent, the worker's last report (see the module docstring)
        self._gen = 0
        self._epoch = 0
        self._op_no = 0
        self._inflight: deque[tuple[int, int]] = deque()  # (op number, frames) not yet reported done
        self._reported_queue = 0
        self._partial = 0  # bytes of a trailing partial frame the worker holds

    # -- state --------------------------------------------------------------------------------------
    @property
    def family_version(self) -> int:
        return 6 if ":" in self.host else 4

    @property
    def running(self) -> bool:
        return self._started and not self._closed

    @property
    def dtmf_callbacks(self) -> tuple[Callable[[DtmfDigit], None], ...]:
        return tuple(self._dtmf_callbacks)

    @property
    def recording(self) -> bool:
        return self._recording

    @property
    def queued_frames(self) -> int:
        return self._reported_queue + sum(frames for _, frames in self._inflight)

    # -- worker events ------------------------------------------------------------------------------
    def _report(self, epoch: int, queued: int, last_op: int) -> None:
        if epoch != self._epoch:
            return  # from before our latest flush
        self._reported_queue = queued
        inflight = self._inflight
        while inflight and inflight[0][0] <= last_op:
            inflight.popleft()

    def _digit(self, digit: DtmfDigit) -> None:
        deliver_digit(digit, self.dtmf_queue, self._dtmf_callbacks)

    def _ended(self, lost: bool = False) -> None:
        """Closed, or the worker died (``lost``: the call has no media any more): taps close,
        producers stop, and ``on_lost`` callbacks run."""
        if lost and not self._closed:
            for cb in self._lost_callbacks:
                try:
                    cb()
                except Exception:
                    log.exception("media: lost callback failed")
        self._closed = True
        self._queue_dropped()
        for tid, tap in list(self._taps.items()):
            self.worker.drop_tap(tid)
            tap.close()
        self._taps.clear()

    async def _ask(self, op: str, *args: Any) -> Any:
        if self._closed:
            raise MediaError("media session closed")
        return await self.worker.request(op, self.sid, *args)

    def _tell(self, *msg: Any) -> None:
        if not self._closed:
            self.worker.send(msg)

    # -- setup --------------------------------------------------------------------------------------
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
    ) -> None:
        check_remote(remote_addr, remote_port, ptime, self.family_version, self.host)  # raise here, not there
        args = (remote_addr, remote_port, payload_type, dtmf_payload_type, ptime)
        self._tell("negotiate", self.sid, args, {"latch": latch, "rtcp_port": rtcp_port})

    def start(self) -> None:
        if not self._started and not self._closed:
            self._started = True
            self._tell("start", self.sid)

    async def rebind(self, host: str) -> None:
        if self._started:
            raise RuntimeError("rebind before start()")
        self.local_port = await self._ask("rebind", host)
        self.host = host

    # -- playout ------------------------------------------------------------------------------------
    async def play_wav(self, path: str | Path, *, wait: bool = True) -> bool:
        return await self._play("wav", str(path), MEDIA_RATE, wait)

    async def play_pcm(self, source: PcmSource, rate: int = MEDIA_RATE, *, wait: bool = True) -> bool:
        if isinstance(source, str | Path):
            return await self._play("wav", str(source), MEDIA_RATE, wait)
        if isinstance(source, bytes | bytearray | np.ndarray):
            pcm = source.astype("<i2").tobytes() if isinstance(source, np.ndarray) else bytes(source)
            return await self._play("pcm", pcm, rate, wait)
        return await self._play_stream(source, rate, wait)

    async def _play(self, kind: str, payload: Any, rate: int, wait: bool) -> bool:
        gen = self._gen
        try:
            ok = await self._ask("play", kind, payload, rate, wait)
        except MediaError:
            return False
        return bool(ok) and gen == self._gen and not self._closed

    async def _play_stream(self, chunks: Any, rate: int, wait: bool) -> bool:
        """Streamed sources (TTS) are pulled here and sent on as they come, resampled to 8 kHz."""
        gen = self._gen
        if not await enqueue_chunks(chunks, rate, self.enqueue):
            return False
        if wait:
            await self.wait_played()
        return gen == self._gen and not self._closed

    async def enqueue(self, pcm: bytes | np.ndarray, *, final: bool = False) -> bool:
        gen = self._gen
        if self._closed:
            return False
        data = np.ascontiguousarray(pcm, dtype="<i2").tobytes() if isinstance(pcm, np.ndarray) else bytes(pcm)
        total = self._partial + len(data)
        frames = total // FRAME_BYTES
        self._partial = total % FRAME_BYTES
        if final and self._partial:
            frames += 1
            self._partial = 0
        if not data and not final:
            return True
        self._op_no += 1
        op_no = self._op_no
        room = self.queued_frames + frames <= self.playout_frames
        self._inflight.append((op_no, frames))
        if room:
            try:
                self._tell("enq", self.sid, None, op_no, data, final)
            except MediaError:  # the worker just died: as a closed session
                return False
            return gen == self._gen and not self._closed
        try:
            ok = await self._ask("enq", op_no, data, final)
        except MediaError:
            return False
        return bool(ok) and gen == self._gen and not self._closed

    def flush(self) -> int:
        dropped = self.queued_frames + (1 if self._partial else 0)
        self._queue_dropped()
        with contextlib.suppress(MediaError):
            self._tell("flush", self.sid)
        return dropped

    async def wait_played(self) -> None:
        if self._closed:
            return
        epoch, op_no = self._epoch, self._op_no
        with contextlib.suppress(MediaError):
            await self._ask("wait")
        if epoch == self._epoch:  # all sent before the wait has left the queue (its report may lag)
            self._reported_queue = 0
            while self._inflight and self._inflight[0][0] <= op_no:
                self._inflight.popleft()

    # -- recording ----------------------------------------------------------------------------------
    async def record_start(
        self, path: str | Path, direction: RecordDirection = "both", stereo: bool = False, maxsize: int = 250
    ) -> None:
        if self._recording:
            raise RuntimeError("already recording")
        if self._closed:  # as in-process: a closed session records nothing
            return
        await self._ask("rec_start", str(path), direction, stereo, maxsize)
        self._recording = True

    async def record_stop(self) -> RecordingInfo | None:
        if not self._recording:
            return None
        self._recording = False
        info: RecordingInfo | None = await self._ask("rec_stop")
        return info

    # -- taps ---------------------------------------------------------------------------------------
    def tap(self, direction: str = "in", maxsize: int = 50) -> Tap:
        dirs = frozenset(("in", "out")) if direction == "both" else frozenset((direction,))
        if not dirs <= {"in", "out"}:
            raise ValueError("direction must be in, out or both")
        tap = Tap(dirs, maxsize)
        if self._closed:
            tap.close()
            return tap
        tid = self.worker.new_id()
        self._taps[tid] = tap
        self.worker.add_tap(tid, tap)
        self._tell("tap", self.sid, tid, direction)
        return tap

    def untap(self, tap: Tap) -> None:
        tid = next((t for t, mine in self._taps.items() if mine is tap), None)  # a call has a few taps
        if tid is not None:
            del self._taps[tid]
            self.worker.drop_tap(tid)
            with contextlib.suppress(MediaError):
                self._tell("untap", self.sid, tid)
        tap.close()

    def on_lost(self, callback: Callable[[], None]) -> None:
        """``callback()`` once if the worker dies while this session is open (the call should end)."""
        self._lost_callbacks.append(callback)

    # -- DTMF ---------------------------------------------------------------------------------------
    def on_dtmf(self, callback: Callable[[DtmfDigit], None]) -> None:
        self._dtmf_callbacks.append(callback)

    async def next_dtmf(self) -> DtmfDigit:
        return await self.dtmf_queue.get()

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        if self._closed:
            raise MediaError("media session closed")
        await self._ask("dtmf", digits, duration_ms)

    # -- bridging -----------------------------------------------------------------------------------
    def bridge(self, other: CallMedia, max_queue: int = 3) -> None:
        if not isinstance(other, RemoteMediaSession) or other.worker is not self.worker:
            raise TypeError("can only bridge sessions of the same media worker")
        if self._bridged is not None:
            raise RuntimeError("already bridged")
        self._tell("bridge", self.sid, None, other.sid, max_queue)
        self._bridged, other._bridged = other, self
        self._queue_dropped()  # bridging flushes both queues in the worker
        other._queue_dropped()

    def _queue_dropped(self) -> None:
        """The worker's playout queue was (or will be) emptied — a flush, a bridge, the end: producers
        of before stop, its reports from before count no more, nothing is queued or half a frame."""
        self._gen += 1
        self._epoch += 1
        self._inflight.clear()
        self._reported_queue = 0
        self._partial = 0

    def unbridge(self) -> None:
        other, self._bridged = self._bridged, None
        if other is not None:
            other._bridged = None
            with contextlib.suppress(MediaError):
                self._tell("unbridge", self.sid, other.sid)
            self._queue_dropped()
            other._queue_dropped()

    # -- end ----------------------------------------------------------------------------------------
    async def close(self) -> RecordingInfo | None:
        if self._closed:
            return None
        self.unbridge()
        info: RecordingInfo | None = None
        try:
            info, stats = await self._ask("close")
            if stats is not None:
                self.stats = stats
        except MediaError:
            pass
        finally:
            self._recording = False
            self._ended()
            self.worker.forget(self.sid)
        return info


class MediaPool:
    """Up to ``workers`` media worker processes, each with its own GIL and its own slice of the RTP
    port range. A new session goes to the least loaded running worker; the next worker starts only
    when every running one holds ``spread_at`` sessions or more (small nodes and tests run one). A
    session that will be bridged to another (``near``: the call it joins) goes to that call's worker,
    since a bridge is frame-by-frame inside one worker."""

    def __init__(
        self,
        workers: int = 1,
        *,
        port_min: int = 20000,
        port_max: int = 20999,
        spread_at: int = 50,
        **config: Any,
    ) -> None:
        if workers < 1:
            raise ValueError("need at least one media worker")
        span = (port_max - port_min + 1) // workers
        if span < 4:
            raise ValueError("the RTP port range is too small for that many media workers")
        self.spread_at = spread_at
        self.workers = [
            MediaWorker(port_min=port_min + i * span, port_max=port_min + (i + 1) * span - 1, **config)
            for i in range(workers)
        ]

    @property
    def running(self) -> bool:
        return any(w.running for w in self.workers)

    async def start(self) -> None:
        """The first worker; the others start when load needs them."""
        await self.workers[0].start()

    async def close(self) -> None:
        await asyncio.gather(*(w.close() for w in self.workers))

    def _pick(self, near: CallMedia | None) -> MediaWorker:
        if isinstance(near, RemoteMediaSession) and near.worker in self.workers and near.worker.running:
            return near.worker
        running = [w for w in self.workers if w.running]
        idle = [w for w in self.workers if not w.running]
        best = min(running, key=lambda w: len(w._sessions), default=None)
        if best is None or (idle and len(best._sessions) >= self.spread_at):
            return idle[0]
        return best

    async def open_session(
        self, host: str = "0.0.0.0", port: int | None = None, near: CallMedia | None = None
    ) -> RemoteMediaSession:
        return await self._pick(near).open_session(host, port)

    def metrics(self) -> dict[str, Any]:
        """The running workers' media clocks and loop lag, summed (counts) or the worst (lag, ms)."""
        reports = [w.metrics for w in self.workers if w.running and w.metrics]
        if not reports:
            return {}
        out: dict[str, Any] = {}
        for section in ("media_loop_lag", "media_clock", "gc"):
            merged: dict[str, Any] = {}
            for r in reports:
                for key, value in r.get(section, {}).items():
                    if key.endswith("ms") and not key.startswith("total"):
                        merged[key] = max(merged.get(key, 0), value)
                    else:
                        merged[key] = merged.get(key, 0) + value
            out[section] = merged
        out["workers"] = len(reports)
        return out
