"""The media worker: a process of its own for every call's RTP sessions (``-m voipbin.media.worker``).

Why a process: one interpreter has one GIL, and with the media thread sharing it with the control
loop (SIP, flows, database, webhooks, AI) the node ran out of it at ~200 recorded calls — the media
thread waited for the GIL, not for CPU (docs/architecture.md, "The media plane"). Here the media
engine's thread shares its GIL only with this process's small main loop, which does nothing but
carry the control process's requests to the sessions and their results back
(:mod:`voipbin.media.wire`), the way rtpengine and FreeSWITCH split signalling from media.

What stays here, with no per-frame traffic to the control process: the sockets and the clock,
playing WAV files and PCM handed over whole, recordings (the recorder's writer thread), bridges
between two of our sessions, DTMF in both directions. What crosses per frame: inbound audio for
listeners (the AI, transcription: ``tap``) and streamed playout (TTS: ``enq``), batched per loop
pass. For streamed playout the worker reports each such session's queue depth when it changes,
so the control side can answer ``queued_frames`` and ``flush()`` without a round trip.

The worker exits when the channel closes (the control process stopped or died: the kernel closes
its end), and asks the kernel to kill it should the parent die first (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import socket
from collections import deque
from pathlib import Path
from typing import Any

from voipbin import logcontext
from voipbin.media import engine as media_engine
from voipbin.media.mediasession import MediaSession
from voipbin.media.ports import PortAllocator
from voipbin.media.taps import Frame, Tap
from voipbin.media.wire import Channel, Message

log = logging.getLogger("voipbin.media.worker")
REPORT_INTERVAL = 0.02  # queue depths of streaming sessions, once per media frame
METRICS_INTERVAL = 1.0


class ForwardTap(Tap):
    """A tap whose frames go straight to the control process (no queue here: the control side's
    own :class:`Tap` bounds and drops)."""

    def __init__(self, tid: int, directions: frozenset[str], chan: Channel) -> None:
        super().__init__(directions, maxsize=1)
        self.tid = tid
        self._chan = chan

    def put(self, frame: Frame) -> None:
        if not self._closed and not self._chan.closed:
            self._chan.send(("f", self.tid, frame.direction, frame.tick, frame.pcm))


class Hosted:
    """One session and its ordered stream of playout requests (``enq`` and ``wait``)."""

    def __init__(self, sid: int, ms: MediaSession) -> None:
        self.sid = sid
        self.ms = ms
        self.ops: deque[Message] = deque()
        self.wake = asyncio.Event()
        self.runner: asyncio.Task[None] | None = None
        self.epoch = 0  # flushes so far (reports from before a flush are stale for the control side)
        self.last_op = 0  # the last enq op finished or dropped
        self.reporting = False
        self.reported: tuple[int, int, int] = (-1, -1, -1)
        self.taps: dict[int, ForwardTap] = {}
        self.plays: set[asyncio.Task[None]] = set()
        self.closed = False


class WorkerHost:
    def __init__(self, chan: Channel, allocator: PortAllocator) -> None:
        self.chan = chan
        self.allocator = allocator
        self.sessions: dict[int, Hosted] = {}
        self.done = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.opened = 0  # sessions opened since the last heap freeze
        self._base_frozen = 0  # the start-up heap, frozen by tune_process (serve sets it after that)

    # -- plumbing ------------------------------------------------------------------------------------
    def reply(self, req: int | None, value: Any = None, error: BaseException | None = None) -> None:
        if req is not None and not self.chan.closed:
            self.chan.send(("r", req, error is None, value if error is None else error))

    def spawn(self, req: int | None, coro: Any) -> asyncio.Task[Any]:
        """Run a request that awaits; its result (or error) is the reply."""

        async def run() -> None:
            try:
                value = await coro
            except asyncio.CancelledError:
                if req is not None:
                    self.reply(req, error=ConnectionAbortedError("media session closed"))
                raise
            except Exception as exc:
                if req is not None:
                    self.reply(req, error=exc)
                else:
                    log.warning("media worker: request failed: %r", exc)
            else:
                if req is not None:
                    self.reply(req, value)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def handle(self, msg: Message) -> None:
        op = msg[0]
        try:
            getattr(self, f"op_{op}")(*msg[1:])
        except Exception as exc:  # a bad request never takes the worker down
            at = _REQ_AT.get(op)
            req = msg[at] if at is not None and len(msg) > at else None
            if not isinstance(req, int):
                log.warning("media worker: %s failed: %r", op, exc)
            elif isinstance(exc, KeyError) and op in ("enq", "wait"):  # the session is gone: as closed
                self.reply(req, False if op == "enq" else None)
            else:
                self.reply(req, error=exc)

    # -- sessions ------------------------------------------------------------------------------------
    def op_open(self, sid: int, req: int, host: str, port: int | None, playout_frames: int) -> None:
        async def open_() -> int:
            allocator = self.allocator if port is None else None
            ms = await MediaSession.create(
                allocator=allocator, host=host, port=port, playout_frames=playout_frames
            )
            self._host(sid, ms)
            return ms.local_port

        self.spawn(req, open_())

    def _host(self, sid: int, ms: MediaSession) -> None:
        self.opened += 1
        h = Hosted(sid, ms)
        self.sessions[sid] = h
        ms.on_dtmf(lambda d: None if self.chan.closed else self.chan.send(("d", sid, d)))
        h.runner = asyncio.get_running_loop().create_task(self._run_ops(h))

    def op_rebind(self, sid: int, req: int, host: str) -> None:
        h = self.sessions[sid]

        async def rebind() -> int:
            await h.ms.rebind(host)
            return h.ms.local_port

        self.spawn(req, rebind())

    def op_negotiate(self, sid: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.sessions[sid].ms.negotiate(*args, **kwargs)

    def op_start(self, sid: int) -> None:
        self.sessions[sid].ms.start()

    def op_close(self, sid: int, req: int) -> None:
        h = self.sessions.pop(sid, None)

        async def close() -> tuple[Any, Any]:
            if h is None:
                return None, None
            for task in list(h.plays):
                task.cancel()
            h.closed = True
            self._drop_ops(h)
            info = await h.ms.close()
            runner, h.runner = h.runner, None
            if runner is not None:
                # Ends by itself (a cancelled task would keep a traceback cycle through this session
                # for the collector: see _freeze_heap).
                h.wake.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(runner), 1.0)
                runner.cancel()
            return info, h.ms.stats

        self.spawn(req, close())

    # -- playout -------------------------------------------------------------------------------------
    def op_play(self, sid: int, req: int, kind: str, payload: Any, rate: int, wait: bool) -> None:
        h = self.sessions[sid]
        if kind == "wav":
            coro = h.ms.play_wav(Path(payload), wait=wait)
        else:
            coro = h.ms.play_pcm(payload, rate=rate, wait=wait)
        task = self.spawn(req, coro)
        h.plays.add(task)
        task.add_done_callback(h.plays.discard)

    def op_enq(self, sid: int, req: int | None, op_no: int, pcm: bytes, final: bool) -> None:
        h = self.sessions[sid]
        h.reporting = True
        h.ops.append(("enq", op_no, req, pcm, final))
        h.wake.set()

    def op_wait(self, sid: int, req: int) -> None:
        h = self.sessions[sid]
        h.ops.append(("wait", 0, req, b"", False))
        h.wake.set()

    def op_flush(self, sid: int) -> None:
        h = self.sessions.get(sid)
        if h is None:
            return
        h.epoch += 1
        self._drop_ops(h)
        h.ms.flush()

    def _drop_ops(self, h: Hosted) -> None:
        while h.ops:
            kind, op_no, req, _, _ = h.ops.popleft()
            if kind == "enq":
                h.last_op = max(h.last_op, op_no)
            if req is not None:
                self.reply(req, False if kind == "enq" else None)

    async def _run_ops(self, h: Hosted) -> None:
        """The session's playout requests in order: a waiting ``enq`` holds the ones behind it."""
        while not h.closed:
            if not h.ops:
                h.wake.clear()
                await h.wake.wait()
                continue
            kind, op_no, req, pcm, final = h.ops.popleft()
            if kind == "enq":
                ok = await h.ms.enqueue(pcm, final=final)
                h.last_op = max(h.last_op, op_no)
                if req is not None:
                    self.reply(req, ok)
            else:
                await h.ms.wait_played()
                self.reply(req)

    def op_rec_start(self, sid: int, req: int, path: str, direction: str, stereo: bool, maxsize: int) -> None:
        ms = self.sessions[sid].ms
        self.spawn(req, ms.record_start(path, direction=direction, stereo=stereo, maxsize=maxsize))  # type: ignore[arg-type]

    def op_rec_stop(self, sid: int, req: int) -> None:
        self.spawn(req, self.sessions[sid].ms.record_stop())

    # -- taps, DTMF, bridges -------------------------------------------------------------------------
    def op_tap(self, sid: int, tid: int, direction: str) -> None:
        h = self.sessions[sid]
        dirs = frozenset(("in", "out")) if direction == "both" else frozenset((direction,))
        tap = ForwardTap(tid, dirs, self.chan)
        h.taps[tid] = tap
        h.ms.rtp.add_tap(direction, tap=tap)

    def op_untap(self, sid: int, tid: int) -> None:
        h = self.sessions.get(sid)
        tap = h.taps.pop(tid, None) if h is not None else None
        if h is not None and tap is not None:
            h.ms.untap(tap)

    def op_dtmf(self, sid: int, req: int, digits: str, duration_ms: int) -> None:
        self.spawn(req, self.sessions[sid].ms.send_dtmf(digits, duration_ms))

    def op_bridge(self, sid: int, req: int | None, other: int, max_queue: int) -> None:
        a, b = self.sessions[sid], self.sessions[other]
        a.ms.bridge(b.ms, max_queue)
        self._flushed(a, b)
        self.reply(req)

    def op_unbridge(self, sid: int, other: int) -> None:
        h = self.sessions.get(sid)
        if h is not None:
            h.ms.unbridge()
            self._flushed(h, self.sessions.get(other))

    def _flushed(self, *hosted: Hosted | None) -> None:
        """(Un)bridging flushed these playout queues; the control side counts it as a flush too."""
        for h in hosted:
            if h is not None:
                h.epoch += 1
                self._drop_ops(h)

    def op_exit(self) -> None:
        self.done.set()

    # -- periodic reports ----------------------------------------------------------------------------
    async def report(self) -> None:
        """Queue depths of sessions fed by ``enq`` (when changed), and the engine's metrics."""
        loop = asyncio.get_running_loop()
        next_metrics = loop.time()
        while not self.done.is_set():
            await asyncio.sleep(REPORT_INTERVAL)
            if self.chan.closed:
                return
            for h in self.sessions.values():
                if h.reporting:
                    state = (h.epoch, h.ms.queued_frames, h.last_op)
                    if state != h.reported:
                        h.reported = state
                        self.chan.send(("q", h.sid, *state))
            if loop.time() >= next_metrics:
                next_metrics = loop.time() + METRICS_INTERVAL
                self._freeze_heap()
                m = media_engine.media_metrics()
                self.chan.send(("m", {k: m[k] for k in ("media_loop_lag", "media_clock", "gc")}))

    def _freeze_heap(self) -> None:
        """Keep the collector's young generations small. A burst of new calls leaves tens of
        thousands of long-lived objects (each session's state) in them, and one generation-1 pass
        over those took 20-37 ms with the GIL held: a late tick on every call of this worker
        (bench/calls_platform.py, N=200/300). Once a second, what new sessions left behind moves to
        the permanent generation (``gc.freeze``), so collections walk only the short-lived rest.
        Frozen objects are still freed by reference counting when a call ends; cyclic garbage among
        them waits until the worker is idle, when everything is unfrozen and collected once."""
        if not self.sessions and self.engine_idle() and gc.get_freeze_count() > self._base_frozen:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._base_frozen = gc.get_freeze_count()
        elif self.opened:
            gc.freeze()
        self.opened = 0

    def mark_startup_heap(self) -> None:
        self._base_frozen = gc.get_freeze_count()

    @staticmethod
    def engine_idle() -> bool:
        """No session on the clock (one being opened or closed is in the engine, not yet or no
        longer in ``sessions``): a full pass holds the GIL, which the clock's thread needs."""
        return media_engine.MediaEngine.default().sessions == 0

    async def shutdown(self) -> None:
        for sid in list(self.sessions):
            h = self.sessions.pop(sid)
            with contextlib.suppress(Exception):
                await h.ms.close()


