"""Two RtpSessions talking over 127.0.0.1: audio fidelity, pacing, flush, DTMF, latching, robustness."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from media_helpers import collect, make_pair, pcm_of, peak_hz, rms, sine

from voipbin.media import MediaSession, PortAllocator
from voipbin.media.g711 import G711Codec
from voipbin.media.jitter import JitterBuffer
from voipbin.media.rtp import RtpPacket, build_header
from voipbin.media.rtpsock import SO_TIMESTAMPNS


def first_nonzero(x: np.ndarray) -> int:
    nz = np.flatnonzero(np.abs(x) > 16)
    assert nz.size, "no audio arrived"
    return int(nz[0])


@pytest.mark.parametrize(("pt_a", "pt_b"), [(0, 0), (8, 8), (0, 8)])
async def test_sine_from_a_arrives_exactly_at_b(pt_a: int, pt_b: int) -> None:
    a, b = await make_pair(pt_a, pt_b)
    try:
        tap = b.tap("in", maxsize=500)
        tone = sine(440, 1.0)
        assert await a.play_pcm(tone)
        frames = await collect(tap, 0.3)
        got = pcm_of(frames)
        start = first_nonzero(got)
        codec = G711Codec(pt_a)
        expected = np.frombuffer(codec.decode(codec.encode(tone)), np.int16)
        e0 = first_nonzero(expected)
        received = got[start : start + len(expected) - e0]
        assert np.array_equal(received, expected[e0:])  # bit-exact after G.711 quantisation
        assert (
            np.max(np.abs(received.astype(int) - tone[e0:])) <= 1024
        )  # and within G.711 tolerance of the source
        # correct duration: exactly one second of tone, then silence
        audible = np.flatnonzero(np.abs(got) > 16)
        assert abs((audible[-1] - audible[0] + 1) - 8000) <= 160
        assert a.stats.packets_out > 50 and b.stats.packets_in > 50
        assert b.stats.lost == 0 and b.stats.malformed_in == 0
    finally:
        await a.close()
        await b.close()


async def test_play_wav_of_any_rate_and_channels(pair, tmp_path: Path) -> None:
    a, b = pair
    path = tmp_path / "prompt.wav"
    tone = sine(1000, 0.5, rate=48000)
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(2)
        wf.setsampwidth(2)
        wf.setframerate(48000)
        wf.writeframes(np.column_stack((tone, tone)).astype("<i2").tobytes())
    tap = b.tap("in", maxsize=500)
    assert await a.play_wav(path)
    got = pcm_of(await collect(tap, 0.3))
    audible = np.flatnonzero(np.abs(got) > 200)
    assert abs((audible[-1] - audible[0] + 1) - 4000) <= 160  # 0.5 s at 8 kHz
    seg = got[audible[0] : audible[-1]]
    assert abs(peak_hz(seg) - 1000) < 20
    assert 0.6 * rms(tone) < rms(seg) < 1.4 * rms(tone)


async def test_flush_stops_audio_within_one_frame(pair) -> None:
    a, b = pair
    out_tap = a.tap("out", maxsize=1000)
    in_tap = b.tap("in", maxsize=1000)
    player = asyncio.create_task(a.play_pcm(sine(440, 3.0)))
    await asyncio.sleep(0.5)
    dropped = a.flush()
    assert dropped >= 10  # the 50-frame queue was refilled by the blocked producer
    flush_time = asyncio.get_running_loop().time()
    assert await player is False  # the producer learns it was barged in
    frames_out = await collect(out_tap, 0.5)
    await asyncio.sleep(0)
    # Outbound: the clock tick right after flush already sends silence.
    sent_after = [f for f in frames_out if f.tick * 0.02 + a.rtp._t0 > flush_time]
    assert sent_after and all(rms(np.frombuffer(f.pcm, np.int16)) == 0 for f in sent_after)
    # Inbound at B: only what was already on the wire or in the jitter buffer (2-3 frames) still plays.
    frames_in = await collect(in_tap, 0.01)
    loud = [f for f in frames_in if rms(np.frombuffer(f.pcm, np.int16)) > 100]
    assert loud
    last_loud_at = b.rtp._t0 + loud[-1].tick * 0.02  # the tick's scheduled time, not when it ran
    in_flight = b.rtp.jitter.target + 3  # buffered at B + on the wire + the reassembly slot
    assert last_loud_at <= flush_time + in_flight * 0.02
    assert frames_in[-1].tick - loud[-1].tick >= 15  # and silence after it
    assert a.queued_frames == 0


async def test_outbound_pacing_has_no_drift() -> None:
    """5 s of packets captured by a raw socket: continuous seq/ts, 20 ms spacing, bounded drift."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    # Each packet's kernel receive time, not when this loop got round to reading it: what is measured
    # is the sender's pacing, not the test's own scheduling on a loaded machine (it read a 160 ms
    # stall of this loop as drift). Linux may turn stamping on after the first datagrams: count from
    # the first stamped one, and every one after it must be stamped.
    rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    loop = asyncio.get_running_loop()
    arrivals: list[tuple[float, int, int]] = []
    unstamped_after = 0
    done = asyncio.Event()

    def on_readable() -> None:
        nonlocal unstamped_after
        while True:
            try:
                data, anc, _, _ = rx.recvmsg(2048, 256)
            except BlockingIOError:
                return
            stamps = [d for level, kind, d in anc if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS]
            if not stamps:
                unstamped_after += bool(arrivals)
                continue
            sec, nsec = struct.unpack_from("@qq", stamps[0])
            pkt = RtpPacket.parse(data)
            arrivals.append((sec + nsec * 1e-9, pkt.sequence_number, pkt.timestamp))
            if len(arrivals) >= 250:
                done.set()

    loop.add_reader(rx.fileno(), on_readable)
    a = await MediaSession.create(host="127.0.0.1")
    try:
        a.negotiate("127.0.0.1", rx.getsockname()[1], 0)
        a.start()
        feeder = asyncio.create_task(a.play_pcm(sine(300, 6.0)))
        await asyncio.wait_for(done.wait(), 15)
        feeder.cancel()
    finally:
        loop.remove_reader(rx.fileno())
        rx.close()
        await a.close()
    assert unstamped_after == 0
    t = np.array([x[0] for x in arrivals])
    seq = np.array([x[1] for x in arrivals])
    ts = np.array([x[2] for x in arrivals], dtype=np.int64)
    assert np.all(np.diff(seq) % 65536 == 1)
    dts = np.diff(ts) % (1 << 32)
    assert np.all(dts % 160 == 0)
    if a.stats.skipped_ticks == 0:
        assert np.all(dts == 160)
    # Deviation of each send from its ideal slot (t0 + ts/8000): jitter bounded, drift ~0.
    dev = (t - t[0]) - ((ts - ts[0]) % (1 << 32)) / 8000
    assert dev.max() - dev.min() < 0.08  # generous: the machine is shared
    assert abs(np.median(dev[-50:]) - np.median(dev[:50])) < 0.01
    gaps = np.diff(t)
    assert 0.0195 < gaps.mean() < 0.0205


