"""Inbound audio for listeners (AI, STT) in arrival order: InOrderRelease and the stream's release path,
without sockets or clocks (times are passed in)."""

from __future__ import annotations

import random

import numpy as np

from voipbin.media.g711 import PT_PCMU, G711Codec
from voipbin.media.release import InOrderRelease
from voipbin.media.rtp import build_header
from voipbin.media.stream import RtpStream

F = 0.020


def test_in_order_packets_are_released_at_once() -> None:
    r: InOrderRelease[str] = InOrderRelease(window=0.06)
    assert r.push(100, "a", 0.0) == ["a"]
    assert r.push(101, "b", 0.02) == ["b"]
    assert r.push(102, "c", 0.04) == ["c"]
    assert len(r) == 0 and r.released == 3


def test_reordered_packets_wait_for_the_hole_then_go_together() -> None:
    r: InOrderRelease[str] = InOrderRelease(window=0.06)
    assert r.push(1, "a", 0.0) == ["a"]
    assert r.push(3, "c", 0.04) == []  # 2 is missing: 3 waits
    assert r.push(4, "d", 0.06) == []
    assert r.poll(0.07) == []  # the hole is 30 ms old: still waiting
    assert r.push(2, "b", 0.09) == ["b", "c", "d"]  # 50 ms late: no hole, all in order
    assert r.concealed == 0 and r.late == 0


def test_a_lost_packet_is_concealed_after_the_window_and_its_late_copy_dropped() -> None:
    r: InOrderRelease[str] = InOrderRelease(window=0.06)
    r.push(1, "a", 0.0)
    assert r.push(3, "c", 0.04) == []
    assert r.poll(0.08) == []  # 40 ms
    assert r.poll(0.10) == [None, "c"]  # 60 ms: the slot is given up (None = conceal), 3 follows
    assert r.concealed == 1
    assert r.push(2, "b", 0.11) == []  # too late now: dropped, never released out of order
    assert r.late == 1
    assert r.push(4, "d", 0.12) == ["d"]


def test_duplicates_are_dropped() -> None:
    r: InOrderRelease[str] = InOrderRelease()
    r.push(7, "a", 0.0)
    assert r.push(7, "a", 0.001) == []  # already released
    r.push(9, "c", 0.04)
    assert r.push(9, "c", 0.041) == []  # already held
    assert r.late == 1 and r.duplicates == 1


def test_sequence_wrap() -> None:
    r: InOrderRelease[int] = InOrderRelease()
    out = [x for seq in (65534, 65535, 0, 1) for x in r.push(seq, seq, 0.0)]
    assert out == [65534, 65535, 0, 1]


def test_filler_when_nothing_arrives_does_not_consume_sequence_numbers() -> None:
    r: InOrderRelease[str] = InOrderRelease(window=0.06, fill_after=0.2)
    r.start(0.0)
    assert r.fill(0.1) == 0  # a mere delay inserts nothing
    assert r.fill(0.21) == 1
    assert r.fill(0.25) == 2  # then one per 20 ms
    r.push(10, "a", 0.26)
    assert r.fill(0.3) == 0
    assert r.push(11, "b", 0.5) == ["b"]  # the peer resumed: its next packet is not "late"
    assert r.late == 0


def test_a_long_hole_is_concealed_in_bounded_slots() -> None:
    r: InOrderRelease[str] = InOrderRelease(window=0.06)
    r.push(0, "a", 0.0)
    r.push(500, "z", 0.1)  # 499 missing
    out = r.poll(0.2)
    assert out[-1] == "z" and all(x is None for x in out[:-1]) and len(out) <= 51


def _stream() -> RtpStream:
    s = RtpStream(send=lambda d: None, ssrc=1)
    s.configure(PT_PCMU)
    s.enable_release(True, 0.0)
    return s


def _packets(n: int) -> tuple[list[bytes], np.ndarray]:
    rng = np.random.default_rng(1)
    pcm = (rng.standard_normal(160 * n) * 3000).astype(np.int16)
    payload = G711Codec(PT_PCMU).encode(pcm)
    pkts = [build_header(PT_PCMU, i, i * 160, 42) + payload[i * 160 : (i + 1) * 160] for i in range(n)]
    decoded = np.frombuffer(G711Codec(PT_PCMU).decode(payload), np.int16)
    return pkts, decoded


def test_stream_with_60ms_of_jitter_releases_every_frame_exactly() -> None:
    """Packets sent every 20 ms, each delayed 0-60 ms at random (so they also reorder): the listener
    gets all of them, in order, bit-exact, nothing concealed."""
    s = _stream()
    pkts, decoded = _packets(200)
    rng = random.Random(5)
    arrivals = sorted((i * F + rng.uniform(0, 0.060), i) for i in range(len(pkts)))
    frames: list[bytes] = []
    tick = 0
    for at, i in arrivals:
        while tick * F <= at:
            s.poll_release(tick * F)
            tick += 1
        s.receive(pkts[i], at)
        frames += s.released
        s.released = []
    assert s.release is not None and s.release.concealed == 0
    assert np.array_equal(np.frombuffer(b"".join(frames), np.int16), decoded)


def test_stream_conceals_a_lost_packet_after_the_window() -> None:
    s = _stream()
    pkts, decoded = _packets(6)
    for i in (0, 1, 3, 4):  # 2 is lost
        s.receive(pkts[i], i * F)
    assert len(s.released) == 2  # 3 and 4 wait behind the hole
    s.poll_release(3 * F + 0.059)
    assert len(s.released) == 2
    s.poll_release(3 * F + 0.060)
    frames = [np.frombuffer(f, np.int16) for f in s.released]
    assert len(frames) == 5
    assert np.array_equal(frames[2], frames[1] >> 1)  # the last frame at -6 dB
    assert np.array_equal(frames[3], decoded[3 * 160 : 4 * 160])
    assert s.stats.concealed_frames == 1  # nobody listens to the paced path: counted here
    s.released = []
    s.receive(pkts[2], 5 * F)  # the lost packet, far too late: dropped
    assert s.released == []


def test_30ms_packets_are_cut_into_20ms_frames() -> None:
    s = _stream()
    payload = bytes([0x80 + i % 64 for i in range(240)])
    for i in range(4):
        s.receive(build_header(PT_PCMU, i, i * 240, 9) + payload, i * 0.03)
    assert [len(f) for f in s.released] == [320] * 6  # 4 x 30 ms = 6 x 20 ms
    joined = b"".join(s.released)
    assert joined == G711Codec(PT_PCMU).decode(payload) * 4
