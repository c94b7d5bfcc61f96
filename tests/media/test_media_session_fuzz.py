"""Hypothesis drives a real RtpSession's receive path and clock with arbitrary datagrams.

The socket-level catch-all in the datagram protocol would hide bugs, so the handlers are called
directly: nothing may raise, and the session must keep producing frames and packets.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voipbin.media.rtp import build_header
from voipbin.media.session import RtpSession

ADDR = ("127.0.0.1", 40000)


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[RtpSession, list]]:
    loop = asyncio.new_event_loop()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    s = RtpSession(host="127.0.0.1")
    loop.run_until_complete(s.open())
    s.set_remote("127.0.0.1", sink.getsockname()[1], 0, dtmf_pt=101)
    frames: list = []
    s.add_sink("in", frames.append)
    yield s, frames
    loop.run_until_complete(s.close())
    loop.close()
    sink.close()


rtp_like = st.builds(
    lambda pt, seq, ts, ssrc, marker, payload: build_header(pt, seq, ts, ssrc, marker) + payload,
    st.sampled_from([0, 8, 101, 13, 96, 127]),
    st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0, 1, 2, 65534, 65535])),
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from([1, 2, 0xFFFFFFFF]),
    st.booleans(),
    st.one_of(st.binary(max_size=400), st.binary(min_size=4, max_size=4), st.just(b"\xff" * 160)),
)
rtcp_like = st.builds(
    lambda pt, count, body: struct.pack("!BBH", 0x80 | count, pt, len(body) // 4) + body,
    st.integers(192, 223),
    st.integers(0, 31),
    st.binary(max_size=120).map(lambda b: b[: len(b) // 4 * 4]),
)
datagram = st.one_of(st.binary(max_size=300), rtp_like, rtcp_like)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(datagram, max_size=30))
def test_any_datagrams_keep_the_session_working(session, datagrams: list[bytes]) -> None:
    s, frames = session
    for data in datagrams:
        s._on_rtp(data, ADDR)  # must never raise
        s._on_rtcp(data, ADDR)
    before_frames, before_out = len(frames), s.stats.packets_out
    for _ in range(3):
        s._n += 1
        s._inbound_tick(s._n)
        s._outbound_tick(s._n)
    assert len(frames) == before_frames + 3
    assert all(len(f.pcm) == 320 for f in frames[-3:])
    assert s.stats.packets_out == before_out + 3
    assert len(s.jitter) <= s.jitter.max_depth
    del frames[:]
