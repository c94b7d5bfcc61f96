"""``RtpSession``: one plain-RTP G.711 stream on asyncio datagram endpoints.

Timing model — one clock for all sessions, on the media thread (:mod:`voipbin.media.engine`):
    the engine's 20 ms ``call_at`` chain at absolute deadlines calls every started session's
    ``clock_tick``; a session's tick ``n`` counts from its start. If the media loop stalls for three
    frames or more, the missed slots are skipped — the RTP timestamp still advances by them —
    instead of being sent as a burst. The RTP/RTCP sockets live on the media loop too, so the
    control loop (SIP, flows, database, AI) being busy never delays a packet. Each tick does both
    directions:

    * outbound: pop one 20 ms frame from the bounded playout queue (or a DTMF packet, or silence),
      encode, send. Nothing else paces audio: producers only ``await enqueue()``, which blocks while
      the queue is full (backpressure) and resumes at half-full, so audio is never paced twice.
    * inbound: pop the jitter buffer, decode (conceal losses by attenuated repeat), and hand the
      frame to taps/sinks.

Threads: the public methods (``open``, ``enqueue``, ``play``, ``flush``, taps, ``close``...) are
called from the control loop; the clock and receive path run on the media thread. They share only
deques (atomic appends/pops under the GIL) and plain counters; whatever the media side must tell
the control side (a producer may refill, a digit arrived, a tap has frames) goes through
``MediaEngine.post``, batched per tick.

Idle policy: when the playout queue is empty the session keeps sending G.711 silence. It costs
little, keeps NAT bindings and symmetric-RTP latching on the peer alive, and avoids peers' RTP
inactivity timeouts; it also keeps the timestamp/sequence continuous so peers never see a new
talkspurt mid-call.

Inbound: packets of the negotiated audio payload type (either G.711 law is decoded by its own PT)
go to the jitter buffer; RFC 4733 events bypass it (their redundant end packets share a sequence
number) and go straight to the DTMF decoder; anything else is counted and dropped, as are
malformed datagrams. RTCP arrives on RTP+1 (or muxed on the RTP port) and feeds ``stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import socket
import time
from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from voipbin.media import rtcp
from voipbin.media.dtmf import DtmfDecoder, DtmfDigit, TelephoneEvent, encode_digit
from voipbin.media.engine import MediaEngine, resolve
from voipbin.media.errors import MediaParseError
from voipbin.media.g711 import PT_PCMA, PT_PCMU, EncodeBatch, G711Codec
from voipbin.media.jitter import JitterBuffer, Playout
from voipbin.media.ports import PortAllocator
from voipbin.media.resample import StreamResampler
from voipbin.media.rtp import RtpPacket, build_header, is_rtcp, parse_plain
from voipbin.media.stats import ReceiveStats, RtpStats
from voipbin.media.taps import Direction, Frame, Tap
from voipbin.media.wav import FRAME_BYTES, FRAME_SAMPLES, MEDIA_RATE, iter_wav_pcm

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.020
SILENCE_PCM = bytes(FRAME_BYTES)
RTCP_INTERVAL_TICKS = 250  # 5 s

Sink = Callable[[Frame], None]
PcmSource = bytes | np.ndarray | str | Path | Iterable[Any] | AsyncIterable[Any]


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession, rtcp_port: bool) -> None:
        self.session = session
        self.rtcp_port = rtcp_port

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            if self.rtcp_port or is_rtcp(data):
                self.session._on_rtcp(data, addr)
            else:
                self.session._on_rtp(data, addr)
        except Exception:  # a bad datagram must never take the session down
            self.session.stats.malformed_in += 1
            log.exception("rtp: dropped datagram from %s", addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the peer is not yet listening: normal, keep going.
        log.debug("rtp: socket error %s", exc)


class RtpSession:
    """See the module docstring. Lifecycle: ``await open()`` → ``set_remote(...)`` → ``start()`` →
    ``await close()``. All methods must be called from the event loop's thread."""

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
        self.playout_frames = playout_frames
        self.jitter: JitterBuffer[tuple[int, bytes]] = jitter or JitterBuffer(target=2, max_depth=10)
        self.ssrc = random.getrandbits(32)
        self.cname = cname or f"voipbin-{os.getpid()}-{self.ssrc:08x}"
        self.stats = RtpStats()
        self._rx = ReceiveStats(self.stats)
        self.local_port = 0
        self.remote: tuple[str, int] | None = None
        self.remote_rtcp: tuple[str, int] | None = None
        self.payload_type = PT_PCMU
        self.dtmf_pt: int | None = None
        self.ptime = 20
        self.latch = False
        self._latched = False
        self._codec = G711Codec(PT_PCMU)
        self._decoders = {PT_PCMU: G711Codec(PT_PCMU), PT_PCMA: G711Codec(PT_PCMA)}
        self._silence_payload = bytes([self._codec.silence]) * FRAME_SAMPLES
        self._loop: asyncio.AbstractEventLoop | None = None  # the control loop (futures, callbacks)
        self._rtp_tr: asyncio.DatagramTransport | None = None
        self._rtcp_tr: asyncio.DatagramTransport | None = None
        self._closed = False
        # clock
        self._started = False
        self._registered = False
        self._n0 = 0  # engine tick at which this session's tick 0 falls
        self._t0 = 0.0
        self._n = 0
        self._last_send_at = 0.0
        self._seq = random.getrandbits(16)
        self._ts_base = random.getrandbits(32)
        self._first_packet = True
        self._pending_out: list[bytes] = []  # frames accumulated for ptime > 20
        self._pending_ts = 0
        self._last_sent_ts = self._ts_base
        # playout queue + producers
        self._queue: deque[bytes] = deque()
        self._partial = bytearray()
        self._generation = 0
        self._space_waiters: list[asyncio.Future[None]] = []
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._space_wake_posted = False
        self._drain_wake_posted = False
        # inbound
        self._remote_ssrc: int | None = None
        self._in_pcm = bytearray()
        self._last_in = SILENCE_PCM
        self._conceal_run = 0
        self._had_audio = False
        self._skip_owed = 0
        self._dtmf_rx = DtmfDecoder(timeout=dtmf_timeout)
        self._dtmf_callbacks: list[Callable[[DtmfDigit], None]] = []
        self.dtmf_queue: asyncio.Queue[DtmfDigit] = asyncio.Queue(maxsize=64)
        # outbound DTMF
        self._dtmf_tx: deque[tuple[str, int, int, asyncio.Future[None]]] = deque()
        self._dtmf_packets: list[TelephoneEvent] = []
        self._dtmf_ts = 0
        self._dtmf_gap = 0
        self._dtmf_done: asyncio.Future[None] | None = None
        # consumers
        # copy-on-write tuples: the media thread iterates them while the control side adds/removes
        self._sinks: dict[str, tuple[Sink, ...]] = {"in": (), "out": ()}
        self._taps: list[Tap] = []
        # rtcp
        self._last_sr: tuple[int, float] | None = None  # (middle 32 bits of NTP, arrival loop time)
        self.remote_bye = False

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
        return self.local_port

    async def _attach(self, rtp_sock: socket.socket, rtcp_sock: socket.socket) -> None:
        """On the media loop: the sockets' readers belong to it."""
        loop = asyncio.get_running_loop()
        self._rtp_tr, _ = await loop.create_datagram_endpoint(
            lambda: _RtpProtocol(self, False), sock=rtp_sock
        )
        self._rtcp_tr, _ = await loop.create_datagram_endpoint(
            lambda: _RtpProtocol(self, True), sock=rtcp_sock
        )

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
        if ptime <= 0 or ptime % 20:
            raise ValueError("ptime must be a positive multiple of 20 ms")
        version = ipaddress.ip_address(addr).version  # ValueError for host names: resolve before (no DNS)
        if version != self.family_version:
            raise ValueError(f"an IPv{version} peer needs an IPv{version} RTP socket (bound to {self.host})")
        if not 0 < port < 65536:
            raise ValueError(f"bad RTP port {port}")
        self._codec = G711Codec(payload_type)
        self.payload_type = payload_type
        self._silence_payload = bytes([self._codec.silence]) * FRAME_SAMPLES
        self.dtmf_pt = dtmf_pt
        self.ptime = ptime
        self.latch = latch
        self._latched = False
        self.remote = (addr, port)
        self.remote_rtcp = (addr, rtcp_port if rtcp_port is not None else port + 1)
        self._pending_out.clear()

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
    def add_tap(self, direction: str = "both", maxsize: int = 50) -> Tap:
        """Subscribe to 20 ms PCM frames: ``direction`` is ``in``, ``out`` or ``both``."""
        dirs = frozenset(("in", "out")) if direction == "both" else frozenset((direction,))
        if not dirs <= {"in", "out"}:
            raise ValueError("direction must be in, out or both")
        tap = Tap(dirs, maxsize, waker=self._wake_future)
        self._taps.append(tap)
        for d in dirs:
            self._sinks[d] = (*self._sinks[d], tap.put)
        return tap

    def remove_tap(self, tap: Tap) -> None:
        if tap in self._taps:
            self._taps.remove(tap)
            for d in tap.directions:
                self.remove_sink(d, tap.put)  # type: ignore[arg-type]
        tap.close()

    def add_sink(self, direction: Direction, sink: Sink) -> None:
        """Synchronous per-frame callback run inside the clock tick ON THE MEDIA THREAD; must be O(1),
        never block, and hand anything for the control loop over thread-safely."""
        self._sinks[direction] = (*self._sinks[direction], sink)

    def remove_sink(self, direction: Direction, sink: Sink) -> None:
        sinks = list(self._sinks[direction])
        with contextlib.suppress(ValueError):
            sinks.remove(sink)
        self._sinks[direction] = tuple(sinks)

    def _wake_future(self, fut: asyncio.Future[None]) -> None:
        """Complete ``fut`` from whichever thread we are on: directly on its own loop, else posted."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = fut.get_loop()
        if running is loop:
            resolve(fut)
        else:
            self.engine.post(loop, resolve, fut)

    def _to_control(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the control loop (posted, batched per tick, when called from the media thread)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            fn(*args)
        else:
            self.engine.post(self._loop, fn, *args)

    def on_dtmf(self, callback: Callable[[DtmfDigit], None]) -> None:
        """``callback`` runs on the control loop (the one that opened the session)."""
        self._dtmf_callbacks.append(callback)

    @property
    def dtmf_callbacks(self) -> tuple[Callable[[DtmfDigit], None], ...]:
        return tuple(self._dtmf_callbacks)

    # ------------------------------------------------------------------ outbound audio
    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    async def enqueue(self, pcm: bytes | np.ndarray, *, final: bool = True) -> bool:
        """Queue 8 kHz mono int16 PCM for playout, waiting while the queue is full.

        A trailing partial frame is held for the next call unless ``final`` (then zero-padded).
        Returns False if ``flush()`` or ``close()`` discarded the audio while waiting.
        """
        gen = self._generation
        if isinstance(pcm, np.ndarray):
            view = np.ascontiguousarray(pcm, dtype="<i2").data.cast("B")
        else:
            view = memoryview(pcm).cast("B")
        pos, size = 0, len(view)
        partial = self._partial
        if partial:  # complete the frame left over from the previous call
            take = min(FRAME_BYTES - len(partial), size)
            partial += view[:take]
            pos = take
            if len(partial) == FRAME_BYTES:
                if not await self._wait_space(gen):
                    return False
                self._queue.append(bytes(partial))
                partial.clear()
        # Whole frames are sliced straight from the caller's buffer (no copy of the whole input).
        while pos + FRAME_BYTES <= size:
            if not await self._wait_space(gen):
                return False
            self._queue.append(view[pos : pos + FRAME_BYTES].tobytes())
            pos += FRAME_BYTES
        if pos < size:
            partial += view[pos:]
        if final and partial:
            if not await self._wait_space(gen):
                return False
            self._queue.append(bytes(partial) + bytes(FRAME_BYTES - len(partial)))
            partial.clear()
        return not self._closed and gen == self._generation

    async def _wait_space(self, gen: int) -> bool:
        while len(self._queue) >= self.playout_frames:
            if self._closed or gen != self._generation:
                return False
            fut = asyncio.get_running_loop().create_future()
            self._space_waiters.append(fut)
            await fut
        return not self._closed and gen == self._generation

    def push_frame(self, pcm: bytes, max_queue: int = 5) -> None:
        """Non-blocking enqueue of one 20 ms frame, dropping the oldest beyond ``max_queue`` (bridging)."""
        if len(pcm) != FRAME_BYTES:
            raise ValueError("push_frame takes exactly one 20 ms frame")
        while len(self._queue) >= max_queue:
            self._queue.popleft()
        self._queue.append(pcm)

    async def play(self, source: PcmSource, rate: int = MEDIA_RATE, *, wait: bool = True) -> bool:
        """Play PCM bytes/array, a WAV path, or a (async) iterable of PCM chunks at ``rate``.

        With ``wait`` returns once the audio has left the queue. False if interrupted by ``flush()``.
        """
        gen = self._generation
        if isinstance(source, str | Path):
            chunks: Any = iter_wav_pcm(source)
            rate = MEDIA_RATE
        elif isinstance(source, bytes | bytearray | np.ndarray):
            chunks = [source]
        else:
            chunks = source
        rs = StreamResampler(rate, MEDIA_RATE) if rate != MEDIA_RATE else None
        if hasattr(chunks, "__aiter__"):
            async for chunk in chunks:
                if not await self.enqueue(rs.process(chunk) if rs else chunk, final=False):
                    return False
        else:
            for chunk in chunks:
                if not await self.enqueue(rs.process(chunk) if rs else chunk, final=False):
                    return False
        if not await self.enqueue(rs.flush() if rs else b"", final=True):
            return False
        if wait:
            await self.wait_played()
        return gen == self._generation and not self._closed

    async def wait_played(self) -> None:
        """Wait until the playout queue is empty (played out, flushed or closed)."""
        while self._queue and not self._closed:
            fut = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await fut

    def flush(self) -> int:
        """Barge-in: drop all queued audio now; the next tick sends silence. Returns frames dropped.

        Producers blocked in ``enqueue``/``play`` return False, so a cancelled prompt stops feeding.
        """
        dropped = len(self._queue) + (1 if self._partial else 0)
        self._queue.clear()
        self._partial.clear()
        self._pending_out.clear()
        self._generation += 1
        self._wake(self._space_waiters)
        self._wake(self._drain_waiters)
        return dropped

    def _wake_space(self) -> None:
        self._space_wake_posted = False
        self._wake(self._space_waiters)

    def _wake_drain(self) -> None:
        self._drain_wake_posted = False
        self._wake(self._drain_waiters)

    @staticmethod
    def _wake(waiters: list[asyncio.Future[None]]) -> None:
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        waiters.clear()

    async def send_dtmf(self, digits: str, duration_ms: int = 100, gap_ms: int = 60) -> None:
        """Send RFC 4733 events through the session clock; returns when the last end packet is sent."""
        if self.dtmf_pt is None:
            raise RuntimeError("no telephone-event payload type was negotiated")
        loop = asyncio.get_running_loop()
        futs = []
        for d in digits:
            encode_digit(d)  # validate before queueing anything
        for d in digits:
            fut: asyncio.Future[None] = loop.create_future()
            self._dtmf_tx.append((d, duration_ms, gap_ms, fut))
            futs.append(fut)
        await asyncio.gather(*futs)

    # ------------------------------------------------------------------ the clock
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
        try:
            self._inbound_tick(n)
            self._outbound_tick(n, batch)
            if n % RTCP_INTERVAL_TICKS == RTCP_INTERVAL_TICKS - 1:
                self._send_rtcp()
        except Exception:
            log.exception("rtp: tick failed")

    def _emit(self, direction: str, n: int, pcm: bytes) -> None:
        sinks = self._sinks[direction]
        if sinks:
            frame = Frame(direction, n, pcm)  # type: ignore[arg-type]
            for sink in sinks:
                try:
                    sink(frame)
                except Exception:
                    log.exception("rtp: %s sink failed", direction)

    def _outbound_tick(self, n: int, batch: EncodeBatch | None = None) -> None:
        ts = self._ts_base + n * FRAME_SAMPLES
        if self._dtmf_packets or (self._dtmf_tx and self._dtmf_gap <= 0):
            self._dtmf_tick(ts)
            self._emit("out", n, SILENCE_PCM)
            return
        if self._dtmf_gap > 0:
            self._dtmf_gap -= 1
        queue = self._queue
        pcm = queue.popleft() if queue else None
        # Producers wake at the half-full mark and refill in one go: one wake-up per ~0.5 s of
        # audio instead of one per frame. Checked every tick (not only when a frame was taken): a
        # waiter registered by the control thread just after our pop is still woken a tick later.
        if self._space_waiters and not self._space_wake_posted and len(queue) <= self.playout_frames // 2:
            self._space_wake_posted = True
            self._to_control(self._wake_space)
        if not queue and self._drain_waiters and not self._drain_wake_posted:
            self._drain_wake_posted = True
            self._to_control(self._wake_drain)
        if pcm is None:
            self._emit("out", n, SILENCE_PCM)
            self._send_audio(ts, self._silence_payload)
            return
        self._emit("out", n, pcm)
        if batch is not None:
            batch.add(self.payload_type, pcm, lambda payload: self._send_audio(ts, payload))
        else:
            self._send_audio(ts, self._codec.encode(pcm))

    def _send_audio(self, ts: int, payload: bytes) -> None:
        if self.ptime != 20:
            if not self._pending_out:
                self._pending_ts = ts
            self._pending_out.append(payload)
            if len(self._pending_out) * 20 < self.ptime:
                return
            payload = b"".join(self._pending_out)
            ts = self._pending_ts
            self._pending_out.clear()
        self._send(self.payload_type, ts, payload)

    def _dtmf_tick(self, ts: int) -> None:
        marker = False
        if not self._dtmf_packets:
            digit, duration, gap, fut = self._dtmf_tx.popleft()
            self._dtmf_packets = encode_digit(digit, duration)
            self._dtmf_ts = ts
            self._dtmf_gap = max(0, gap // 20)
            self._dtmf_done = fut
            self._pending_out.clear()
            marker = True
        ev = self._dtmf_packets.pop(0)
        assert self.dtmf_pt is not None
        self._send(self.dtmf_pt, self._dtmf_ts, ev.serialize(), marker)
        if not self._dtmf_packets:
            self.stats.dtmf_out += 1
            if self._dtmf_done is not None:
                self._wake_future(self._dtmf_done)
            self._dtmf_done = None

    def _send(self, pt: int, ts: int, payload: bytes, marker: bool = False) -> None:
        if self.remote is None or self._rtp_tr is None or (self.latch and not self._latched):
            return
        if self._first_packet:
            marker, self._first_packet = True, False
        self._seq = (self._seq + 1) & 0xFFFF
        self._rtp_tr.sendto(build_header(pt, self._seq, ts, self.ssrc, marker) + payload, self.remote)
        now = time.monotonic()
        if self._last_send_at:
            gap = (now - self._last_send_at) * 1000
            if gap > self.stats.max_gap_out_ms:
                self.stats.max_gap_out_ms = gap
        self._last_send_at = now
        self.stats.packets_out += 1
        self.stats.bytes_out += len(payload)
        self._last_sent_ts = ts

    def _inbound_tick(self, n: int) -> None:
        if self._dtmf_rx.active:
            for d in self._dtmf_rx.poll(time.monotonic()):
                self._deliver_dtmf(d)
        if not self._sinks["in"]:
            # Nobody listens: keep the jitter buffer moving at the media rate (by samples, so 40 ms
            # packets are consumed every other tick) but skip decoding and concealment.
            self._in_pcm.clear()
            self._last_in = SILENCE_PCM
            self._skip_owed += FRAME_SAMPLES
            while self._skip_owed > 0:
                status, item = self.jitter.pop()
                if status is Playout.EMPTY:
                    self._skip_owed = 0
                    break
                self._skip_owed -= len(item[1]) if item is not None and item[0] >= 0 else FRAME_SAMPLES
            return
        buf = self._in_pcm
        if not buf:  # fast path: one 20 ms packet -> one frame, no reassembly copies
            status, item = self.jitter.pop()
            if status is Playout.OK:
                assert item is not None
                pt, payload = item
                if pt >= 0 and len(payload) == FRAME_SAMPLES:
                    pcm = self._decoders[pt].decode(payload)
                    self._last_in = pcm
                    self._conceal_run = 0
                    self._had_audio = True
                    self._emit("in", n, pcm)
                    return
            self._absorb(status, item)
        while len(buf) < FRAME_BYTES:
            self._absorb(*self.jitter.pop())
        pcm = bytes(buf[:FRAME_BYTES])
        del buf[:FRAME_BYTES]
        self._emit("in", n, pcm)

    def _absorb(self, status: Playout, item: tuple[int, bytes] | None) -> None:
        """Append one playout slot's worth of PCM to the reassembly buffer."""
        buf = self._in_pcm
        if status is Playout.OK:
            assert item is not None
            pt, payload = item
            if pt < 0:  # a telephone-event slot
                buf += SILENCE_PCM
                return
            pcm = self._decoders[pt].decode(payload)
            if len(pcm) >= FRAME_BYTES:
                self._last_in = pcm[-FRAME_BYTES:]
            self._conceal_run = 0
            self._had_audio = True
            buf += pcm
        elif status is Playout.LOST or (self._had_audio and self._conceal_run < 2):
            buf += self._conceal()
        else:
            buf += SILENCE_PCM

    def _conceal(self) -> bytes:
        """Packet-loss concealment by repetition: last frame at -6 dB, then -12 dB, then silence."""
        self._conceal_run += 1
        self.stats.concealed_frames += 1
        if self._conceal_run > 2:
            return SILENCE_PCM
        x = np.frombuffer(self._last_in, dtype=np.int16) >> self._conceal_run
        return x.astype(np.int16).tobytes()

    # ------------------------------------------------------------------ receive path
    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        fast = parse_plain(data)
        if fast is not None:
            pt, _, seq, ts, ssrc, payload = fast
        else:
            try:
                pkt = RtpPacket.parse(data)
            except MediaParseError:
                self.stats.malformed_in += 1
                return
            pt, seq, ts, ssrc, payload = (
                pkt.payload_type, pkt.sequence_number, pkt.timestamp, pkt.ssrc, pkt.payload,
            )  # fmt: skip
        if self.latch and not self._latched and self.remote is not None:
            self.remote = addr
            self.remote_rtcp = (addr[0], addr[1] + 1)
            self._latched = True
        self.stats.packets_in += 1
        self.stats.bytes_in += len(payload)
        is_dtmf = pt == self.dtmf_pt and pt is not None
        if not is_dtmf and pt not in self._decoders:
            self.stats.unknown_pt_in += 1
            return
        now = time.monotonic()
        if is_dtmf:
            try:
                digits = self._dtmf_rx.feed(ts, payload, now)
            except MediaParseError:
                self.stats.malformed_in += 1
                return
            for d in digits:
                self._deliver_dtmf(d)
        if ssrc != self._remote_ssrc:
            if self._remote_ssrc is not None:  # new source (peer restarted or re-INVITE): start over
                self.jitter.reset()
                self._rx.reset()
            self._remote_ssrc = ssrc
        # Events share the audio sequence space: they take their slot in the buffer (played as
        # silence) so they are neither counted nor concealed as loss.
        self._rx.update(seq, ts, now, timing=not is_dtmf)
        if not self.jitter.push(seq, (-1, b"") if is_dtmf else (pt, payload)):
            self.stats.late_or_duplicate += 1

    def _deliver_dtmf(self, digit: DtmfDigit) -> None:
        self.stats.dtmf_in += 1
        self._to_control(self._dtmf_to_consumers, digit)

    def _dtmf_to_consumers(self, digit: DtmfDigit) -> None:
        if self.dtmf_queue.full():
            self.dtmf_queue.get_nowait()
        self.dtmf_queue.put_nowait(digit)
        for cb in self._dtmf_callbacks:
            try:
                cb(digit)
            except Exception:
                log.exception("rtp: dtmf callback failed")

    def _on_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packets = rtcp.parse_compound(data)
        except MediaParseError:
            self.stats.malformed_in += 1
            return
        self.stats.rtcp_in += 1
        for p in packets:
            if isinstance(p, rtcp.SenderReport):
                self._last_sr = (((p.ntp_sec & 0xFFFF) << 16) | (p.ntp_frac >> 16), time.monotonic())
            if isinstance(p, rtcp.SenderReport | rtcp.ReceiverReport):
                for block in p.reports:
                    if block.ssrc == self.ssrc:
                        self.stats.remote_reports += 1
                        self.stats.remote_fraction_lost = block.fraction_lost / 256
                        self.stats.remote_jitter_ms = block.jitter * 1000 / MEDIA_RATE
            elif isinstance(p, rtcp.Bye):
                self.remote_bye = True

    def _report_blocks(self) -> list[rtcp.ReportBlock]:
        if self._remote_ssrc is None:
            return []
        lsr, dlsr = 0, 0
        if self._last_sr is not None:
            lsr = self._last_sr[0]
            dlsr = int((time.monotonic() - self._last_sr[1]) * 65536)
        return [
            rtcp.ReportBlock(
                ssrc=self._remote_ssrc,
                fraction_lost=self._rx.interval_fraction_lost(),
                packets_lost=self.stats.lost,
                highest_sequence=self._rx.max_ext,
                jitter=self._rx.jitter_units,
                lsr=lsr,
                dlsr=dlsr,
            )
        ]

    def _rtcp_packets(self, bye: bool = False) -> bytes:
        packets: list[rtcp.RtcpPacket] = []
        if self.stats.packets_out:
            sec, frac = rtcp.ntp_now()
            packets.append(
                rtcp.SenderReport(
                    self.ssrc,
                    sec,
                    frac,
                    self._last_sent_ts,
                    self.stats.packets_out,
                    self.stats.bytes_out,
                    self._report_blocks(),
                )
            )
        else:
            packets.append(rtcp.ReceiverReport(self.ssrc, self._report_blocks()))
        packets.append(rtcp.SourceDescription([(self.ssrc, self.cname)]))
        if bye:
            packets.append(rtcp.Bye([self.ssrc]))
        return rtcp.serialize_compound(packets)

    def _send_rtcp(self, bye: bool = False) -> None:
        if self.remote_rtcp is None or self._rtcp_tr is None or (self.latch and not self._latched):
            return
        self._rtcp_tr.sendto(self._rtcp_packets(bye), self.remote_rtcp)
        self.stats.rtcp_out += 1

    # ------------------------------------------------------------------ teardown
    def _detach(self, bye: bool = False) -> None:
        """On the media thread: leave the clock (after an RTCP BYE) and close the sockets."""
        if bye and self._registered and self.remote is not None:
            with contextlib.suppress(Exception):
                self._send_rtcp(bye=True)
        self._closed = True
        if self._registered:
            self.engine.remove(self)
            self._registered = False
        for tr in (self._rtp_tr, self._rtcp_tr):
            if tr is not None:
                tr.close()

    async def _close_media(self) -> None:
        self._detach(bye=True)
        await asyncio.sleep(0)  # transports close their sockets on the next loop pass; then reuse is safe

    async def close(self) -> None:
        if self._closed:
            return
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the media thread is gone (interpreter exit)
                await self.engine.call(self._close_media())
        self._closed = True
        self._generation += 1
        self._wake(self._space_waiters)
        self._wake(self._drain_waiters)
        for _, _, _, fut in self._dtmf_tx:
            if not fut.done():
                fut.cancel()
        self._dtmf_tx.clear()
        if self._dtmf_done is not None and not self._dtmf_done.done():
            self._dtmf_done.cancel()
        for tap in list(self._taps):
            self.remove_tap(tap)
        if self.allocator is not None and self.local_port:
            self.allocator.release(self.local_port)

    async def __aenter__(self) -> RtpSession:
        if self._loop is None:
            await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
