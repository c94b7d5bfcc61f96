"""``RtpSession``: the thin socket-and-clock shell around a pure :class:`~voipbin.media.stream.RtpStream`.

Split like aiortc's RTP code, each part testable without sockets:

* :class:`~voipbin.media.stream.RtpStream` (sans-I/O): datagram + arrival time in → jitter buffer,
  stats, DTMF; per slot → one inbound PCM frame and one outbound datagram;
* :class:`~voipbin.media.playout.PlayoutQueue`: the bounded playout queue and its producer waiters;
* this shell: the RTP/RTCP sockets, the engine's clock, symmetric-RTP latching, taps and sinks,
  and handing results to the control loop.

Timing model — one clock for all sessions, on the media thread (:mod:`voipbin.media.engine`):
    the engine's 20 ms ``call_at`` chain at absolute deadlines calls every started session's
    ``clock_tick``; a session's tick ``n`` counts from its start. If the media loop stalls for three
    frames or more, the missed slots are skipped — the RTP timestamp still advances by them —
    instead of being sent as a burst. The RTP/RTCP sockets belong to the media thread too
    (:mod:`voipbin.media.rtpsock`: drained at the start of each tick), so the control loop (SIP,
    flows, database, AI) being busy never delays a packet. Each tick does both directions:
    outbound, pop one frame from the playout queue (or a DTMF packet, or silence), encode (batched
    across sessions), send; inbound, pop the jitter buffer, decode or conceal, and hand the frame to
    sinks and ``both`` taps (bridges, recordings: paced, aligned with outbound by tick).

Listeners (``add_tap("in")``: the AI, STT) are not paced: their session reads its socket at arrival
and the stream releases each packet as soon as it is next in sequence order
(:mod:`voipbin.media.release`), posted to the control loop at once. A reply's first frame waits for
the next tick like every other (0-20 ms): sending it between ticks got it to the peer sooner but not
heard sooner — a peer plays a continuous stream by RTP timestamp, and the slot was the same — while
the packet after it then came up to 40 ms later, a gap on the wire (7 of 60 AI calls > 40 ms).

Threads: the public methods (``open``, ``enqueue``, ``play``, ``flush``, taps, ``close``...) are
called from the control loop; the clock and receive path run on the media thread. They share only
deques (atomic appends/pops under the GIL) and plain counters; whatever the media side must tell
the control side (a producer may refill, a digit arrived, a tap has frames) goes through
``MediaEngine.post`` (at most one wake-up pending per control loop).

Idle policy: when the playout queue is empty the session keeps sending G.711 silence. It costs
little, keeps NAT bindings and symmetric-RTP latching on the peer alive, and avoids peers' RTP
inactivity timeouts; it also keeps the timestamp/sequence continuous so peers never see a new
talkspurt mid-call. RTCP arrives on RTP+1 (or muxed on the RTP port) and feeds ``stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from voipbin.media.dtmf import DtmfDigit, deliver_digit, encode_digit
from voipbin.media.engine import MediaEngine, resolve
from voipbin.media.g711 import PT_PCMU, EncodeBatch
from voipbin.media.jitter import JitterBuffer
from voipbin.media.playout import PlayoutQueue
from voipbin.media.ports import PortAllocator
from voipbin.media.resample import StreamResampler
from voipbin.media.rtpsock import RtpSockets
from voipbin.media.stats import RtpStats
from voipbin.media.stream import SILENCE_PCM, RtpStream
from voipbin.media.taps import Direction, Frame, Tap
from voipbin.media.wav import MEDIA_RATE, iter_wav_pcm

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.020
RTCP_INTERVAL_TICKS = 250  # 5 s
LISTEN_MAX_BEHIND = 50  # ticks the listeners' frame labels may lag the clock before they catch up

Sink = Callable[[Frame], None]
PcmSource = bytes | np.ndarray | str | Path | Iterable[Any] | AsyncIterable[Any]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_IN = "in"
_OUT = "out"
# Frame(...) goes through the NamedTuple's Python-level __new__; tuple.__new__ builds the same object
# without it (two frames per session per tick on the media thread).
_new_frame: Callable[[tuple[str, int, bytes]], Frame] = partial(tuple.__new__, Frame)


def _drop(_: Any) -> None:
    """A closed session's stream sends nothing."""


