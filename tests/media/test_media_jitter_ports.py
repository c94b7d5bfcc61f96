"""Jitter buffer ordering/loss/wraparound and the RTP port allocator."""

from __future__ import annotations

import socket
import threading

import pytest

from voipbin.media.errors import PortsExhaustedError
from voipbin.media.jitter import JitterBuffer, Playout
from voipbin.media.ports import PortAllocator


def drain(jb: JitterBuffer[int], ticks: int) -> list[tuple[Playout, int | None]]:
    return [jb.pop() for _ in range(ticks)]


def test_prefill_then_in_order() -> None:
    jb: JitterBuffer[int] = JitterBuffer(target=3, adaptive=False)
    jb.push(10, 10)
    assert jb.pop() == (Playout.EMPTY, None)
    jb.push(11, 11)
    assert jb.pop() == (Playout.EMPTY, None)
    jb.push(12, 12)
    assert drain(jb, 3) == [(Playout.OK, 10), (Playout.OK, 11), (Playout.OK, 12)]


def test_reordered_duplicated_lost_and_late() -> None:
    jb: JitterBuffer[int] = JitterBuffer(target=2, max_depth=20, adaptive=False)
    for seq in [1, 3, 2, 2, 5, 6, 3]:
        jb.push(seq, seq)
    assert jb.duplicates == 2
    out = drain(jb, 6)
    assert out == [
        (Playout.OK, 1),
        (Playout.OK, 2),
        (Playout.OK, 3),
        (Playout.LOST, None),
        (Playout.OK, 5),
        (Playout.OK, 6),
    ]
    assert jb.lost == 1
    assert jb.push(4, 4) is False and jb.late == 1  # arrived after its slot was played


def test_sequence_wraparound() -> None:
    jb: JitterBuffer[int] = JitterBuffer(target=2, max_depth=20, adaptive=False)
    seqs = [65533, 65535, 65534, 0, 2, 1, 3]
    for s in seqs:
        assert jb.push(s, s)
    played = [v for st, v in drain(jb, 7) if st is Playout.OK]
    assert played == [65533, 65534, 65535, 0, 1, 2, 3]
    assert jb.push(65535, 65535) is False  # old packet from before the wrap is late, not new


def test_overflow_drops_oldest_to_bound_latency() -> None:
    jb: JitterBuffer[int] = JitterBuffer(target=2, max_depth=5, adaptive=False)
    for s in range(100, 110):
        jb.push(s, s)
    assert len(jb) <= 5 and jb.overflow_dropped >= 5
    first = jb.pop()
    assert first[0] is Playout.OK and first[1] is not None and first[1] >= 105


def test_underrun_rearms_prefill_and_adapts() -> None:
    jb: JitterBuffer[int] = JitterBuffer(target=1, min_depth=1, max_depth=8, calm_ticks=3)
    jb.push(1, 1)
    assert jb.pop() == (Playout.OK, 1)
    assert jb.pop() == (Playout.EMPTY, None)
    assert jb.target == 2 and jb.underruns == 1
    jb.push(2, 2)
    assert jb.pop() == (Playout.EMPTY, None)  # prefilling to the new target
    for s in range(3, 8):
        jb.push(s, s)
    assert [v for _, v in drain(jb, 6)] == [2, 3, 4, 5, 6, 7]
    assert jb.target == 1  # calm run lowered it again


def test_sender_restart_resyncs() -> None:
    jb: JitterBuffer[int] = JitterBuffer(target=1, adaptive=False)
    jb.push(100, 100)
    assert jb.pop() == (Playout.OK, 100)
    jb.push(40000, 40000)
    assert jb.pop() == (Playout.OK, 40000)


def test_port_allocator_pairs_and_release() -> None:
    alloc = PortAllocator(31001, 31010)  # odd start is rounded up
    ports = [alloc.allocate() for _ in range(4)]
    assert ports == [31002, 31004, 31006, 31008]
    with pytest.raises(PortsExhaustedError):
        alloc.allocate()
    alloc.release(31004)
    assert alloc.allocate() == 31004
    with pytest.raises(ValueError):
        PortAllocator(31001, 31001)


def test_port_allocator_threads() -> None:
    alloc = PortAllocator(32000, 33999)
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(100):
            p = alloc.allocate()
            with lock:
                got.append(p)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)) == 1000
    assert all(p % 2 == 0 for p in got)


def test_bind_pair_skips_ports_in_use() -> None:
    alloc = PortAllocator(34000, 34009)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 34001))  # RTCP port of the first pair is taken
    try:
        port, rtp, rtcp = alloc.bind_pair("127.0.0.1")
        assert port == 34002
        assert rtcp.getsockname()[1] == 34003
        rtp.close()
        rtcp.close()
    finally:
        blocker.close()
