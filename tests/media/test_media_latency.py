"""What shortens the platform's added latency: the first frame of a reply sent at once, posts to the
control loop coalesced (not held for the tick), sockets read with the kernel's arrival time, and
inbound taps switched to reads at arrival."""

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


async def test_the_first_frame_of_a_reply_leaves_before_the_next_tick(engine) -> None:
    s, sent = _sending_session(engine)
    for n in range(3):  # idle: silence in slots 0-2
        s.clock_tick(n, False, 0)
    assert len(sent) == 3
    assert await s.enqueue(FRAME * 3)  # the queue was empty: a reply starts
    await _until(lambda: len(sent) == 4)  # sent from the media thread, no tick ran
    base = _ts(sent[0])
    assert _ts(sent[3]) == base + 3 * 160  # it carries slot 3's timestamp...
    assert _seq(sent[3]) == (_seq(sent[2]) + 1) & 0xFFFF
    s.clock_tick(3, False, 0)
    assert len(sent) == 4  # ...so slot 3's tick sends nothing: the timeline stays continuous
    s.clock_tick(4, False, 0)
    s.clock_tick(5, False, 0)
    assert [_ts(d) - base for d in sent[4:]] == [4 * 160, 5 * 160]
    assert s.queued_frames == 0


async def test_no_early_send_while_a_reply_is_already_playing(engine) -> None:
    s, sent = _sending_session(engine)
    s.playout.frames.append(FRAME)
    s.clock_tick(0, False, 0)  # plays the queued frame: not idle
    s._send_first_now()  # (as if a producer's wake-up arrived now)
    s.clock_tick(1, False, 0)  # queue empty: silence, idle again
    assert len(sent) == 2
    s.send_first_now = False  # the switch the latency bench flips
    assert await s.enqueue(FRAME)
    await asyncio.sleep(0.05)
    assert len(sent) == 2  # waits for the tick
    s.clock_tick(2, False, 0)
    assert len(sent) == 3


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


def test_no_frame_goes_out_between_ticks_while_a_digit_plays_or_with_long_packets() -> None:
    from voipbin.media.stream import RtpStream

    s = RtpStream(send=lambda d: None)
    assert s.can_send_now
    s.queue_dtmf("5")
    assert not s.can_send_now  # the digit owns the next slots
    s.drop_dtmf()
    assert s.can_send_now
    s.configure(0, None, 40)
    assert not s.can_send_now  # 40 ms packets are assembled by the tick
    s.configure(0, None, 20)
    s.sending = False
    assert not s.can_send_now