def _call(fn: Callable[..., Any], *args: Any) -> None:
    fn(*args)


def _emit_to(sinks: tuple[Sink, ...], frame: Frame) -> None:
    for sink in sinks:
        try:
            sink(frame)
        except Exception:
            log.exception("rtp: %s sink failed", frame.direction)


async def enqueue_chunks(chunks: Any, rate: int, enqueue: Callable[..., Awaitable[bool]]) -> bool:
    """Hand PCM chunks at ``rate`` (an iterable or async iterable) to ``enqueue`` at 8 kHz, the
    resampler's tail last with ``final=True``. False as soon as ``enqueue`` refuses (flushed, closed)."""
    rs = StreamResampler(rate, MEDIA_RATE) if rate != MEDIA_RATE else None
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:
            if not await enqueue(rs.process(chunk) if rs else chunk, final=False):
                return False
    else:
        for chunk in chunks:
            if not await enqueue(rs.process(chunk) if rs else chunk, final=False):
                return False
    return await enqueue(rs.flush() if rs else b"", final=True)


def check_remote(addr: str, port: int, ptime: int, family_version: int, host: str) -> None:
    """Raise ValueError unless a session bound to ``host`` can send to ``addr``:``port`` every ``ptime``."""
    if ptime <= 0 or ptime % 20:
        raise ValueError("ptime must be a positive multiple of 20 ms")
    version = ipaddress.ip_address(addr).version  # ValueError for host names: resolve before (no DNS)
    if version != family_version:
        raise ValueError(f"an IPv{version} peer needs an IPv{version} RTP socket (bound to {host})")
    if not 0 < port < 65536:
        raise ValueError(f"bad RTP port {port}")


