"""``MediaEngine``: the media plane's own thread, event loop and single 20 ms clock.

Why a thread of its own: on the control loop the media clock was stalled by everything else that
loop does (call setups, database writes, webhooks, TLS client construction, GC): at 100 calls the
process used 16 % of a core and still missed 75 % of calls' ticks. Here the RTP sockets and the
clock live on a dedicated loop (uvloop when installed) in a daemon thread, so a control loop busy
for 200 ms does not delay one packet. The two loops share the GIL: pure-Python work on the control
side yields it every ``sys.setswitchinterval`` (set to 2 ms by :func:`tune_process`), blocking
C calls release it, so the media thread waits at most a few ms for it. Only a full garbage
collection holds the GIL for long, which is why :func:`tune_process` also freezes the start-up heap
and raises the young-generation threshold.

Why one clock: one ``call_at`` chain at ``t0 + n * 20 ms`` drives every session (``RtpSession``
registers itself), so the media loop wakes 50 times a second for any number of calls instead of
50 times per call, and lateness/skips are computed once per tick. A stall of three frames or more
skips the missed slots (timestamps still advance) instead of sending a burst.

Receiving in bulk: RTP/RTCP sockets are not read by loop callbacks, one wake-up per datagram (SIPp,
phones and trunks spread their packets over the 20 ms, so at 200 calls that was ~6 600 wake-ups a
second, each a loop pass and a GIL hand-off with the control thread). Each tick first drains every
registered socket (:meth:`watch`): one ``epoll`` with timeout 0 lists the readable ones, one
``recvmsg`` each, repeated while any is still readable; the kernel's receive timestamp
(``SO_TIMESTAMPNS``) is each packet's arrival time, so jitter, gaps and the jitter buffer's delay
measure see when it really arrived. Sessions whose listeners want audio at arrival (the AI, STT:
see ``RtpSession``) read their RTP socket from a loop reader instead.

Cross-thread hand-off: the control plane only appends to deques (atomic under the GIL) and calls
:meth:`MediaEngine.call` for work that must run on the media loop (bind, close). Everything the
media side must tell a control loop (a consumer's future is ready, a digit arrived, a producer may
refill) is :meth:`post`-ed into that loop's mailbox, with at most ONE ``call_soon_threadsafe``
pending per control loop: sent when the tick ends for what the tick produced, at once for what a
packet read at arrival produced (an AI listener's frame), never one per event.

Why hand-written: asyncio/uvloop give loops and timers, not a shared media clock across sessions;
the RTP stacks we know (aiortc) run one timer task per track on the application's loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import gc
import logging
import math
import os
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from voipbin.media.g711 import EncodeBatch

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.020
MAX_LATE_FRAMES = 3
MAX_READ_ROUNDS = 1000  # drain rounds per tick (one datagram per readable socket each): floods too
T = TypeVar("T")


class Clocked(Protocol):
    def clock_tick(self, n: int, late: bool, skipped: int, batch: EncodeBatch | None = None) -> None: ...


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # optional extra "fast"

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is in the default install
        return asyncio.new_event_loop()


class LoopLag:
    """Event-loop lag of one loop: how late a 100 ms probe timer fires (max and last)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.last_ms = 0.0
        self.max_ms = 0.0
        self.samples = 0
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._handle is not None:
            return
        self._due = time.monotonic() + self.interval
        self._handle = loop.call_later(self.interval, self._probe, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _probe(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        lag = max(0.0, (now - self._due) * 1000)
        self.last_ms = lag
        self.max_ms = max(self.max_ms, lag)
        self.samples += 1
        self._due = now + self.interval
        self._handle = loop.call_later(self.interval, self._probe, loop)

    def snapshot(self, reset_max: bool = False) -> dict[str, float]:
        out = {"last_ms": round(self.last_ms, 2), "max_ms": round(self.max_ms, 2)}
        if reset_max:
            self.max_ms = 0.0
        return out


class MediaEngine:
    """See the module docstring. ``MediaEngine.default()`` is the process-wide engine."""

    _default: MediaEngine | None = None
    _default_lock = threading.Lock()

    def __init__(self, name: str = "voipbin-media") -> None:
        self.name = name
        self.loop = _new_loop()
        self._sessions: dict[int, Clocked] = {}
        self._snapshot: tuple[Clocked, ...] = ()
        self._timer: asyncio.TimerHandle | None = None
        self._t0 = 0.0
        self._n = 0
        self._mailboxes: dict[asyncio.AbstractEventLoop, _Mailbox] = {}
        self._posts: list[_Mailbox] = []  # mailboxes to send when the tick ends
        self._in_tick = False
        self._batch = EncodeBatch()
        self._epoll = select.epoll() if hasattr(select, "epoll") else None  # Linux; else loop readers
        self._readers: dict[int, Callable[[float], object]] = {}
        self.socket_reads = 0  # datagrams read by the tick's drain
        self._last_late_log = 0.0
        self.ticks = 0
        self.late_ticks = 0
        self.skipped_ticks = 0
        self.max_tick_ms = 0.0  # longest time one tick's work took
        self.lag = LoopLag()
        self.niceness: int | None = None  # set by the thread: MEDIA_NICE if the OS allowed it
        self.scheduling = "normal"  # "nice:-15" or "rr:2" (tune_process) once the OS allowed it
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._thread.start()
        self._started.wait()

    @classmethod
    def default(cls) -> MediaEngine:
        with cls._default_lock:
            if cls._default is None or not cls._default._thread.is_alive():
                cls._default = cls()
                # Stop the loop before the interpreter tears down: a daemon thread still inside
                # uvloop during finalisation crashes the process (SIGSEGV at exit).
                atexit.register(cls._default.close)
            return cls._default

    def _run(self) -> None:
        # The OS thread name too (top -H, /proc/<pid>/task/*/comm: what bench/calls_platform.py reads).
        comm = f"/proc/self/task/{threading.get_native_id()}/comm"
        with contextlib.suppress(OSError), open(comm, "w") as fh:
            fh.write(self.name[:15])
        self.niceness = _raise_priority()
        if self.niceness is not None:
            self.scheduling = f"nice:{self.niceness}"
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.call_soon(self.lag.start, self.loop)
        self.loop.run_forever()

    def close(self) -> None:
        """Stop the thread (tests; the default engine lives as long as the process)."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive() and not self.loop.is_closed():
            self.loop.close()
            if self._epoll is not None:
                self._epoll.close()

    @property
    def in_media_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    # ------------------------------------------------------------------ control -> media
    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the media loop (thread-safe, fire and forget)."""
        if self.in_media_thread:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the media loop and await its result from any loop."""
        if self.in_media_thread:
            return await coro
        fut: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(fut)

    # ------------------------------------------------------------------ media -> control
    def post(self, loop: asyncio.AbstractEventLoop | None, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on ``loop``, coalesced: at most one ``call_soon_threadsafe`` pending per
        loop. During a tick the wake-up is sent when the tick ends (one per loop per tick); outside
        one (a packet read at arrival) at once, unless that loop has not yet run the previous one."""
        if loop is None or loop.is_closed():
            return
        mailbox = self._mailboxes.get(loop)
        if mailbox is None:
            mailbox = self._new_mailbox(loop)
        mailbox.items.append((fn, args))
        if not mailbox.scheduled:
            mailbox.scheduled = True
            if self._in_tick:
                self._posts.append(mailbox)
            else:
                mailbox.send()

    def _new_mailbox(self, loop: asyncio.AbstractEventLoop) -> _Mailbox:
        if len(self._mailboxes) >= 8:  # loops come and go in tests: forget the closed ones
            for old in [lp for lp in self._mailboxes if lp.is_closed()]:
                del self._mailboxes[old]
        mailbox = self._mailboxes[loop] = _Mailbox(loop)
        return mailbox

    def _flush_posts(self) -> None:
        mailboxes, self._posts = self._posts, []
        for mailbox in mailboxes:
            mailbox.send()

    # ------------------------------------------------------------------ the clock
    def add(self, session: Clocked) -> int:
        """Register a session (from any thread); returns the first tick index it will see."""
        if not self.in_media_thread:
            raise RuntimeError("MediaEngine.add runs on the media loop")
        if self._timer is None:
            now = time.monotonic()
            self._t0 = math.ceil(now / FRAME_SECONDS) * FRAME_SECONDS
            self._n = 0
            self._timer = self.loop.call_at(self._loop_time(self._t0), self._tick)
        self._sessions[id(session)] = session
        self._snapshot = tuple(self._sessions.values())
        return self._n

    # ------------------------------------------------------------------ sockets read in bulk
    @property
    def polls(self) -> bool:
        """Sockets can be drained by the tick (``watch``); False off Linux (use loop readers)."""
        return self._epoll is not None

    def watch(self, fd: int, reader: Callable[[float], object]) -> None:
        """Drain ``fd`` at every tick: ``reader(realtime_offset)`` reads ONE datagram (it is called
        again while the socket stays readable); ``realtime_offset`` turns the kernel's CLOCK_REALTIME
        receive timestamps into ``time.monotonic()`` values. Media thread only."""
        if not self.in_media_thread:
            raise RuntimeError("MediaEngine.watch runs on the media loop")
        assert self._epoll is not None
        self._readers[fd] = reader
        self._epoll.register(fd, select.EPOLLIN)

    def unwatch(self, fd: int) -> None:
        """Stop draining ``fd`` (before it is closed: a new socket may reuse the number)."""
        if self._readers.pop(fd, None) is not None and self._epoll is not None:
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    def _drain_sockets(self) -> None:
        readers = self._readers
        if not readers or self._epoll is None:
            return
        poll = self._epoll.poll
        offset = time.time() - time.monotonic()
        reads = 0
        for _ in range(MAX_READ_ROUNDS):
            events = poll(0)
            if not events:
                break
            reads += len(events)
            for fd, _ in events:
                reader = readers.get(fd)
                if reader is not None:
                    try:
                        reader(offset)
                    except Exception:
                        log.exception("media: socket read failed")
        self.socket_reads += reads

    def remove(self, session: Clocked) -> None:
        if not self.in_media_thread:
            raise RuntimeError("MediaEngine.remove runs on the media loop")
        if self._sessions.pop(id(session), None) is not None:
            self._snapshot = tuple(self._sessions.values())
        if not self._sessions and self._timer is not None:  # idle: no wake-ups without calls
            self._timer.cancel()
            self._timer = None

    def tick_time(self, n: int) -> float:
        """Monotonic time at which tick ``n`` is due."""
        return self._t0 + n * FRAME_SECONDS

    def _loop_time(self, monotonic_t: float) -> float:
        return self.loop.time() + (monotonic_t - time.monotonic())

    def _tick(self) -> None:
        start = time.monotonic()
        n = self._n
        late_s = start - (self._t0 + n * FRAME_SECONDS)
        late = late_s >= FRAME_SECONDS
        skipped = 0
        if late:
            self.late_ticks += 1
            if late_s >= 2 * FRAME_SECONDS and start - self._last_late_log >= 1.0:
                self._last_late_log = start
                log.warning(
                    "media: clock tick %.0f ms late (%d sessions)", late_s * 1000, len(self._sessions)
                )
            if late_s >= MAX_LATE_FRAMES * FRAME_SECONDS:
                skipped = int(late_s / FRAME_SECONDS)
                self.skipped_ticks += skipped
                n += skipped
        self._in_tick = True
        batch = self._batch
        try:
            self._drain_sockets()  # every packet that arrived since the last tick, then the slot
            for s in self._snapshot:
                try:
                    s.clock_tick(n, late, skipped, batch)
                except Exception:
                    log.exception("media: session tick failed")
            try:
                batch.run()  # encode every session's frame at once, then send each
            except Exception:
                log.exception("media: batch encode failed")
        finally:
            self._in_tick = False
        self._flush_posts()
        self.ticks += 1
        self._n = n + 1
        took = (time.monotonic() - start) * 1000
        if took > self.max_tick_ms:
            self.max_tick_ms = took
        if self._timer is not None:
            self._timer = self.loop.call_at(self._loop_time(self._t0 + self._n * FRAME_SECONDS), self._tick)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def stats(self) -> dict[str, float | int]:
        return {
            "sessions": len(self._sessions),
            "ticks": self.ticks,
            "late_ticks": self.late_ticks,
            "skipped_ticks": self.skipped_ticks,
            "max_tick_ms": round(self.max_tick_ms, 3),
        }


MEDIA_NICE = -15
CONTROL_NICE = -10
# Real-time (SCHED_RR) priorities when the node owns the process: the media thread above the control
# thread, both above every ordinary (SCHED_OTHER) task on the host.
MEDIA_RT_PRIORITY = 2
CONTROL_RT_PRIORITY = 1
# What tune_process gave the control thread: (policy, priority) for threads that hold the GIL on its
# behalf (the recorder writer, see inherit_control_priority); None = ordinary scheduling.
_control_sched: tuple[int, int] | None = None


def _raise_priority() -> int | None:
    """Ask the OS to schedule the media thread ahead of the process's other threads (SIP, DB,
    inference pools): Linux applies ``setpriority`` to one thread id. Needs CAP_SYS_NICE (root or the
    systemd unit's ``Nice=``/``AmbientCapabilities``); without it the thread keeps the default."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MEDIA_NICE)
    except (OSError, AttributeError):
        return None
    return MEDIA_NICE


def _set_realtime(priority: int) -> bool:
    """SCHED_RR at ``priority`` for the calling thread (Linux applies it to one thread id).

    ``SCHED_RESET_ON_FORK``: threads this one starts later (database, inference pools, the default
    executor) fall back to ordinary scheduling, so CPU-heavy inference never runs real-time. Needs
    CAP_SYS_NICE or an RLIMIT_RTPRIO >= ``priority`` (systemd ``LimitRTPRIO=``); False without it.
    """
    try:
        policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK
        os.sched_setscheduler(0, policy, os.sched_param(priority))
    except (OSError, AttributeError):
        return False
    return True


def inherit_control_priority() -> None:
    """Give the calling thread the control thread's real-time priority, if it has one.

    For threads the media plane starts that take the GIL on the control side's behalf (the recorder
    writer): a GIL holder descheduled by some other process would stall the media thread, which
    waits for that GIL (priority inversion). Thread-pool ``initializer``; a no-op otherwise."""
    if _control_sched is not None:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(0, _control_sched[0], os.sched_param(_control_sched[1]))


class _Mailbox:
    """Calls the media thread posted for one control loop, and whether a wake-up is on its way.

    Lock-free across the two threads: the media side appends, then schedules :meth:`run` only if
    none is pending; ``run`` clears ``scheduled`` BEFORE draining, so an item appended meanwhile is
    either drained by this run or finds ``scheduled`` false and sends a new wake-up."""

    __slots__ = ("items", "loop", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self.scheduled = False

    def send(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.run)
        except RuntimeError:  # that loop closed meanwhile: nobody is waiting any more
            self.items.clear()
            self.scheduled = False

    def run(self) -> None:
        """On the control loop."""
        self.scheduled = False
        items = self.items
        while items:
            fn, args = items.popleft()
            try:
                fn(*args)
            except Exception:
                log.exception("media: posted callback failed")


def resolve(fut: asyncio.Future[Any]) -> None:
    """Post target: complete a waiter future (on its own loop) unless already done."""
    if not fut.done():
        fut.set_result(None)


# ---------------------------------------------------------------------- process-level helpers
_control_lag = LoopLag()


def tune_process(*, freeze: bool = True, realtime: bool = True, media_thread: bool = True) -> None:
    """Called once when the node owns the process (``voipbin serve``), after start-up.

    * ``gc.freeze()``: the start-up heap (modules, settings, SQLAlchemy metadata, models) moves to
      the permanent generation, so full collections stop walking it;
    * thresholds (2000, 10, 100): young collections stay short (generation 1 holds at most ~20 k
      objects; with (5000, 20, 50) its passes took 34-47 ms in bench/calls_platform.py), and full
      passes — the long, GIL-holding pauses — come after ~2 M allocations instead of ~70 k;
    * a 2 ms GIL switch interval (default 5 ms): the media thread gets the GIL sooner when the
      control thread runs pure Python;
    * ``realtime`` (``VOIPBIN_MEDIA_REALTIME``): SCHED_RR for the media thread (priority 2) and the
      control thread (1), else (or if the OS refuses) nice -15 / -10. See :func:`_tune_scheduling`.
      ``media_thread=False`` (the media runs in a worker process, which tunes itself): the control
      thread only, and no media thread is started here.
    """
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(2_000, 10, 100)
    sys.setswitchinterval(0.002)
    _tune_scheduling(realtime, media_thread)
    if _gc_watch not in gc.callbacks:
        gc.callbacks.append(_gc_watch)


def _tune_scheduling(realtime: bool, media_thread: bool = True) -> None:
    """Why real-time, measured (bench/media_rtp.py, 200 play+record sessions, load average 3-4 from
    other jobs): with nice values the media thread was still 4 800-13 000 ticks late in 6 s and the
    peer saw gaps of 123-321 ms, because the thread that HELD THE GIL (the control loop, at best
    nice -10) was descheduled by other processes while the media thread waited for it. Nice only
    shares CPU by weight; SCHED_RR threads are never preempted by ordinary tasks, so a GIL holder
    that is real-time runs until it drops the GIL (within the 2 ms switch interval). With both
    threads SCHED_RR: 0-800 late ticks, peer gaps 43-57 ms (the peer's own noise on that machine).
    Asterisk (``-p``) and FreeSWITCH (``-rp``) run their media threads real-time for this reason.
    The kernel's RT throttling (``sched_rt_runtime_us``, 95 % by default) keeps a runaway real-time
    thread from locking up the host; the threads the control thread starts later are ordinary
    (SCHED_RESET_ON_FORK), so inference and the database pools are not real-time."""
    global _control_sched
    if realtime and _set_realtime(CONTROL_RT_PRIORITY):
        _control_sched = (os.SCHED_RR | os.SCHED_RESET_ON_FORK, CONTROL_RT_PRIORITY)
        if not media_thread:
            log.info("control thread: real-time scheduling (SCHED_RR %d)", CONTROL_RT_PRIORITY)
            return
        eng = MediaEngine.default()
        done = threading.Event()

        def media_rt() -> None:
            if _set_realtime(MEDIA_RT_PRIORITY):
                eng.scheduling = f"rr:{MEDIA_RT_PRIORITY}"
            done.set()

        eng.call_soon(media_rt)
        done.wait(5)
        if eng.scheduling.startswith("rr"):
            log.info("media: real-time scheduling (SCHED_RR %d media, %d control)",
                     MEDIA_RT_PRIORITY, CONTROL_RT_PRIORITY)  # fmt: skip
            return
    if realtime:
        log.warning("media: real-time scheduling refused (needs CAP_SYS_NICE or LimitRTPRIO); using nice")
    # The control thread (and the threads it starts later: DB, inference pools) above batch work on
    # the host, the media thread (MEDIA_NICE) above all. Without CAP_SYS_NICE this is a no-op.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CONTROL_NICE)


class GcPauses:
    """Collector pauses (they hold the GIL, so they stall the media thread too)."""

    def __init__(self) -> None:
        self.count = 0
        self.max_ms = 0.0
        self.total_ms = 0.0
        self.over_20ms = 0
        self._start = 0.0


gc_pauses = GcPauses()
process_role = "node"  # "media worker" in media/worker.py: whose collector paused, in the logs


def _gc_watch(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        gc_pauses._start = time.perf_counter()
        return
    ms = (time.perf_counter() - gc_pauses._start) * 1000
    gc_pauses.count += 1
    gc_pauses.total_ms += ms
    gc_pauses.max_ms = max(gc_pauses.max_ms, ms)
    if ms >= 20:
        gc_pauses.over_20ms += 1
        log.warning(
            "gc (%s): generation %s collection took %.0f ms (%s collected)",
            process_role,
            info.get("generation"),
            ms,
            info.get("collected"),
        )


def start_loop_lag_probe(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Measure the control loop's lag (the media loop's is always measured)."""
    _control_lag.start(loop or asyncio.get_running_loop())


def stop_loop_lag_probe() -> None:
    _control_lag.stop()


_remote_media: Callable[[], dict[str, Any]] | None = None


def use_remote_media(read: Callable[[], dict[str, Any]] | None) -> None:
    """The media runs in a worker process: ``read()`` gives its last ``media_loop_lag``,
    ``media_clock`` and ``gc`` figures (reported each second), which :func:`media_metrics` shows."""
    global _remote_media
    _remote_media = read


def media_metrics() -> dict[str, Any]:
    """Event-loop lag (control and media loop) and media-clock counters, for ``/metrics``.

    Plain numbers, no prometheus types: the metrics module maps them to gauges/counters.
    """
    eng = MediaEngine._default
    remote = _remote_media() if _remote_media is not None else None
    out: dict[str, Any] = {
        "control_loop_lag": _control_lag.snapshot(),
        "gc": {"collections": gc_pauses.count, "max_ms": round(gc_pauses.max_ms, 2),
               "total_ms": round(gc_pauses.total_ms, 1), "over_20ms": gc_pauses.over_20ms},
    }  # fmt: skip
    if remote:
        out["media_loop_lag"] = remote["media_loop_lag"]
        out["media_clock"] = remote["media_clock"]
        out["media_gc"] = remote["gc"]
    elif eng is not None:
        out["media_loop_lag"] = eng.lag.snapshot()
        out["media_clock"] = eng.stats()
    else:
        out["media_loop_lag"] = {"last_ms": 0.0, "max_ms": 0.0}
        keys = ("sessions", "ticks", "late_ticks", "skipped_ticks", "max_tick_ms")
        out["media_clock"] = dict.fromkeys(keys, 0)
    return out
