"""The sans-I/O parts, without sockets or clocks: RtpStream (datagrams and stats), the inbound
jitter buffer with loss concealment as the stream uses it, and the PlayoutQueue's waiters."""

from __future__ import annotations

import asyncio
import itertools
import random

import numpy as np
from media_helpers import sine

from voipbin.media.g711 import PT_PCMA, PT_PCMU, EncodeBatch, G711Codec, alaw_encode
from voipbin.media.playout import PlayoutQueue
from voipbin.media.rtp import RtpPacket, build_header
from voipbin.media.stream import RtpStream

FRAME = 0.02


def frames_of(pcm: np.ndarray) -> list[bytes]:
    raw = pcm.astype("<i2").tobytes()
    return [raw[i : i + 320] for i in range(0, len(raw) - 319, 320)]


def rtp(seq: int, ts: int, payload: bytes, pt: int = PT_PCMA, ssrc: int = 0x1234) -> bytes:
    return build_header(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, False) + payload


def test_slots_become_packets_with_contiguous_seq_and_timestamps() -> None:
    out: list[bytes] = []
    s = RtpStream(send=out.append, ssrc=0xCAFE)
    s.configure(PT_PCMA)
    frames = frames_of(sine(440, 0.1))
    for n, pcm in enumerate(frames):
        assert s.frame_out(n, pcm, n * FRAME) == pcm
    s.frame_out(len(frames), None, len(frames) * FRAME)  # nothing queued: silence, same timeline
    s.frame_out(len(frames) + 3, None, (len(frames) + 3) * FRAME)  # 2 slots skipped after a stall
    pkts = [RtpPacket.parse(d) for d in out]
    assert [p.payload_type for p in pkts] == [PT_PCMA] * len(pkts)
    assert [(p.sequence_number - pkts[0].sequence_number) % 65536 for p in pkts] == list(range(len(pkts)))
    steps = [(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(pkts)]
    assert steps == [160] * len(frames) + [480]  # skipped slots keep the RTP timeline
    assert pkts[0].marker and not any(p.marker for p in pkts[1:])
    assert [p.payload for p in pkts[: len(frames)]] == [alaw_encode(f) for f in frames]
    assert pkts[len(frames)].payload == bytes([0xD5]) * 160  # A-law silence
    assert s.stats.packets_out == len(pkts) and s.stats.bytes_out == 160 * len(pkts)
    assert 59 < s.stats.max_gap_out_ms < 61  # the 3-slot jump, measured from the times given


def test_batched_encoding_matches_per_frame_and_ptime_40_packs_two_frames() -> None:
    out_a: list[bytes] = []
    out_b: list[bytes] = []
    a = RtpStream(send=out_a.append)
    b = RtpStream(send=out_b.append)
    a.configure(PT_PCMU)
    b.configure(PT_PCMA, ptime=40)
    frames = frames_of(sine(700, 0.08))
    for n, pcm in enumerate(frames):
        batch = EncodeBatch()
        a.frame_out(n, pcm, n * FRAME, batch)
        b.frame_out(n, pcm, n * FRAME, batch)
        assert len(batch) == 2
        batch.run()
    assert [RtpPacket.parse(d).payload for d in out_a] == [G711Codec(PT_PCMU).encode(f) for f in frames]
    assert len(out_b) == 2 and all(len(RtpPacket.parse(d).payload) == 320 for d in out_b)


def test_not_sending_until_the_shell_allows_it() -> None:
    out: list[bytes] = []
    s = RtpStream(send=out.append)
    s.sending = False  # e.g. symmetric RTP waiting for the peer's first packet
    s.frame_out(0, None, 0.0)
    assert out == [] and s.stats.packets_out == 0


def test_received_datagrams_become_frames_and_stats() -> None:
    s = RtpStream(send=lambda d: None)
    s.configure(PT_PCMA)
    frames = frames_of(sine(500, 0.4))
    got = []
    for i, pcm in enumerate(frames):  # one packet per slot, in order
        assert s.receive(rtp(100 + i, 8000 + 160 * i, alaw_encode(pcm)), i * FRAME) == []
        got.append(s.frame_in(i, i * FRAME + 0.001)[0])
    s.receive(b"\x80", 1.0)  # malformed
    s.receive(rtp(999, 0, b"x" * 160, pt=96), 1.0)  # a payload type we never negotiated
    ref = [G711Codec(PT_PCMA).decode(alaw_encode(f)) for f in frames]
    assert got[:3] == [bytes(320)] * 3  # prefill: silence until 4 packets (80 ms) are buffered
    assert got[3:] == ref[: len(ref) - 3]
    st = s.stats
    assert (st.packets_in, st.malformed_in, st.unknown_pt_in, st.lost, st.concealed_frames) == (
        len(frames) + 1, 1, 1, 0, 0,
    )  # fmt: skip
    assert st.jitter_ms < 1 and 19 < st.max_gap_ms < 21


def test_jitter_up_to_60ms_and_reordering_play_without_holes() -> None:
    """Packets sent every 20 ms arrive 0-60 ms late, so often out of order: after the buffer's
    prefill every slot plays the right frame, nothing concealed, nothing late."""
    rng = random.Random(7)
    s = RtpStream(send=lambda d: None)
    s.configure(PT_PCMA)
    frames = frames_of(sine(350, 4.0))
    arrivals = sorted((i * FRAME + rng.uniform(0, 0.060), i) for i in range(len(frames)))
    assert any(b[1] < a[1] for a, b in itertools.pairwise(arrivals))  # really reordered
    ref = [G711Codec(PT_PCMA).decode(alaw_encode(f)) for f in frames]
    out: list[bytes] = []
    k = 0
    first = -1
    start = 0.001  # the clock's slots, just after the first packet could arrive
    for n in range(len(frames) + 20):
        now = start + n * FRAME
        while k < len(arrivals) and arrivals[k][0] <= now:
            t, i = arrivals[k]
            s.receive(rtp(i, 160 * i, alaw_encode(frames[i])), t)
            k += 1
        pcm, _ = s.frame_in(n, now)
        assert pcm is not None
        out.append(pcm)
        if first < 0 and pcm == ref[0]:
            first = n
        if first >= 0 and n - first + 1 == len(ref):
            break  # the last frame has played (what follows is the end of the stream)
    assert out[first : first + len(ref)] == ref  # every frame, in order, no gap
    assert first * 20 <= 100  # the price: ~80 ms of buffering
    assert s.stats.concealed_frames == 0 and s.stats.late_or_duplicate == 0 and s.jitter.underruns == 0
    assert 10 < s.stats.jitter_ms < 40


def test_lost_packet_is_concealed_by_attenuated_repeat() -> None:
    s = RtpStream(send=lambda d: None)
    s.configure(PT_PCMU)
    codec = G711Codec(PT_PCMU)
    frames = frames_of(sine(400, 0.3, amp=12000))
    lost = 6
    out = []
    for i, pcm in enumerate(frames):
        if i != lost:
            s.receive(rtp(i, 160 * i, codec.encode(pcm), pt=PT_PCMU), i * FRAME)
        out.append(s.frame_in(i, i * FRAME + 0.001)[0])
    assert s.stats.lost == 1 and s.stats.concealed_frames == 1
    delay = 3  # slots of prefill before frame 0 plays
    before = np.frombuffer(codec.decode(codec.encode(frames[lost - 1])), dtype=np.int16)
    concealed = np.frombuffer(out[lost + delay], dtype=np.int16)  # type: ignore[arg-type]
    assert np.array_equal(concealed, before >> 1)  # the previous frame at -6 dB, not a hole
    assert out[lost + 1 + delay] == codec.decode(codec.encode(frames[lost + 1]))


def test_dtmf_events_are_digits_not_loss() -> None:
    from voipbin.media.dtmf import encode_digit

    s = RtpStream(send=lambda d: None)
    s.configure(PT_PCMU, dtmf_pt=101)
    events = encode_digit("7", 100)
    digits = []
    for i, ev in enumerate(events):
        digits += s.receive(rtp(50 + i, 1000, ev.serialize(), pt=101), i * FRAME)
    assert [d.digit for d in digits] == ["7"] and s.stats.dtmf_in == 1 and s.stats.lost == 0


def test_queued_dtmf_replaces_audio_and_reports_the_token() -> None:
    out: list[bytes] = []
    done: list[object] = []
    s = RtpStream(send=out.append, on_dtmf_sent=done.append)
    s.configure(PT_PCMU, dtmf_pt=101)
    s.queue_dtmf("5", 60, 0, token="five")
    for n in range(6):
        s.frame_out(n, None, n * FRAME)
    pts = [RtpPacket.parse(d).payload_type for d in out]
    assert pts[0] == 101 and 0 in pts and done == ["five"] and s.stats.dtmf_out == 1


def test_rtcp_report_and_bye_round_trip() -> None:
    a_out: list[bytes] = []
    a = RtpStream(send=a_out.append)
    b = RtpStream(send=lambda d: None)
    for n in range(5):
        a.frame_out(n, None, n * FRAME)
    for d in a_out:
        b.receive(d, 0.1)
    b.receive_rtcp(a.rtcp_report(0.2), 0.2)
    assert b.last_sr is not None and b.stats.rtcp_in == 1
    a.receive_rtcp(b.rtcp_report(0.3, bye=True), 0.3)
    assert a.remote_bye and a.stats.remote_reports == 1 and a.stats.remote_fraction_lost == 0


# ---------------------------------------------------------------------------- the playout queue
async def test_playout_queue_backpressure_wakes_at_half_and_flush_releases_producers() -> None:
    posted: list = []
    q = PlayoutQueue(max_frames=4, notify=posted.append)  # the clock's wake-ups, run by hand
    producer = asyncio.create_task(q.enqueue(bytes(320 * 8)))
    await asyncio.sleep(0)
    assert len(q) == 4 and not producer.done()  # full: waiting for space
    assert q.pop() is not None and posted == []  # 3 left: above half, nobody woken yet
    assert q.pop() is not None and len(posted) == 1  # at half: one wake-up, posted once
    assert q.pop() is not None and len(posted) == 1
    posted.pop()()
    await asyncio.sleep(0)
    assert len(q) == 4  # refilled in one go
    assert q.flush() == 4
    assert await producer is False  # a flushed producer stops feeding


async def test_playout_queue_wait_played_is_woken_by_the_clock_even_if_late() -> None:
    posted: list = []
    q = PlayoutQueue(max_frames=10, notify=posted.append)
    await q.enqueue(bytes(320))
    waiter = asyncio.create_task(q.wait_played())
    await asyncio.sleep(0)  # registered while a frame is queued
    assert q.pop() is not None and len(posted) == 1  # emptied: the waiter's wake-up is posted once
    assert q.pop() is None and len(posted) == 1  # not again while that wake-up is on its way
    posted.pop()()
    await asyncio.wait_for(waiter, 1)
    late = asyncio.create_task(q.wait_played())
    await asyncio.sleep(0)
    assert late.done()  # nothing queued: returns at once
    q.push_frame(bytes(320), max_queue=2)
    q.push_frame(bytes(320), max_queue=2)
    q.push_frame(b"\x01" * 320, max_queue=2)
    assert len(q) == 2 and q.frames[-1] == b"\x01" * 320  # bridging: drop-oldest bound


def _speech_like(seconds: float) -> list[bytes]:
    """Tone bursts of 0.6 s with 0.4 s pauses: the pauses are where a settled buffer may trim."""
    frames = frames_of(sine(440, seconds, amp=8000))
    return [f if (i % 50) < 30 else bytes(320) for i, f in enumerate(frames)]


def _play(s: RtpStream, frames: list[bytes], delays: list[float]) -> tuple[list[int], list[bytes]]:
    """Send frame i at i*20 ms + delays[i]; tick every 20 ms. Returns per tick how many packets were
    buffered before the pop (the listener's lag, in packets) and what played."""
    arrivals = sorted((i * FRAME + delays[i], i) for i in range(len(frames)))
    depth: list[int] = []
    out: list[bytes] = []
    k = 0
    for n in range(len(frames)):
        now = 0.001 + n * FRAME
        while k < len(arrivals) and arrivals[k][0] <= now:
            t, i = arrivals[k]
            s.receive(rtp(i, 160 * i, alaw_encode(frames[i])), t)
            k += 1
        depth.append(len(s.jitter))
        pcm, _ = s.frame_in(n, now)
        assert pcm is not None
        out.append(pcm)
    return depth, out


def test_a_clean_link_settles_to_40ms_of_buffering_trimming_only_in_pauses() -> None:
    """The prefill's 80 ms is for a link we know nothing of; a clean one (jitter under 2 ms) is
    measured and the buffer trims down to two packets, dropping frames only where the audio is quiet."""
    rng = random.Random(3)
    s = RtpStream(send=lambda d: None)
    s.configure(PT_PCMA)
    frames = _speech_like(10.0)
    depth, out = _play(s, frames, [rng.uniform(0, 0.002) for _ in frames])
    assert max(depth[:20]) >= 3  # the prefill
    # Settled: at a tick at most 3 packets wait, so the one played arrived <= 40 ms (+ phase) ago.
    assert max(depth[-100:]) <= 3
    assert s.jitter.trimmed >= 2 and s.stats.concealed_frames == 0 and s.jitter.underruns == 0
    codec = G711Codec(PT_PCMA)
    decoded = [codec.decode(alaw_encode(f)) for f in frames]
    tones = [d for d, f in zip(decoded, frames, strict=True) if any(f)]
    assert all(p in {*decoded, bytes(320)} for p in out)  # what was sent, or the prefill's silence
    played = [p for p in out if p in set(tones)]
    # What was trimmed was pauses: every tone frame plays, in order (but the last ones still queued).
    assert played == tones[: len(played)] and len(played) >= len(tones) - 3


def test_sixty_ms_of_jitter_keeps_its_depth_over_a_long_call() -> None:
    """With 0-60 ms of jitter all along, the measured spread holds the depth at 80 ms: twenty seconds
    play without an underrun, a concealed frame or a trimmed tone."""
    rng = random.Random(11)
    s = RtpStream(send=lambda d: None)
    s.configure(PT_PCMA)
    frames = _speech_like(20.0)
    _, out = _play(s, frames, [rng.uniform(0, 0.060) for _ in frames])
    assert s.jitter.underruns == 0 and s.stats.concealed_frames == 0
    assert s.jitter.target >= 4
    codec = G711Codec(PT_PCMA)
    tones = [codec.decode(alaw_encode(f)) for f in frames if any(f)]
    played = [p for p in out if p in set(tones)]
    assert played == tones[: len(played)] and len(played) >= len(tones) - 5


def test_jitter_that_starts_mid_call_deepens_a_settled_buffer() -> None:
    rng = random.Random(5)
    s = RtpStream(send=lambda d: None)
    s.configure(PT_PCMA)
    frames = _speech_like(16.0)
    delays = [rng.uniform(0, 0.002) if i < 400 else rng.uniform(0, 0.060) for i in range(len(frames))]
    depth, _ = _play(s, frames, delays)
    assert max(depth[300:400]) <= 3  # settled while the link was clean
    assert s.jitter.target >= 4 and min(depth[-100:]) >= 2  # deepened once jitter was measured
    late_conceal = s.stats.concealed_frames
    assert late_conceal <= 6  # only around the onset, before the spread was measured
