"""What shortens the platform's added latency: posts to the control loop coalesced (not held for the
tick), sockets read with the kernel's arrival time, and inbound taps switched to reads at arrival;
and a reply that starts on the clock, with no hole in the outbound timeline."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest
from media_helpers import make_pair

from voipbin.media.engine import MediaEngine
from voipbin.media.rtp import build_header
from voipbin.media.rtpsock import SO_TIMESTAMPNS, RtpSockets
from voipbin.media.session import RtpSession
from voipbin.media.stats import RtpStats

FRAME = bytes(range(160)) * 2  # 320 bytes, not silence


@pytest.fixture
def engine():
    eng = MediaEngine("test-latency")
    yield eng
    eng.close()


def _ts(datagram: bytes) -> int:
    return struct.unpack_from("!I", datagram, 4)[0]


def _seq(datagram: bytes) -> int:
    return struct.unpack_from("!H", datagram, 2)[0]


async def _until(cond) -> None:
    async with asyncio.timeout(5):
        while not cond():  # noqa: ASYNC110  (state set on the media thread has no event)
            await asyncio.sleep(0.001)


def _sending_session(engine) -> tuple[RtpSession, list[bytes]]:
    """A started session on the test's loop whose datagrams are captured instead of sent."""
    s = RtpSession(engine=engine)
    sent: list[bytes] = []
    s.stream.send = sent.append
    s.stream.sending = True
    s._registered = True
    s._loop = asyncio.get_running_loop()
    return s, sent


async def test_a_reply_starts_at_the_next_tick_with_no_hole_in_the_timeline(engine) -> None:
    """Not between ticks: the peer plays a continuous stream by timestamp, so an early first frame
    is not heard sooner, and the packet after it would come up to 40 ms later."""
    s, sent = _sending_session(engine)
    for n in range(3):
        s.clock_tick(n, False, 0)  # silence while idle
    assert await s.enqueue(FRAME * 2)  # a reply starts into the idle session
    await asyncio.sleep(0.05)
    assert len(sent) == 3  # nothing left between ticks
    for n in range(3, 6):
        s.clock_tick(n, False, 0)
    base = _ts(sent[0])
    assert [_ts(d) - base for d in sent] == [n * 160 for n in range(6)]
    assert [(_seq(d) - _seq(sent[0])) & 0xFFFF for d in sent] == list(range(6))
    silent = {sent[0][12:]}
    assert [d[12:] in silent for d in sent] == [True, True, True, False, False, True]


class _FakeLoop:
    def __init__(self) -> None:
        self.scheduled: list = []

    def is_closed(self) -> bool:
        return False

    def call_soon_threadsafe(self, fn, *args) -> None:
        self.scheduled.append((fn, args))


def test_posts_coalesce_to_one_pending_wake_up_per_loop(engine) -> None:
    loop = _FakeLoop()
    got: list[int] = []
    for i in range(5):  # outside a tick (a packet read at arrival): sent at once, then coalesced
        engine.post(loop, got.append, i)  # type: ignore[arg-type]
    assert len(loop.scheduled) == 1 and got == []
    fn, args = loop.scheduled.pop()
    fn(*args)
    assert got == [0, 1, 2, 3, 4]
    engine.post(loop, got.append, 5)  # type: ignore[arg-type]
    assert len(loop.scheduled) == 1  # the previous one ran: a new wake-up
    loop.scheduled.pop()[0]()
    engine._in_tick = True  # during a tick: one wake-up when it ends
    engine.post(loop, got.append, 6)  # type: ignore[arg-type]
    engine.post(loop, got.append, 7)  # type: ignore[arg-type]
    assert loop.scheduled == []
    engine._in_tick = False
    engine._flush_posts()
    assert len(loop.scheduled) == 1
    loop.scheduled.pop()[0]()
    assert got == [0, 1, 2, 3, 4, 5, 6, 7]


class _Receiver:
    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine
        self._rx_now = 0.0
        self.stats = RtpStats()
        self.seen: list[float] = []

    def _on_rtp(self, data: bytes, addr) -> None:
        self.seen.append(self._rx_now)

    def _on_rtcp(self, data: bytes, addr) -> None:
        raise AssertionError("RTP expected")


def test_a_packet_read_later_keeps_its_kernel_arrival_time(engine) -> None:
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for sock in (rtp, rtcp):
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
        rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        r = _Receiver(engine)
        socks = RtpSockets(r, rtp, rtcp)  # type: ignore[arg-type]
        # Linux turns receive timestamping on through deferred work (net_enable_timestamp): until it
        # runs, the kernel stamps a datagram when it is read. Wait (bounded) for stamping to be on;
        # if it never is, the strict check below fails.
        for _ in range(50):
            warm_sent = time.monotonic()
            tx.sendto(build_header(0, 1, 160, 5) + bytes(160), rtp.getsockname())
            time.sleep(0.02)
            assert socks._read_rtp(time.time() - time.monotonic())
            if r.seen.pop() - warm_sent < 0.01:
                break
        sent_at = time.monotonic()
        tx.sendto(build_header(0, 1, 160, 5) + bytes(160), rtp.getsockname())
        time.sleep(0.05)
        read_at = time.monotonic()
        assert socks._read_rtp(time.time() - time.monotonic())
        assert not socks._read_rtp(time.time() - time.monotonic())  # drained
        assert len(r.seen) == 1
        assert r.seen[0] - sent_at < 0.02 and read_at - r.seen[0] > 0.03
    finally:
        for sock in (rtp, rtcp, tx):
            sock.close()


async def test_an_inbound_tap_switches_its_session_to_reads_at_arrival() -> None:
    a, b = await make_pair()
    try:
        socks = b.rtp._socks
        assert socks is not None and not socks.arrival_reads
        rec_tap = b.tap("both")  # a recording's tap stays paced: no switch
        await asyncio.sleep(0.05)
        assert not socks.arrival_reads and b.rtp.stream.release is None
        tap = b.tap("in")
        await _until(lambda: socks.arrival_reads and b.rtp.stream.release is not None)
        assert await a.play_pcm(FRAME * 10)
        frames = await tap.get_batch(10)
        assert b"".join(f.pcm for f in frames).count(b"\x00" * 320) < len(frames)  # audio came
        ticks = [f.tick for f in frames]
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
        b.untap(tap)
        await _until(lambda: not socks.arrival_reads and b.rtp.stream.release is None)
        b.untap(rec_tap)
    finally:
        await a.close()
        await b.close()