async def test_enqueue_backpressure() -> None:
    a, b = await make_pair()
    a.rtp.playout_frames = 5
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await a.enqueue(sine(440, 0.5), final=True)  # 25 frames into a 5-frame queue
        elapsed = loop.time() - t0
        assert a.queued_frames <= 5
        assert elapsed > 0.3  # had to wait for ~20 frames to be played out
        await a.wait_played()
        assert a.queued_frames == 0
    finally:
        await a.close()
        await b.close()


async def test_dtmf_between_sessions_interleaved_with_audio(pair) -> None:
    a, b = pair
    got: list[str] = []
    b.on_dtmf(lambda d: got.append(d.digit))
    player = asyncio.create_task(a.play_pcm(sine(440, 2.0)))
    await a.send_dtmf("1234567890*#ABCD", duration_ms=60)
    digits = [(await asyncio.wait_for(b.next_dtmf(), 2)).digit for _ in range(16)]
    assert "".join(digits) == "1234567890*#ABCD"
    assert "".join(got) == "1234567890*#ABCD"
    assert await player
    assert b.stats.lost == 0 and a.stats.dtmf_out == 16 and b.stats.dtmf_in == 16


async def test_symmetric_rtp_latching() -> None:
    a = await MediaSession.create(host="127.0.0.1")
    b = await MediaSession.create(host="127.0.0.1")
    try:
        # B was told a wrong (e.g. private, pre-NAT) port; it learns A's real source from the first packet.
        b.negotiate("127.0.0.1", 9, 0, latch=True)
        a.negotiate("127.0.0.1", b.local_port, 0)
        tap = a.tap("in", maxsize=500)
        a.start()
        b.start()
        await asyncio.sleep(0.1)
        assert b.rtp.remote == ("127.0.0.1", a.local_port)
        assert await b.play_pcm(sine(500, 0.4))
        got = pcm_of(await collect(tap, 0.2))
        audible = np.flatnonzero(np.abs(got) > 100)
        assert abs(peak_hz(got[audible[0] : audible[-1]]) - 500) < 25
    finally:
        await a.close()
        await b.close()