# Where a request's id sits in its message (ops not listed answer nothing).
_REQ_AT = dict.fromkeys(
    ("open", "rebind", "close", "play", "rec_start", "rec_stop", "dtmf", "wait", "enq"), 2
)


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent exits, even by kill -9."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def serve(fd: int, config: dict[str, Any]) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    chan = Channel(reader, writer)
    host = WorkerHost(chan, PortAllocator(config["port_min"], config["port_max"]))
    media_engine.process_role = f"media worker {os.getpid()}"
    media_engine.MediaEngine.default()
    media_engine.tune_process(freeze=True, realtime=bool(config.get("realtime", False)))
    # Read before that freeze, the first idle second unfroze and walked the whole start-up heap:
    # a 37 ms pass with the GIL held (bench/ai_density.py --stacks, the second worker).
    host.mark_startup_heap()
    chan.send(("ready", os.getpid(), media_engine.MediaEngine.default().scheduling))
    reporter = asyncio.get_running_loop().create_task(host.report())
    served = asyncio.get_running_loop().create_task(chan.serve(host.handle))
    await asyncio.wait([served, asyncio.ensure_future(host.done.wait())], return_when=asyncio.FIRST_COMPLETED)
    reporter.cancel()
    await host.shutdown()
    with contextlib.suppress(Exception):
        await chan.drain()
    chan.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="voipbin media worker (started by the node)")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--config", default="{}")
    args = parser.parse_args()
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the node stops us
    config = json.loads(args.config)
    logcontext.configure(config.get("log_level", "INFO"), config.get("log_format", "text"))  # as the node
    try:
        import uvloop

        uvloop.run(serve(args.fd, config))
    except ImportError:
        asyncio.run(serve(args.fd, config))


if __name__ == "__main__":
    main()
