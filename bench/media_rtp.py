"""RTP density benchmark: N voipbin RtpSessions vs a bare asyncio UDP echo at the same packet rate.

    .venv/bin/python bench/media_rtp.py [--sizes 50,100,200,300] [--seconds 8] [--consumer C] [--realtime]

C is tap (default), tap100, record or none. For each N, two server processes are measured one
after the other, each fed by the same peer process (a separate process, so its CPU is not counted):

* ``voipbin``: N MediaSessions on 127.0.0.1, each playing a continuous PCMU tone (encode path,
  20 ms clock, bounded queue), receiving the peer's 20 ms PCMU stream (jitter buffer, decode) and
  feeding an inbound tap drained by one consumer task per session (an STT stand-in; default: woken
  per 20 ms frame; ``tap100``: woken per 100 ms with ``get_batch(5)``, as STT engines consume), a
  WAV recorder of both directions per session (``--consumer record``) or nothing (``none``: then
  inbound audio is not even decoded).
* ``echo``: N bare asyncio datagram endpoints that send every packet straight back — the floor
  for "receive one packet and send one packet" on this event loop.

``--realtime``: the voipbin server's control and media threads run SCHED_RR (``tune_process``, as
under ``voipbin serve``); without it they keep ordinary scheduling (media thread nice -15).

The peer sends one 20 ms packet per session every 20 ms and measures, per source, the largest gap
between packets it receives (our outbound pacing as seen on the wire). Printed: server CPU per
second (1.0 = one core), packets/s handled, max gaps, our CPU as a ratio of the echo's, and the media
thread's CPU (``media``) with ``m.ratio`` = the echo's CPU per packet / the media thread's (>= 0.25 is
"within 4x the echo").

Other roles: ``--role tick`` (no sockets: CPU per session-tick of the receive path and the tick,
``--profile`` for cProfile), ``--role latency`` (the media path's own added latency, out and in).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

WARMUP = 2.0
SPREAD = int(os.environ.get("PEER_SPREAD", "10"))  # send groups per 20 ms


# ---------------------------------------------------------------------------------------------- peer
class _PeerProto(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.last: dict[tuple[str, int], float] = {}
        self.max_gap = 0.0
        self.received = 0
        self.measuring = False
        self.loop = asyncio.get_event_loop()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = self.loop.time()
        prev = self.last.get(addr)
        self.last[addr] = now
        if self.measuring:
            self.received += 1
            if prev is not None and now - prev > self.max_gap:
                self.max_gap = now - prev


async def peer_main(ports: list[int], seconds: float) -> dict:
    from voipbin.media.g711 import ulaw_encode
    from voipbin.media.rtp import build_header

    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    sock.bind(("127.0.0.1", int(os.environ["PEER_PORT"])))
    tr, proto = await loop.create_datagram_endpoint(_PeerProto, sock=sock)
    import numpy as np

    t = np.arange(160) / 8000
    payload = ulaw_encode((6000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16))
    ssrcs = [0x10000 + i for i in range(len(ports))]
    t0 = loop.time()
    n = 0
    sent = 0
    cpu0 = 0.0
    while True:
        now = loop.time()
        if not proto.measuring and now - t0 >= WARMUP:
            proto.measuring, proto.max_gap, cpu0 = True, 0.0, time.process_time()
            proto.last.clear()
        if now - t0 >= WARMUP + seconds:
            break
        # in SPREAD groups across the 20 ms (as independent phones, or SIPp's per-call threads, send)
        for g in range(SPREAD):
            for i in range(g, len(ports), SPREAD):
                tr.sendto(build_header(0, n, n * 160, ssrcs[i]) + payload, ("127.0.0.1", ports[i]))
            await asyncio.sleep(max(0.0, t0 + n * 0.02 + (g + 1) * 0.02 / SPREAD - loop.time()))
        sent += len(ports)
        n += 1
    cpu = time.process_time() - cpu0
    tr.close()
    return {"peer_rx": proto.received, "peer_max_gap_ms": proto.max_gap * 1000, "peer_cpu": cpu / seconds}


def _media_thread_cpu() -> float:
    """CPU seconds of this process's media engine thread (named voipbin-media), 0 if none."""
    clk = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as fh:
                if fh.read().strip() != "voipbin-media":
                    continue
            with open(f"/proc/self/task/{task}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / clk
        except OSError:
            continue
    return total


# ---------------------------------------------------------------------------------------------- servers
class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.tr.sendto(data, addr)  # type: ignore[attr-defined]


async def server_main(mode: str, n: int, seconds: float, consumer: str, realtime: bool = False) -> dict:
    import numpy as np

    from voipbin.media import MediaSession
    from voipbin.media.taps import TapClosed

    loop = asyncio.get_running_loop()
    if realtime and mode == "voipbin":  # as voipbin serve does (media/engine.py: tune_process)
        from voipbin.media.engine import tune_process

        tune_process(freeze=False, realtime=True)
    peer_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer_sock.bind(("127.0.0.1", 0))
    peer_port = peer_sock.getsockname()[1]
    peer_sock.close()
    cleanup = []
    ports: list[int] = []
    sessions: list[MediaSession] = []
    tasks: list[asyncio.Task] = []
    tmp = tempfile.TemporaryDirectory()
    if mode == "echo":
        for _ in range(n):
            tr, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
            ports.append(tr.get_extra_info("sockname")[1])
            cleanup.append(tr.close)
    else:
        tone = (6000 * np.sin(2 * np.pi * 440 * np.arange(8000 * 60) / 8000)).astype(np.int16)

        async def drain(tap) -> None:
            try:
                while True:
                    if consumer == "tap100":
                        await tap.get_batch(5)
                    else:
                        await tap.get()
            except TapClosed:
                return

        for _ in range(n):
            ms = await MediaSession.create(host="127.0.0.1")
            ms.negotiate("127.0.0.1", peer_port, 0, 101)
            sessions.append(ms)
            ports.append(ms.local_port)
        for i, ms in enumerate(sessions):
            ms.start()
            tasks.append(asyncio.create_task(ms.play_pcm(tone)))
            if consumer == "record":
                await ms.record_start(os.path.join(tmp.name, f"{i}.wav"), "both")
            elif consumer in ("tap", "tap100"):
                tasks.append(asyncio.create_task(drain(ms.tap("in"))))
    env = dict(os.environ, PEER_PORT=str(peer_port))
    peer = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--role", "peer", "--seconds", str(seconds),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert peer.stdin is not None
    peer.stdin.write((json.dumps(ports) + "\n").encode())
    await peer.stdin.drain()
    await asyncio.sleep(WARMUP)
    for ms in sessions:
        ms.stats.max_gap_ms = 0.0
        ms.stats.late_ticks = ms.stats.skipped_ticks = 0
    cpu0, wall0, media0 = time.process_time(), loop.time(), _media_thread_cpu()
    # sample the loop's own lateness while under load
    worst_lag = 0.0
    while loop.time() - wall0 < seconds:
        t = loop.time()
        await asyncio.sleep(0.01)
        worst_lag = max(worst_lag, loop.time() - t - 0.01)
    cpu = (time.process_time() - cpu0) / (loop.time() - wall0)
    media_cpu = (_media_thread_cpu() - media0) / (loop.time() - wall0)
    out, _ = await peer.communicate()
    result = json.loads(out.decode().strip().splitlines()[-1])
    result.update(mode=mode, n=n, cpu=cpu, media_cpu=media_cpu, loop_lag_ms=worst_lag * 1000)
    if sessions:
        result.update(
            in_max_gap_ms=max(s.stats.max_gap_ms for s in sessions),
            late_ticks=sum(s.stats.late_ticks for s in sessions),
            skipped_ticks=sum(s.stats.skipped_ticks for s in sessions),
            lost=sum(s.stats.lost for s in sessions),
        )
    for t in tasks:
        t.cancel()
    for ms in sessions:
        await ms.close()
    for c in cleanup:
        c()
    tmp.cleanup()
    return result


# ---------------------------------------------------------------------------------------------- tick
def tick_main(n: int, ticks: int, consumer: str, profile: bool) -> None:
    """No sockets, no threads: N sessions fed 30 ms PCMA packets (as g711a.pcap in
    bench/calls_platform.py) and ticked by hand as the engine does; prints the CPU per session-tick
    of the receive path and of the tick (both directions, batched encode, taps): thread CPU time,
    so other processes preempting this one do not count."""
    import cProfile
    import pstats
    import struct

    import numpy as np

    from voipbin.media.engine import MediaEngine
    from voipbin.media.g711 import PT_PCMA, EncodeBatch, alaw_encode
    from voipbin.media.session import RtpSession

    engine = MediaEngine("bench-tick")  # never started ticking: the bench drives clock_tick itself
    tone = (6000 * np.sin(2 * np.pi * 440 * np.arange(240) / 8000)).astype(np.int16)
    payload = alaw_encode(tone)
    sent: list[bytes] = []
    sessions = []
    taps = []
    frame = bytes(320)
    for _ in range(n):
        s = RtpSession(engine=engine)
        s.stream.send = sent.append
        s.stream.sending = True
        s.stream.configure(PT_PCMA, 101, 20)
        if consumer == "record":
            taps.append(s.add_tap("both", maxsize=250))
        elif consumer in ("tap", "tap100"):
            taps.append(s.add_tap("in", maxsize=250))
        s._registered = True
        sessions.append(s)
    batch = EncodeBatch()
    rx_ns = tick_ns = 0
    prof = cProfile.Profile() if profile else None
    seq = ts = 0
    for k in range(ticks):
        if k % 3 != 2:  # two 30 ms packets per three 20 ms ticks
            hdr = struct.pack("!BBHII", 0x80, PT_PCMA, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x1234)
            seq += 1
            ts += 240
            data = hdr + payload
            t0 = time.thread_time_ns()
            if prof:
                prof.enable()
            for s in sessions:
                s._on_rtp(data, ("127.0.0.1", 4000))
            if prof:
                prof.disable()
            rx_ns += time.thread_time_ns() - t0
        for s in sessions:
            if len(s.playout.frames) < 5:
                s.playout.frames.extend([frame] * 20)
        t0 = time.thread_time_ns()
        if prof:
            prof.enable()
        for s in sessions:
            s.clock_tick(k, False, 0, batch)
        batch.run()
        if prof:
            prof.disable()
        tick_ns += time.thread_time_ns() - t0
        sent.clear()
        if k % 20 == 19:
            for tap in taps:
                while tap.get_nowait() is not None:
                    pass
    per = n * ticks
    print(
        f"N={n} ticks={ticks} consumer={consumer}: receive {rx_ns / 1000 / (per * 2 / 3):.2f} us/packet, "
        f"tick {tick_ns / 1000 / per:.2f} us/session-tick, "
        f"total {(rx_ns + tick_ns) / 1000 / per:.2f} us/session-tick (load average {os.getloadavg()[0]:.2f})"
    )
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    engine.close()


# ---------------------------------------------------------------------------------------------- latency
class _LatencyPeer(asyncio.DatagramProtocol):
    """The far end: timestamps every packet our session sends and says whether it carried audio."""

    def __init__(self) -> None:
        self.loud: list[float] = []  # arrival times of non-silent packets

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[12:].strip(b"\xff"):  # PCMU silence is 0xff
            self.loud.append(time.monotonic())


async def latency_main(seconds: float, paced: bool) -> dict:
    """The platform's own added latency on the media path, in one process (loopback):

    * out: ``enqueue()`` of a reply into an idle session -> its first packet at the peer (it waits
      for the next tick: 0-20 ms, ~10 on average);
    * in: a packet sent to the session -> its frame returned by ``await tap.get()`` on the control
      loop, through an inbound tap (released in arrival order) or, with ``--paced``, a ``both``
      tap (the playout jitter buffer and the tick, as recordings get it)."""
    import random

    import numpy as np

    from voipbin.media import MediaSession
    from voipbin.media.g711 import ULAW_DECODE
    from voipbin.media.rtp import build_header

    loop = asyncio.get_running_loop()
    peer_tr, peer = await loop.create_datagram_endpoint(_LatencyPeer, local_addr=("127.0.0.1", 0))
    peer_port = peer_tr.get_extra_info("sockname")[1]
    ms = await MediaSession.create(host="127.0.0.1")
    ms.negotiate("127.0.0.1", peer_port, 0)
    ms.start()
    await asyncio.sleep(0.2)
    # ---- out
    loud = (8000 * np.sin(2 * np.pi * 440 * np.arange(160 * 5) / 8000)).astype(np.int16).tobytes()
    out: list[float] = []
    rng = random.Random(7)
    for _ in range(int(seconds / 0.25)):
        await asyncio.sleep(0.1 + rng.random() * 0.02)  # a random phase against the 20 ms clock
        n0 = len(peer.loud)
        t = time.monotonic()
        await ms.enqueue(loud, final=True)
        while len(peer.loud) == n0:  # noqa: ASYNC110  (the peer protocol only appends)
            await asyncio.sleep(0.0005)
        out.append((peer.loud[n0] - t) * 1000)
        await ms.wait_played()
    # ---- in
    tap = ms.tap("both" if paced else "in", maxsize=500)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent: dict[int, float] = {}
    code_of = {int(ULAW_DECODE[c]): c for c in range(20, 120)}
    delays: list[float] = []

    async def consume() -> None:
        while True:
            f = await tap.get()
            now = time.monotonic()
            if f.direction != "in":
                continue
            code = code_of.get(int(np.frombuffer(f.pcm[:2], np.int16)[0]))
            if code is not None and code in sent:
                delays.append((now - sent.pop(code)) * 1000)

    task = asyncio.create_task(consume())
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < seconds:
        code = 20 + k % 100
        sent[code] = time.monotonic()
        sender.sendto(build_header(0, k, k * 160, 77) + bytes([code]) * 160, ("127.0.0.1", ms.local_port))
        k += 1
        await asyncio.sleep(max(0.0, t0 + k * 0.02 - time.monotonic()))
    await asyncio.sleep(0.3)
    task.cancel()
    sender.close()
    await ms.close()
    peer_tr.close()

    def pct(xs: list[float], q: float) -> float:
        return float(np.percentile(xs, q)) if xs else float("nan")

    return {
        "out_p50": pct(out, 50), "out_p95": pct(out, 95),
        "in_p50": pct(delays, 50), "in_p95": pct(delays, 95), "in_frames": len(delays),
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------- driver
def run(coro):
    if uvloop is not None:
        return uvloop.run(coro)
    return asyncio.run(coro)


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    loopname = f"uvloop {uvloop.__version__}" if uvloop else "asyncio"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {loopname}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", default="driver", choices=["driver", "server", "peer", "tick", "latency"])
    ap.add_argument("--mode", default="voipbin", choices=["voipbin", "echo"])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--sizes", default="50,100,200,300")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--consumer", default="tap", choices=["tap", "tap100", "record", "none"])
    ap.add_argument("--realtime", action="store_true", help="SCHED_RR media/control threads, as serve")
    ap.add_argument("--paced", action="store_true", help="--role latency: a both tap (paced)")
    ap.add_argument("--ticks", type=int, default=500, help="--role tick: ticks to run")
    ap.add_argument("--profile", action="store_true", help="--role tick: cProfile the receive path and tick")
    args = ap.parse_args()
    if args.role == "latency":
        res = run(latency_main(args.seconds, args.paced))
        print(
            f"out (enqueue -> first packet at the peer, at the next tick): p50 {res['out_p50']:.1f} "
            f"p95 {res['out_p95']:.1f} ms | in (packet sent -> tap.get() returns, "
            f"{'both tap: paced' if args.paced else 'in tap'}): p50 {res['in_p50']:.1f} p95 "
            f"{res['in_p95']:.1f} ms over {res['in_frames']} frames (load average {os.getloadavg()[0]:.2f})"
        )
        return
    if args.role == "tick":
        tick_main(args.n, args.ticks, args.consumer, args.profile)
        return
    if args.role == "peer":
        ports = json.loads(sys.stdin.readline())
        print(json.dumps(run(peer_main(ports, args.seconds))), flush=True)
        return
    if args.role == "server":
        result = server_main(args.mode, args.n, args.seconds, args.consumer, args.realtime)
        print(json.dumps(run(result)), flush=True)
        return
    print(f"# machine: {machine()}")
    print(f"# {args.seconds:.0f} s measured per run after {WARMUP:.0f} s warm-up; consumer: "
          f"{args.consumer} per session; real-time: {args.realtime}")  # fmt: skip
    hdr = (
        f"{'N':>4} {'mode':>8} {'pkt/s':>7} {'cpu':>6} {'ratio':>6} {'wire gap':>9} {'in gap':>7} "
        f"{'loop lag':>8} {'late':>6} {'skip':>5} {'lost':>5} {'peer cpu':>8} {'us/pkt':>6} {'media':>5} "
        f"{'m.ratio':>7}"
    )
    print(hdr)
    for n in [int(x) for x in args.sizes.split(",")]:
        res = {}
        for mode in ("echo", "voipbin"):
            cmd = [sys.executable, __file__, "--role", "server", "--mode", mode, "--n", str(n)]
            cmd += ["--seconds", str(args.seconds), "--consumer", args.consumer]
            cmd += ["--realtime"] if args.realtime else []
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            res[mode] = json.loads(out.strip().splitlines()[-1])
        for mode in ("echo", "voipbin"):
            r = res[mode]
            pps = 2 * r["peer_rx"] / args.seconds  # each received packet was matched by one sent
            ratio = r["cpu"] / res["echo"]["cpu"] if res["echo"]["cpu"] else float("nan")
            us_pkt = r["cpu"] * 1e6 / pps if pps else float("nan")  # server CPU per packet handled
            # the media thread alone (RTP in/out, jitter, codec, taps): its packets per CPU-second
            # as a share of the echo's; the target is >= 0.25 (within 4x the echo per packet)
            media = r.get("media_cpu", 0.0)
            echo_us = res["echo"]["cpu"] * 1e6 / (2 * res["echo"]["peer_rx"] / args.seconds)
            m_ratio = echo_us / (media * 1e6 / pps) if media and pps else float("nan")
            print(
                f"{n:>4} {mode:>8} {pps:>7.0f} {r['cpu']:>6.2f} {ratio:>6.2f} {r['peer_max_gap_ms']:>7.1f}ms "
                f"{r.get('in_max_gap_ms', 0):>5.1f}ms {r['loop_lag_ms']:>6.1f}ms {r.get('late_ticks', 0):>6} "
                f"{r.get('skipped_ticks', 0):>5} {r.get('lost', 0):>5} {r['peer_cpu']:>8.2f} {us_pkt:>6.1f} "
                f"{media:>5.2f} {m_ratio:>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