async def test_ptime_40_packets_carry_two_frames() -> None:
    a = await MediaSession.create(host="127.0.0.1")
    b = await MediaSession.create(host="127.0.0.1", jitter=JitterBuffer(target=2, max_depth=50))
    try:
        a.negotiate("127.0.0.1", b.local_port, 0, ptime=40)
        b.negotiate("127.0.0.1", a.local_port, 0)
        a.start()
        b.start()
        tap = b.tap("in", maxsize=500)
        tone = sine(440, 0.6)
        assert await a.play_pcm(tone)
        got = pcm_of(await collect(tap, 0.3))
        assert b.stats.bytes_in / b.stats.packets_in == 320
        expected = np.frombuffer(G711Codec(0).decode(G711Codec(0).encode(tone)), np.int16)
        s, e = first_nonzero(got), first_nonzero(expected)
        assert np.array_equal(got[s : s + len(expected) - e], expected[e:])
    finally:
        await a.close()
        await b.close()
    with pytest.raises(ValueError):
        a.negotiate("127.0.0.1", 1, 0, ptime=30)


async def test_random_datagrams_do_not_break_a_session(pair) -> None:
    a, b = pair
    rng = random.Random(4733)
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(3000):
            kind = i % 4
            if kind == 0:
                data = os.urandom(rng.randrange(0, 300))
            elif kind == 1:  # plausible RTP header, garbage payload, random PT incl. 0 and 101
                pt = rng.choice([0, 8, 101, 13, 127])
                data = build_header(pt, rng.randrange(65536), rng.randrange(1 << 32), rng.randrange(1 << 32))
                data += os.urandom(rng.randrange(0, 200))
            elif kind == 2:  # RTCP-looking
                data = struct.pack(
                    "!BBH", 0x80 | rng.randrange(32), rng.randrange(192, 224), rng.randrange(40)
                )
                data += os.urandom(rng.randrange(0, 100))
            else:  # flipped bits in a real packet
                pkt = bytearray(build_header(0, i, i * 160, 1234) + bytes(160))
                pkt[rng.randrange(len(pkt))] ^= 1 << rng.randrange(8)
                data = bytes(pkt)
            junk.sendto(data, ("127.0.0.1", b.local_port + (1 if i % 7 == 0 else 0)))
            if i % 200 == 0:
                await asyncio.sleep(0.005)
    finally:
        junk.close()
    await asyncio.sleep(0.2)
    assert b.stats.malformed_in > 0 and b.rtp.running
    tap = b.tap("in", maxsize=500)
    tone = sine(440, 0.6)
    assert await a.play_pcm(tone)
    got = pcm_of(await collect(tap, 0.3))
    expected = np.frombuffer(G711Codec(0).decode(G711Codec(0).encode(tone)), np.int16)
    s, e = first_nonzero(got), first_nonzero(expected)
    assert np.array_equal(got[s : s + len(expected) - e], expected[e:])