class RtpSession:
    """See the module docstring. Lifecycle: ``await open()`` → ``set_remote(...)`` → ``start()`` →
    ``await close()``, all from the control loop."""

    def __init__(
        self,
        *,
        allocator: PortAllocator | None = None,
        host: str = "0.0.0.0",
        playout_frames: int = 50,
        jitter: JitterBuffer[tuple[int, bytes]] | None = None,
        cname: str | None = None,
        dtmf_timeout: float = 0.3,
        engine: MediaEngine | None = None,
    ) -> None:
        self.engine = engine or MediaEngine.default()
        self.allocator = allocator
        self.host = host
        self.stream = RtpStream(
            send=self._transmit, jitter=jitter, cname=cname, dtmf_timeout=dtmf_timeout,
            on_dtmf_sent=self._dtmf_sent,
        )  # fmt: skip
        self.stream.sending = False
        self.playout = PlayoutQueue(playout_frames, notify=self._to_control)
        self.local_port = 0
        self.remote: tuple[str, int] | None = None
        self.remote_rtcp: tuple[str, int] | None = None
        self.latch = False
        self._latched = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the control loop (futures, callbacks)
        self._socks: RtpSockets | None = None  # set on the media loop by open()
        self._arrival_reads = False
        self._rx_now = 0.0  # kernel arrival time of the datagram being handled (0: use the clock)
        self._closed = False
        # clock
        self._started = False
        self._registered = False
        self._n0 = 0  # engine tick at which this session's tick 0 falls
        self._t0 = 0.0
        self._n = 0
        # consumers; copy-on-write tuples: the media thread iterates them while the control side edits
        self._sinks: dict[str, tuple[Sink, ...]] = {"in": (), "out": ()}
        self._taps: list[Tap] = []
        self._listeners: tuple[Sink, ...] = ()  # inbound taps fed in arrival order (_set_listening)
        self._listen_tick = 0  # the tick label of the last frame they got
        self._dtmf_callbacks: list[Callable[[DtmfDigit], None]] = []
        self.dtmf_queue: asyncio.Queue[DtmfDigit] = asyncio.Queue(maxsize=64)

    # ------------------------------------------------------------------ the stream's state
    @property
    def stats(self) -> RtpStats:
        return self.stream.stats

    @property
    def jitter(self) -> JitterBuffer[tuple[int, bytes]]:
        return self.stream.jitter

    @property
    def ssrc(self) -> int:
        return self.stream.ssrc

    @property
    def payload_type(self) -> int:
        return self.stream.payload_type

    @property
    def dtmf_pt(self) -> int | None:
        return self.stream.dtmf_pt

    @property
    def ptime(self) -> int:
        return self.stream.ptime

    @property
    def playout_frames(self) -> int:
        return self.playout.max_frames

    @playout_frames.setter
    def playout_frames(self, frames: int) -> None:
        self.playout.max_frames = frames

    @property
    def remote_bye(self) -> bool:
        return self.stream.remote_bye

    @property
    def _last_sr(self) -> tuple[int, float] | None:
        return self.stream.last_sr

    # ------------------------------------------------------------------ setup
    async def open(self, port: int | None = None) -> int:
        """Bind RTP and RTCP sockets: from the allocator, or ``port`` (0 = any even/odd pair)."""
        self._loop = asyncio.get_running_loop()
        if self.allocator is not None and port is None:
            self.local_port, rtp_sock, rtcp_sock = self.allocator.bind_pair(self.host)
        else:
            rtp_sock, rtcp_sock = self._bind_any(port or 0)
            self.local_port = rtp_sock.getsockname()[1]
        try:
            await self.engine.call(self._attach(rtp_sock, rtcp_sock))
        except BaseException:
            rtp_sock.close()
            rtcp_sock.close()
            if self.allocator is not None and port is None:
                self.allocator.release(self.local_port)
            raise
        self._update_sending()
        return self.local_port

    async def _attach(self, rtp_sock: socket.socket, rtcp_sock: socket.socket) -> None:
        """On the media loop: the sockets are read by it (drained each tick, or at arrival)."""
        socks = RtpSockets(self, rtp_sock, rtcp_sock)
        socks.arrival_reads = self._arrival_reads
        socks.attach()
        self._socks = socks

    def set_arrival_reads(self, on: bool = True) -> None:
        """Read inbound RTP the moment it arrives (a loop reader) instead of at the next tick.

        For listeners that want audio without the tick's wait (the AI, STT; ``add_tap("in")`` turns
        it on) and for measuring peers that timestamp every packet; the default drain at the tick
        is cheaper (one wake-up per 20 ms for all sessions instead of one per packet)."""
        self._arrival_reads = on
        if self._socks is not None and not self._closed:
            self.engine.call_soon(self._socks.set_arrival_reads, on)

    def _bind_any(self, port: int) -> tuple[socket.socket, socket.socket]:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(50):
            rtp_sock = socket.socket(family, socket.SOCK_DGRAM)
            rtp_sock.bind((self.host, port))
            p = rtp_sock.getsockname()[1]
            if p % 2 == 0:
                rtcp_sock = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    rtcp_sock.bind((self.host, p + 1))
                except OSError:
                    rtcp_sock.close()
                    rtp_sock.close()
                    if port:
                        raise
                    continue
                rtp_sock.setblocking(False)
                rtcp_sock.setblocking(False)
                return rtp_sock, rtcp_sock
            rtp_sock.close()
            if port:
                raise OSError(f"RTP port {port} must be even")
        raise OSError("could not bind an even/odd UDP port pair")

    def set_remote(
        self,
        addr: str,
        port: int,
        payload_type: int = PT_PCMU,
        dtmf_pt: int | None = None,
        ptime: int = 20,
        *,
        latch: bool = False,
        rtcp_port: int | None = None,
    ) -> None:
        """Apply SDP negotiation results (``addr`` is an IP literal from the SDP ``c=`` line; an IPv6
        address needs a session bound to an IPv6 host, e.g. ``::`` or ``::1``).

        ``latch``: symmetric RTP — send to wherever the peer's first packet came from (for peers
        behind NAT). Packets are accepted from any source either way. May be called again
        (re-INVITE) while running."""
        check_remote(addr, port, ptime, self.family_version, self.host)
        self.stream.configure(payload_type, dtmf_pt, ptime)
        self.latch = latch
        self._latched = False
        self.remote = (addr, port)
        self.remote_rtcp = (addr, rtcp_port if rtcp_port is not None else port + 1)
        self._update_sending()

    def _update_sending(self) -> None:
        self.stream.sending = (
            self.remote is not None and self._socks is not None and (not self.latch or self._latched)
        )

    @property
    def family_version(self) -> int:
        return 6 if ":" in self.host else 4

    @property
    def running(self) -> bool:
        return self._started and not self._closed

    def start(self) -> None:
        """Join the media engine's clock (ticks begin with its next 20 ms slot)."""
        if self._loop is None:
            raise RuntimeError("open() the session first")
        if self._started or self._closed:
            return
        self._started = True
        self.engine.call_soon(self._register)

    def _register(self) -> None:
        if self._closed or self._registered:
            return
        self._n0 = self.engine.add(self)
        self._t0 = self.engine.tick_time(self._n0)
        self._n = 0
        self._registered = True

    # ------------------------------------------------------------------ consumers
    def add_tap(self, direction: str = "both", maxsize: int = 50, tap: Tap | None = None) -> Tap:
        """Subscribe to 20 ms PCM frames: ``direction`` is ``in``, ``out`` or ``both``. ``tap``: a
        tap of the caller's own making for the frames (the media worker's, which forwards them)."""
        dirs = frozenset(("in", "out")) if direction == "both" else frozenset((direction,))
        if not dirs <= {"in", "out"}:
            raise ValueError("direction must be in, out or both")
        if tap is None:
            tap = Tap(dirs, maxsize, waker=self._wake_future)
        self._taps.append(tap)
        if dirs == {"in"}:  # a listener (AI, STT): frames in order at arrival, not paced (see below)
            self._listeners = (*self._listeners, tap.put)
            if len(self._listeners) == 1:
                self._set_listening(True)
            return tap
        for d in dirs:
            self._sinks[d] = (*self._sinks[d], tap.put)
        return tap

    def remove_tap(self, tap: Tap) -> None:
        if tap in self._taps:
            self._taps.remove(tap)
            if tap.put in self._listeners:
                self._listeners = tuple(x for x in self._listeners if x != tap.put)
                if not self._listeners:
                    self._set_listening(False)
            else:
                for d in tap.directions:
                    self.remove_sink(d, tap.put)  # type: ignore[arg-type]
        tap.close()

    def _set_listening(self, on: bool) -> None:
        """Inbound taps (``add_tap("in")``) get audio in arrival order, as soon as it is complete
        (``RtpStream.enable_release``; the socket is read at arrival), and their frames are posted
        to the control loop at once rather than at the tick. Sinks and ``both`` taps (bridges,
        recordings: pacing or in/out alignment matter there) keep the playout jitter buffer."""
        if self._closed:  # closing: the sockets and the stream are going away anyway
            return
        self.set_arrival_reads(on)
        self.engine.call_soon(self._apply_listening, on)

    def _apply_listening(self, on: bool) -> None:
        """On the media thread."""
        if on and self.stream.release is None:
            self._listen_tick = self._n
        self.stream.enable_release(on, time.monotonic())

    def _to_listeners(self) -> None:
        """Hand frames the stream released to the inbound taps (media thread). Their ``tick`` counts
        on from the session tick at which listening began: one per 20 ms of audio, contiguous."""
        stream = self.stream
        frames, stream.released = stream.released, []
        listeners = self._listeners
        if not listeners:
            return
        label = self._listen_tick
        if label < self._n - LISTEN_MAX_BEHIND:  # far behind the clock (a long stall): catch up
            label = self._n
        for pcm in frames:
            label += 1
            _emit_to(listeners, _new_frame((_IN, label, pcm)))
        self._listen_tick = label

    def add_sink(self, direction: Direction, sink: Sink) -> None:
        """Synchronous per-frame callback run inside the clock tick ON THE MEDIA THREAD; must be O(1),
        never block, and hand anything for the control loop over thread-safely."""
        self._sinks[direction] = (*self._sinks[direction], sink)

    def remove_sink(self, direction: Direction, sink: Sink) -> None:
        sinks = list(self._sinks[direction])
        with contextlib.suppress(ValueError):
            sinks.remove(sink)
        self._sinks[direction] = tuple(sinks)

    def on_dtmf(self, callback: Callable[[DtmfDigit], None]) -> None:
        """``callback`` runs on the control loop (the one that opened the session)."""
        self._dtmf_callbacks.append(callback)

    @property
    def dtmf_callbacks(self) -> tuple[Callable[[DtmfDigit], None], ...]:
        return tuple(self._dtmf_callbacks)

    # ------------------------------------------------------------------ cross-thread hand-off
    def _wake_future(self, fut: asyncio.Future[None]) -> None:
        """Complete ``fut`` from whichever thread we are on: directly on its own loop, else posted."""
        loop = fut.get_loop()
        if _running_loop() is loop:
            resolve(fut)
        else:
            self.engine.post(loop, resolve, fut)

    def _to_control(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the control loop (posted, coalesced, when called from the media thread)."""
        running = _running_loop()
        if running is not None and running is self._loop:
            fn(*args)
        else:
            self.engine.post(self._loop, fn, *args)

    # ------------------------------------------------------------------ outbound audio
    @property
    def queued_frames(self) -> int:
        return len(self.playout)

    async def enqueue(self, pcm: bytes | np.ndarray, *, final: bool = True) -> bool:
        """Queue 8 kHz mono int16 PCM for playout, waiting while the queue is full (see PlayoutQueue)."""
        return await self.playout.enqueue(pcm, final=final)

    def push_frame(self, pcm: bytes, max_queue: int = 5) -> None:
        """Non-blocking enqueue of one 20 ms frame, dropping the oldest beyond ``max_queue`` (bridging)."""
        self.playout.push_frame(pcm, max_queue)

    async def play(self, source: PcmSource, rate: int = MEDIA_RATE, *, wait: bool = True) -> bool:
        """Play PCM bytes/array, a WAV path, or a (async) iterable of PCM chunks at ``rate``.

        With ``wait`` returns once the audio has left the queue. False if interrupted by ``flush()``.
        """
        gen = self.playout.generation
        if isinstance(source, str | Path):
            chunks: Any = iter_wav_pcm(source)
            rate = MEDIA_RATE
        elif isinstance(source, bytes | bytearray | np.ndarray):
            chunks = [source]
        else:
            chunks = source
        if not await enqueue_chunks(chunks, rate, self.enqueue):
            return False
        if wait:
            await self.wait_played()
        return gen == self.playout.generation and not self._closed

    async def wait_played(self) -> None:
        """Wait until the playout queue is empty (played out, flushed or closed)."""
        await self.playout.wait_played()

    def flush(self) -> int:
        """Barge-in: drop all queued audio now; the next tick sends silence. Returns frames dropped.

        Producers blocked in ``enqueue``/``play`` return False, so a cancelled prompt stops feeding.
        """
        self.stream.discard_pending()
        return self.playout.flush()

    async def send_dtmf(self, digits: str, duration_ms: int = 100, gap_ms: int = 60) -> None:
        """Send RFC 4733 events through the session clock; returns when the last end packet is sent."""
        if self.dtmf_pt is None:
            raise RuntimeError("no telephone-event payload type was negotiated")
        loop = asyncio.get_running_loop()
        for d in digits:
            encode_digit(d)  # validate before queueing anything
        futs = []
        for d in digits:
            fut: asyncio.Future[None] = loop.create_future()
            self.stream.queue_dtmf(d, duration_ms, gap_ms, fut)
            futs.append(fut)
        await asyncio.gather(*futs)

    def _dtmf_sent(self, token: Any) -> None:
        if isinstance(token, asyncio.Future):
            self._wake_future(token)

    # ------------------------------------------------------------------ the clock (media thread)
    def clock_tick(self, engine_n: int, late: bool, skipped: int, batch: EncodeBatch | None = None) -> None:
        """One 20 ms slot, called by the engine on the media thread for every started session; audio
        to encode joins ``batch`` (encoded for all sessions at once, then sent)."""
        if self._closed:
            return
        if self._loop is not None and self._loop.is_closed():  # its owner vanished without close()
            self._detach()
            return
        n = engine_n - self._n0
        if late:
            self.stats.late_ticks += 1
            self.stats.skipped_ticks += skipped
        self._n = n
        # Both directions of the slot in one frame (this runs per session per tick: the hot path;
        # _inbound_tick/_outbound_tick are the same steps, kept for callers outside the clock).
        sinks = self._sinks
        stream = self.stream
        try:
            now = time.monotonic()
            ins = sinks["in"]
            pcm, digits = stream.frame_in(n, now, bool(ins))
            for d in digits:
                self._to_control(self._dtmf_to_consumers, d)
            if pcm is not None and ins:
                _emit_to(ins, _new_frame((_IN, n, pcm)))
            if stream.release is not None:
                stream.poll_release(now)
                if stream.released:
                    self._to_listeners()
            played = stream.frame_out(n, self.playout.pop(), now, batch)
            outs = sinks["out"]
            if outs:
                _emit_to(outs, _new_frame((_OUT, n, played)))
            if n % RTCP_INTERVAL_TICKS == RTCP_INTERVAL_TICKS - 1:
                self._send_rtcp()
        except Exception:
            log.exception("rtp: tick failed")

    def _emit(self, direction: str, n: int, pcm: bytes) -> None:
        sinks = self._sinks[direction]
        if sinks:
            _emit_to(sinks, _new_frame((direction, n, pcm)))

    def _inbound_tick(self, n: int) -> None:
        listening = bool(self._sinks["in"])
        pcm, digits = self.stream.frame_in(n, time.monotonic(), listening)
        for d in digits:
            self._to_control(self._dtmf_to_consumers, d)
        if pcm is not None:
            self._emit("in", n, pcm)

    def _outbound_tick(self, n: int, batch: EncodeBatch | None = None) -> None:
        played = self.stream.frame_out(n, self.playout.pop(), time.monotonic(), batch)
        self._emit("out", n, played)

    def _transmit(self, datagram: bytes) -> None:
        socks, remote = self._socks, self.remote
        if socks is not None and remote is not None:
            try:
                socks.rtp.sendto(datagram, remote)  # RtpSockets.send_rtp, inlined (per packet)
            except OSError:  # full socket buffer, unreachable network: this packet is lost
                socks.send_errors += 1

    # ------------------------------------------------------------------ receive path (media thread)
    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.latch and not self._latched and self.remote is not None:
            self.remote = addr
            self.remote_rtcp = (addr[0], addr[1] + 1)
            self._latched = True
            self._update_sending()
        stream = self.stream
        for d in stream.receive(data, self._rx_now or time.monotonic()):
            self._to_control(self._dtmf_to_consumers, d)
        if stream.released:
            self._to_listeners()

    def _dtmf_to_consumers(self, digit: DtmfDigit) -> None:
        deliver_digit(digit, self.dtmf_queue, self._dtmf_callbacks)

    def _on_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        self.stream.receive_rtcp(data, self._rx_now or time.monotonic())

    def _send_rtcp(self, bye: bool = False) -> None:
        if self.remote_rtcp is None or self._socks is None or (self.latch and not self._latched):
            return
        self._socks.send_rtcp(self.stream.rtcp_report(time.monotonic(), bye), self.remote_rtcp)

    # ------------------------------------------------------------------ teardown
    def _detach(self, bye: bool = False) -> None:
        """On the media thread: leave the clock (after an RTCP BYE) and close the sockets."""
        if bye and self._registered and self.remote is not None:
            with contextlib.suppress(Exception):
                self._send_rtcp(bye=True)
        self._closed = True
        self.stream.sending = False
        if self._registered:
            self.engine.remove(self)
            self._registered = False
        if self._socks is not None:
            self._socks.close()

    async def _close_media(self) -> None:
        self._detach(bye=True)
        await asyncio.sleep(0)  # let callbacks already queued for this session run before the port is reused

    async def close(self) -> None:
        if self._closed:
            return
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the media thread is gone (interpreter exit)
                await self.engine.call(self._close_media())
        self._closed = True
        self.playout.close()
        for token in self.stream.drop_dtmf():
            if isinstance(token, asyncio.Future) and not token.done():
                token.cancel()
        for tap in list(self._taps):
            self.remove_tap(tap)
        if self.allocator is not None and self.local_port:
            self.allocator.release(self.local_port)
        self._break_cycles()

    def _break_cycles(self) -> None:
        """The stream, playout queue and sockets call back into this session (bound methods): a
        reference cycle per session, which only the collector's full passes freed — 20-30 ms with
        the GIL held in a media worker that had just ended a hundred calls. Cut, the session is
        freed by reference counting when its last holder lets go."""
        self.stream.send = _drop
        self.stream.on_dtmf_sent = _drop
        self.playout.notify = _call
        self._socks = None

    async def __aenter__(self) -> RtpSession:
        if self._loop is None:
            await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = [
    "FRAME_SECONDS",
    "SILENCE_PCM",
    "PcmSource",
    "RtpSession",
    "Sink",
    "check_remote",
    "enqueue_chunks",
]