async def test_rtcp_reports_are_exchanged() -> None:
    a, b = await make_pair()
    try:
        await asyncio.sleep(5.3)
        assert a.stats.rtcp_out >= 1 and b.stats.rtcp_in >= 1
        assert b.rtp._last_sr is not None  # A had sent packets, so it sent an SR
        assert a.stats.remote_reports >= 1 and b.stats.remote_reports >= 1
        assert a.stats.remote_fraction_lost == 0.0 and a.stats.remote_jitter_ms < 20
        await a.close()
        await asyncio.sleep(0.1)
        assert b.rtp.remote_bye
    finally:
        await a.close()
        await b.close()


async def test_allocator_ports_released_on_close() -> None:
    alloc = PortAllocator(35000, 35005)
    sessions = [await MediaSession.create(alloc, host="127.0.0.1") for _ in range(3)]
    assert sorted(s.local_port for s in sessions) == [35000, 35002, 35004]
    assert alloc.available == 0
    for s in sessions:
        await s.close()
    assert alloc.available == 3
    again = await MediaSession.create(alloc, host="127.0.0.1")
    await again.close()


async def test_streamed_chunks_of_odd_sizes_arrive_exactly(pair) -> None:
    """TTS-style streaming: chunks that do not align to 20 ms frames are reassembled without gaps."""
    a, b = pair
    tap = b.tap("in", maxsize=500)
    tone = sine(523, 0.8)
    sizes = [1, 77, 160, 161, 333, 7, 1000]
    chunks, pos, i = [], 0, 0
    while pos < len(tone):
        chunks.append(tone[pos : pos + sizes[i % len(sizes)]].tobytes())
        pos += sizes[i % len(sizes)]
        i += 1

    async def stream():
        for c in chunks:
            yield c
            await asyncio.sleep(0)

    assert await a.play_pcm(stream())
    got = pcm_of(await collect(tap, 0.3))
    expected = np.frombuffer(G711Codec(0).decode(G711Codec(0).encode(tone)), np.int16)
    s, e = first_nonzero(got), first_nonzero(expected)
    assert np.array_equal(got[s : s + len(expected) - e], expected[e:])


async def test_slow_tap_consumer_drops_oldest_and_never_blocks(pair) -> None:
    _, b = pair
    slow = b.tap("in", maxsize=5)
    fast = b.tap("in", maxsize=500)
    sent_before = b.stats.packets_out
    await asyncio.sleep(0.5)
    assert slow.qsize() == 5 and slow.dropped >= 15
    kept = [slow.get_nowait() for _ in range(5)]
    assert [f.tick for f in kept] == sorted(f.tick for f in kept)
    assert kept[-1].tick >= (await collect(fast, 0.01))[-1].tick - 1  # the newest frames were kept
    assert b.stats.packets_out - sent_before >= 20  # the clock kept running meanwhile
    b.untap(slow)
    assert slow.closed


async def test_inbound_is_not_decoded_without_listeners(pair) -> None:
    """With no tap the jitter buffer still drains (no overflow, no loss), decoding is skipped."""
    a, b = pair
    await a.play_pcm(sine(440, 0.5))
    assert b.rtp.jitter.overflow_dropped == 0 and b.stats.lost == 0
    assert len(b.rtp.jitter) <= b.rtp.jitter.max_depth


async def test_negotiate_validates_values() -> None:
    ms = await MediaSession.create(host="127.0.0.1")
    try:
        for bad in (
            dict(remote_addr="pbx.example.com", remote_port=4000),  # no DNS on the media path
            dict(remote_addr="127.0.0.1", remote_port=0),
            dict(remote_addr="127.0.0.1", remote_port=4000, payload_type=18),  # G.729 is not supported
            dict(remote_addr="127.0.0.1", remote_port=4000, ptime=30),
        ):
            with pytest.raises(ValueError):
                ms.negotiate(**bad)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            await ms.send_dtmf("1")  # no telephone-event negotiated
    finally:
        await ms.close()
