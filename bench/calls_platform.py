"""Whole-platform call benchmark: `voipbin serve` under SIPp calls, next to bare baselines in the same run.

    .venv/bin/python bench/calls_platform.py [--quick] [--sizes 10,25,50,100,150] [--rates 50,100,150,200,300]

What runs (all on 127.0.0.1, each in its own process so CPU is attributed per process):

1. ``python -m voipbin.cli serve`` with a temporary data dir, SQLite, uvloop, log level WARNING. The
   admin's number +15551234567 is routed (through the HTTP API, as a user would) to a flow
   ``answer -> recording_start -> play <4 s WAV> -> sleep`` that lasts until the caller's BYE.
2. Concurrent calls: for each N, SIPp places N overlapping calls (``-l N -m N``, ramped over
   ~1.5 s), each sending g711a.pcap (PCMA, 30 ms packets, 7 s) as RTP for 8 s, then BYE. Afterwards
   the calls are read back through ``GET /v1.0/calls``: each hung-up call carries ``metadata.rtp``
   (packets in/out, loss, max inbound gap, late/skipped playout ticks), and recordings through
   ``GET /v1.0/recordings``. Server CPU comes from /proc/<pid>/stat (utime+stime, all threads).
3. Baseline for 2: a bare uvloop UDP echo (N sockets, one per call) fed 172-byte packets at the same
   aggregate packet rate the platform handled, plus once at the highest rate one client reaches.
   The printed ratio is our packets per CPU-second / the echo's packets per CPU-second.
4. Call setup rate: ``sipp -sn uac -d 0`` (INVITE, 200, ACK, BYE at once) at increasing ``-r``
   against the same number, now routed to ``answer -> sleep`` (the caller's BYE ends it), and once
   as fast as it goes (``-l 64``). The max-rate run is repeated against the stateless SIP responder
   of bench/sip_setup_rate.py (in its own uvloop process) for a ratio.

Targets (for later tuning): >= 300 concurrent G.711 calls per core with no RTP gap > 40 ms,
>= 150 call setups per second. Note g711a.pcap itself has gaps up to 34.8 ms between packets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: shared SIPp scenarios

from sip_setup_rate import free_port
from tests.calls.sipp_scenarios import caller_playing

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

NUMBER = "+15551234567"
PCAP = Path("/usr/share/sip-tester/g711a.pcap")
ADMIN_PASSWORD = "bench-admin-password-1"
CALL_PAUSE_MS = 8000  # the pcap lasts 7.05 s; the caller stays 8 s, then sends BYE
RAMP_S = 1.5
CLK = os.sysconf("SC_CLK_TCK")
MEDIA_THREAD = "voipbin-media"  # the media engine's thread name (media/engine.py)

_procs: list[subprocess.Popen] = []


# ------------------------------------------------------------------------------------------ helpers
def run_loop(coro: Any) -> Any:
    return uvloop.run(coro) if uvloop is not None else asyncio.run(coro)


def family(pid: int) -> list[int]:
    """``pid`` and its child processes (the server's media worker, media/worker.py)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    return pids


def cpu_seconds(pid: int, children_only: bool = False) -> float:
    """utime + stime of a process and its children (all their threads), in seconds."""
    total = 0.0
    for p in family(pid)[1 if children_only else 0 :]:
        with contextlib.suppress(OSError), open(f"/proc/{p}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK
    return total


def thread_cpu_seconds(pid: int, name: str) -> float:
    """utime + stime of the threads named ``name`` (e.g. the media thread) of ``pid`` or its
    children, in seconds."""
    total = 0.0
    for p in family(pid):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    if (task / "comm").read_text().strip() == name:
                        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                        total += (int(fields[11]) + int(fields[12])) / CLK
    return total


def spawn(cmd: list[str], **kw: Any) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, **kw)
    _procs.append(proc)
    return proc


def kill_all() -> None:
    for proc in _procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    for proc in _procs:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class CpuSampler(threading.Thread):
    """Samples a process's CPU seconds every 0.25 s, to get the share during the steady window."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        # (time, process + worker CPU, media thread CPU, media worker process CPU)
        self.samples: list[tuple[float, float, float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(OSError):
                now, cpu = time.monotonic(), cpu_seconds(self.pid)
                media = thread_cpu_seconds(self.pid, MEDIA_THREAD)
                self.samples.append((now, cpu, media, cpu_seconds(self.pid, children_only=True)))
            self.stop.wait(0.25)

    def share(self, t_from: float, t_to: float, media: bool = False, worker: bool = False) -> float:
        """CPU share of the server (or of its media thread, or its media worker) between the two times."""
        inside = [s for s in self.samples if t_from <= s[0] <= t_to]
        if len(inside) < 2:
            return float("nan")
        i = 3 if worker else 2 if media else 1
        return (inside[-1][i] - inside[0][i]) / (inside[-1][0] - inside[0][0])


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as fh:
        cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    loopname = f"uvloop {uvloop.__version__}" if uvloop else "asyncio"
    sipp = subprocess.run(["sipp", "-v"], capture_output=True, text=True).stdout.strip().split("\n")[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}, "
        f"{loopname}, {sipp.strip() or 'sipp'}"
    )


def write_tone(path: Path, seconds: float) -> None:
    n = int(seconds * 8000)
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(n))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)


# ------------------------------------------------------------------------------------------ SIPp


@dataclass
class SippResult:
    ok: int
    failed: int
    elapsed: float
    rtd_ms: float  # mean INVITE -> 200 time (SIPp's ResponseTime1), nan when absent
    started_at: float
    rtd_p95_ms: float = float("nan")  # 95th percentile of the per-call INVITE -> 200 times


def run_sipp(
    target: str, workdir: Path, tag: str, args: list[str], timeout: float, on_start: Callable | None = None
) -> SippResult:
    stats = workdir / f"{tag}.csv"
    rtt_dir = workdir / f"{tag}-rtt"
    rtt_dir.mkdir(exist_ok=True)
    cmd = [
        "sipp", "-i", "127.0.0.1", "-p", str(free_port()), "-nostdin", "-timeout", f"{int(timeout)}s",
        "-trace_stat", "-stf", str(stats), "-fd", "1", "-trace_err", "-error_file",
        str(workdir / f"{tag}.err"), "-trace_rtt", "-rtt_freq", "1", *args, target,
    ]  # fmt: skip
    t0 = time.monotonic()
    proc = spawn(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=rtt_dir
    )
    if on_start:
        on_start(t0)
    try:
        proc.wait(timeout + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    elapsed = time.monotonic() - t0
    with stats.open() as f:
        rows = list(csv.reader(f, delimiter=";"))
    header, last = rows[0], rows[-1]
    rtd = float("nan")
    if "ResponseTime1(C)" in header:
        parts = [float(x) for x in last[header.index("ResponseTime1(C)")].split(":")]  # hh:mm:ss:usec
        rtd = (parts[0] * 3600 + parts[1] * 60 + parts[2] + (parts[3] / 1e6 if len(parts) > 3 else 0)) * 1000
    ok = int(last[header.index("SuccessfulCall(C)")])
    failed = int(last[header.index("FailedCall(C)")])
    return SippResult(ok, failed, elapsed, rtd, t0, rtt_percentile(rtt_dir, 95))


def rtt_percentile(rtt_dir: Path, pct: float) -> float:
    """The ``pct`` percentile of SIPp's per-call response times (``-trace_rtt``: INVITE -> 200), ms."""
    values: list[float] = []
    for path in rtt_dir.glob("*_rtt.csv"):
        for row in csv.reader(path.open(), delimiter=";"):
            with contextlib.suppress(ValueError, IndexError):
                values.append(float(row[1]))
    if not values:
        return float("nan")
    values.sort()
    return values[min(len(values) - 1, int(len(values) * pct / 100))]


# ------------------------------------------------------------------------------------------ platform
@dataclass
class Server:
    proc: subprocess.Popen
    http: Any  # httpx.Client
    sip_port: int
    data_dir: Path
    number_id: str = ""
    seen_calls: set[str] = field(default_factory=set)
    seen_recordings: set[str] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def route(self, actions: list[dict]) -> None:
        r = self.http.post("/v1.0/flows", json={"name": "bench", "actions": actions})
        r.raise_for_status()
        r = self.http.put(f"/v1.0/numbers/{self.number_id}/flow_ids", json={"call_flow_id": r.json()["id"]})
        r.raise_for_status()

    def _new(self, path: str, seen: set[str]) -> list[dict]:
        """Items created since the last call (lists are newest first; stop at the first seen id)."""
        out: list[dict] = []
        token = None
        while True:
            params = {"page_size": 100} | ({"page_token": token} if token else {})
            body = self.http.get(path, params=params).json()
            items = body.get("result") or []
            for item in items:
                if item["id"] in seen:
                    return out
                out.append(item)
            if len(items) < 100 or not body.get("next_page_token"):
                return out
            token = body["next_page_token"]

    def drain_calls(self, expected: int, within: float = 90.0, patience: float = 10.0) -> list[dict]:
        """Wait until every call of this phase is hung up (or nothing changes for `patience` s).

        Marks the calls seen and returns them. Polls once a second: each poll lists every call of
        the phase, which costs the server CPU too.
        """
        deadline = time.monotonic() + within
        last_change, last_open = time.monotonic(), -1
        while True:
            calls = self._new("/v1.0/calls", self.seen_calls)
            still_open = sum(1 for c in calls if c["status"] != "hangup") + max(0, expected - len(calls))
            now = time.monotonic()
            if still_open != last_open:
                last_change, last_open = now, still_open
            if still_open == 0 or now > deadline or now - last_change > patience:
                self.seen_calls.update(c["id"] for c in calls)
                return calls
            time.sleep(1.0)

    def new_recordings(self) -> list[dict]:
        recs = self._new("/v1.0/recordings", self.seen_recordings)
        self.seen_recordings.update(r["id"] for r in recs)
        return recs


def start_server(tmp: Path, database_url: str = "") -> Server:
    import httpx

    http_port, sip_port = free_port(), free_port()
    media = tmp / "media"
    media.mkdir()
    write_tone(media / "prompt.wav", 4.0)
    env = dict(
        os.environ,
        VOIPBIN_DATA_DIR=str(tmp / "var"),
        VOIPBIN_HTTP_HOST="127.0.0.1",
        VOIPBIN_HTTP_PORT=str(http_port),
        VOIPBIN_SIP_HOST="127.0.0.1",
        VOIPBIN_SIP_PORT=str(sip_port),
        VOIPBIN_RTP_PORT_MIN="40000",
        VOIPBIN_RTP_PORT_MAX="49999",
        VOIPBIN_ADMIN_PASSWORD=ADMIN_PASSWORD,
        VOIPBIN_LOG_LEVEL="WARNING",
        VOIPBIN_FLOW_MEDIA_DIRS=str(media),
        VOIPBIN_DATABASE_URL=database_url,
    )
    log = (tmp / "server.log").open("wb")
    proc = spawn(
        [sys.executable, "-m", "voipbin.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp
    )
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 60
    token = None
    with httpx.Client(base_url=base, timeout=5) as probe:
        while token is None:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(tmp / 'server.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not come up")
            with contextlib.suppress(httpx.HTTPError):
                r = probe.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
                if r.status_code == 200:
                    token = r.json()["token"]
                    break
            time.sleep(0.2)
    http = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"})
    numbers = http.get("/v1.0/numbers").json()["result"]
    number = next(n for n in numbers if n["number"] == NUMBER)
    return Server(proc, http, sip_port, tmp / "var", number_id=number["id"])


# ------------------------------------------------------------------------------------------ concurrent
@dataclass
class ConcurrentResult:
    n: int
    ok: int
    failed: int
    hung_up: int
    pkts: int  # in + out, all calls
    pkt_s: float  # pkts / SIPp run time
    up_pkt_s: float  # sum over calls of pkts / (answer -> hangup): the aggregate rate while all are up
    cpu: float  # server CPU seconds over the SIPp run
    steady_share: float  # server CPU share (1.0 = one core) while all N calls were up
    media_share: float  # the media thread's share then (RTP in/out, jitter, codec, taps)
    worker_share: float  # the media worker process's share then (media thread, its loop, recorder)
    max_gap_ms: float  # inbound: between SIPp's packets as they reached us
    calls_over_40ms: int  # calls with an inbound gap > 40 ms (includes SIPp's own sending delays)
    max_gap_out_ms: float  # outbound: between the packets we sent (what the caller hears)
    calls_over_40ms_out: int  # THE target: calls with an outbound gap > 40 ms
    arrivals: SetupResult | None  # setups that kept arriving while the N calls were up
    lost: int
    late: int
    skipped: int
    recordings: int
    rec_bytes: int

    @property
    def pkt_per_cpu(self) -> float:
        """All server CPU of the run (setups, flow, DB, recordings, RTP) per packet."""
        return self.pkts / self.cpu if self.cpu else float("nan")

    @property
    def media_pkt_per_cpu(self) -> float:
        """Packets per CPU-second of the media thread alone while every call is up."""
        return self.up_pkt_s / self.media_share if self.media_share > 0 else float("nan")

    @property
    def up_pkt_per_cpu(self) -> float:
        """Packets per CPU-second while every call is up (media, recording; no setups)."""
        return self.up_pkt_s / self.steady_share if self.steady_share > 0 else float("nan")


def bench_concurrent(srv: Server, n: int, workdir: Path, arrivals: int = 0) -> ConcurrentResult:
    scenario = workdir / "caller.xml"
    caller_playing(scenario, [(Path(PCAP).name, CALL_PAUSE_MS)])
    rate = max(1, math.ceil(n / RAMP_S))
    sampler = CpuSampler(srv.pid)
    sampler.start()
    cpu0 = cpu_seconds(srv.pid)
    arrived: list[SetupResult] = []
    arriving: threading.Thread | None = None
    if arrivals:
        # While all N calls are up, new calls keep arriving (INVITE/200/ACK/BYE, same flow).
        def arrive() -> None:
            time.sleep(RAMP_S + 0.5)
            secs = max(1.0, CALL_PAUSE_MS / 1000 - RAMP_S - 2.0)
            arrived.append(
                bench_setup(None, f"127.0.0.1:{srv.sip_port}", srv.pid, arrivals, int(arrivals * secs), 64,
                            workdir, f"arrive{n}")
            )  # fmt: skip

        arriving = threading.Thread(target=arrive, daemon=True)
        arriving.start()
    res = run_sipp(
        f"127.0.0.1:{srv.sip_port}", workdir, f"conc{n}",
        ["-sf", str(scenario), "-s", NUMBER, "-l", str(n), "-m", str(n), "-r", str(rate),
         "-mp", str(52000 + (os.getpid() % 50) * 200)],
        timeout=60 + n * 0.2,
    )  # fmt: skip
    if arriving is not None:
        arriving.join()
    cpu = cpu_seconds(srv.pid) - cpu0
    sampler.stop.set()
    sampler.join()
    # every call is up from ~RAMP_S until ~CALL_PAUSE_MS after the start
    window = (res.started_at + RAMP_S + 0.5, res.started_at + CALL_PAUSE_MS / 1000 - 0.3)
    steady = sampler.share(*window)
    media_share = sampler.share(*window, media=True)
    worker_share = sampler.share(*window, worker=True)
    calls = srv.drain_calls(n + sum(a.ok + a.failed for a in arrived))
    rtps = [c.get("metadata", {}).get("rtp") for c in calls if c["status"] == "hangup"]
    rtps = [r for r in rtps if r]
    ids = {c["id"] for c in calls}
    recs = [r for r in srv.new_recordings() if r["reference_id"] in ids and r["status"] == "ended"]
    rec_bytes = sum(
        (srv.data_dir / "recordings" / f"{r['id']}.wav").stat().st_size
        for r in recs
        if (srv.data_dir / "recordings" / f"{r['id']}.wav").exists()
    )
    pkts = sum(r["packets_in"] + r["packets_out"] for r in rtps)
    up_pkt_s = 0.0
    for c in calls:
        rtp = (c.get("metadata") or {}).get("rtp")
        if rtp and c.get("tm_progressing") and c.get("tm_hangup"):
            up = datetime.fromisoformat(c["tm_hangup"]) - datetime.fromisoformat(c["tm_progressing"])
            if up.total_seconds() > 1:
                up_pkt_s += (rtp["packets_in"] + rtp["packets_out"]) / up.total_seconds()
    return ConcurrentResult(
        n=n, ok=res.ok, failed=res.failed, hung_up=len(rtps), pkts=pkts, pkt_s=pkts / res.elapsed,
        up_pkt_s=up_pkt_s, cpu=cpu,
        steady_share=steady, media_share=media_share, worker_share=worker_share,
        max_gap_ms=max((r["max_gap_ms"] for r in rtps), default=float("nan")),
        calls_over_40ms=sum(1 for r in rtps if r["max_gap_ms"] > 40),
        max_gap_out_ms=max((r.get("max_gap_out_ms", float("nan")) for r in rtps), default=float("nan")),
        calls_over_40ms_out=sum(1 for r in rtps if r.get("max_gap_out_ms", 0) > 40),
        arrivals=arrived[0] if arrived else None,
        lost=sum(r["lost"] for r in rtps), late=sum(r["late_ticks"] for r in rtps),
        skipped=sum(r["skipped_ticks"] for r in rtps), recordings=len(recs), rec_bytes=rec_bytes,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ echo baseline
class _Echo(asyncio.DatagramProtocol):
    count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        _Echo.count += 1
        self.tr.sendto(data, addr)  # type: ignore[attr-defined]


async def echo_server_main(n: int) -> None:
    """N echo sockets; prints their ports, then (on stdin EOF) the number of packets echoed."""
    loop = asyncio.get_running_loop()
    ports = []
    for _ in range(n):
        tr, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
        ports.append(tr.get_extra_info("sockname")[1])
    print(json.dumps(ports), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    print(json.dumps({"echoed": _Echo.count}), flush=True)


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received = 0
        self.wake: asyncio.Event = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        self.wake.set()


async def echo_client_main(ports: list[int], rate: float, seconds: float) -> None:
    """Send 172-byte RTP packets round-robin to the ports at `rate`/s (0: as fast as echoes return)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    tr, proto = await loop.create_datagram_endpoint(_Client, sock=sock)
    packet = struct.pack("!BBHII", 0x80, 8, 1, 160, 0x1234) + b"\xd5" * 160
    addrs = [("127.0.0.1", p) for p in ports]
    sent = i = 0
    t0 = loop.time()
    if rate > 0:
        while loop.time() - t0 < seconds:
            due = int((loop.time() - t0) * rate)
            while sent < due:
                tr.sendto(packet, addrs[i % len(addrs)])
                sent += 1
                i += 1
            await asyncio.sleep(0.005)
    else:
        window = 256
        while loop.time() - t0 < seconds:
            while sent - proto.received < window:
                tr.sendto(packet, addrs[i % len(addrs)])
                sent += 1
                i += 1
            proto.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proto.wake.wait(), 0.05)
            if sent - proto.received >= window:  # losses: refill the window
                proto.received = sent - window // 2
    elapsed = loop.time() - t0
    await asyncio.sleep(0.1)
    tr.close()
    print(json.dumps({"sent": sent, "elapsed": elapsed}), flush=True)


@dataclass
class EchoResult:
    pkt_s: float  # in + out
    pkt_per_cpu: float
    share: float


def bench_echo(n_sockets: int, rate: float, seconds: float) -> EchoResult:
    me = [sys.executable, __file__]
    server = spawn(
        [*me, "--role", "echo-server", "--n", str(n_sockets)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdin is not None and server.stdout is not None
    ports = json.loads(server.stdout.readline())
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    client = spawn(
        [*me, "--role", "echo-client", "--rate", str(rate), "--seconds", str(seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    client.communicate(json.dumps(ports) + "\n", timeout=seconds + 30)
    cpu, wall = cpu_seconds(server.pid) - cpu0, time.monotonic() - t0
    out, _ = server.communicate("", timeout=10)
    echoed = json.loads(out.strip().splitlines()[-1])["echoed"]
    pkts = 2 * echoed
    return EchoResult(pkts / wall, pkts / cpu if cpu else float("nan"), cpu / wall)


# ------------------------------------------------------------------------------------------ setup rate
async def sip_bare_main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from sip_setup_rate import BareResponder

    loop = asyncio.get_running_loop()
    tr, _ = await loop.create_datagram_endpoint(BareResponder, local_addr=("127.0.0.1", 0))
    print(tr.get_extra_info("sockname")[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


@dataclass
class SetupResult:
    label: str
    ok: int
    failed: int
    setups_s: float
    cpu_per_setup_ms: float
    rtd_ms: float
    hung_up: int = -1
    rtd_p95_ms: float = float("nan")


def bench_setup(
    srv: Server | None, target: str, pid: int, rate: int, calls: int, limit: int, workdir: Path, tag: str
) -> SetupResult:
    cpu0 = cpu_seconds(pid)
    res = run_sipp(
        target, workdir, tag,
        ["-sn", "uac", "-s", NUMBER, "-d", "0", "-m", str(calls), "-l", str(limit), "-r", str(rate),
         "-mp", str(56000 + (os.getpid() % 50) * 100)],
        timeout=30 + calls * 0.1,  # the platform sets up ~25 calls/s today; -r can be far higher
    )  # fmt: skip
    cpu = cpu_seconds(pid) - cpu0
    hung_up = -1
    if srv is not None:
        calls_seen = srv.drain_calls(res.ok + res.failed, within=60)
        hung_up = sum(1 for c in calls_seen if c["status"] == "hangup")
    return SetupResult(
        label=tag, ok=res.ok, failed=res.failed, setups_s=res.ok / res.elapsed,
        cpu_per_setup_ms=cpu * 1000 / max(res.ok, 1), rtd_ms=res.rtd_ms, hung_up=hung_up,
        rtd_p95_ms=res.rtd_p95_ms,
    )  # fmt: skip


def run_concurrent(srv: Server, sizes: list[int], tmp: Path, args: argparse.Namespace) -> None:
    """Part 2 and 3: concurrent recorded calls with playback, beside the bare UDP echo."""
    srv.route(
        [
            {"type": "answer"},
            {"type": "recording_start", "option": {"format": "wav"}},
            {"type": "play", "option": {"stream_urls": [str(tmp / "media" / "prompt.wav")]}},
            {"type": "sleep", "option": {"duration": 120000}},
        ]
    )
    print("\n## Concurrent calls: SIPp sends g711a.pcap (PCMA 30 ms) 8 s/call; flow answer+record+play")
    print(
        f"# while all N are up, new calls arrive at {args.arrivals}/s (-d 0, same flow); "
        "gap columns: inbound (SIPp -> us, includes SIPp's own delays), then OUTBOUND (us -> caller)"
    )
    print(
        "# up pkt/s: aggregate RTP rate (in+out) while all calls are up; core: server CPU share then;\n"
        "# pkt/cpu-s up: packets per server CPU-second then; echo: the bare echo at the same rate;\n"
        "# run pkt/cpu-s: all packets / all server CPU of the run (incl. setups, flow, DB, teardown);\n"
        "# media: the media thread's CPU share while up; m.ratio: its packets per CPU-second / echo's;\n"
        "# worker: the media worker process's share while up (media thread, request loop, recorder)"
    )
    print(
        f"{'N':>4} {'ok':>4} {'fail':>4} {'up pkt/s':>8} {'core':>5} {'calls/core':>10} "
        f"{'pkt/cpu-s up':>12} {'echo':>7} {'ratio':>5} {'run pkt/cpu-s':>13} {'max gap':>8} "
        f"{'>40ms':>5} {'out gap':>8} {'>40ms':>5} {'lost':>5} {'late':>5} {'skip':>5} {'recs':>4} "
        f"{'arrivals ok/fail setups/s':>25} {'media':>5} {'m.ratio':>7} {'worker':>6}"
    )
    conc: list[tuple[ConcurrentResult, EchoResult]] = []
    for n in sizes:
        r = bench_concurrent(srv, n, tmp, args.arrivals)
        echo = bench_echo(n, r.up_pkt_s / 2, args.echo_seconds)  # the client's packets come back: x2
        conc.append((r, echo))
        per_core = n / r.steady_share if r.steady_share > 0 else float("nan")
        a = r.arrivals
        arr = f"{a.ok}/{a.failed} {a.setups_s:.0f}/s" if a else "-"
        ratio = r.up_pkt_per_cpu / echo.pkt_per_cpu
        print(
            f"{n:>4} {r.ok:>4} {r.failed:>4} {r.up_pkt_s:>8.0f} {r.steady_share:>5.2f} {per_core:>10.0f} "
            f"{r.up_pkt_per_cpu:>12.0f} {echo.pkt_per_cpu:>7.0f} {ratio:>5.2f} "
            f"{r.pkt_per_cpu:>13.0f} {r.max_gap_ms:>6.1f}ms {r.calls_over_40ms:>5} "
            f"{r.max_gap_out_ms:>6.1f}ms {r.calls_over_40ms_out:>5} "
            f"{r.lost:>5} {r.late:>5} {r.skipped:>5} {r.recordings:>4} {arr:>25} "
            f"{r.media_share:>5.2f} {r.media_pkt_per_cpu / echo.pkt_per_cpu:>7.2f} {r.worker_share:>6.2f}",
            flush=True,
        )
        if r.failed or r.hung_up < n or r.steady_share > 1.5:  # control + media thread: <= 2 cores
            print(
                f"# stopping at N={n}: {r.failed} failed, {n - r.hung_up} not hung up, "
                f"{r.steady_share:.2f} core busy"
            )
            break
    top = max(conc, key=lambda x: x[0].n)
    echo_max = bench_echo(top[0].n, 0, args.echo_seconds)
    print(
        f"# bare echo at max rate ({top[0].n} sockets, one client): {echo_max.pkt_s:.0f} pkt/s, "
        f"{echo_max.share:.2f} core -> {echo_max.pkt_per_cpu:.0f} pkt/cpu-s; "
        f"ours at N={top[0].n} while up: {top[0].up_pkt_per_cpu:.0f} pkt/cpu-s "
        f"(ratio {top[0].up_pkt_per_cpu / echo_max.pkt_per_cpu:.2f})"
    )


# ------------------------------------------------------------------------------------------ driver
def drive(args: argparse.Namespace) -> None:
    sizes = [int(x) for x in args.sizes.split(",")]
    rates = [int(x) for x in args.rates.split(",")]
    print(f"# machine: {machine()}")
    print(f"# load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="voipbin-bench-") as tmp_name:
        tmp = Path(tmp_name)
        srv = start_server(tmp, args.database_url)
        print(f"# server pid {srv.pid}, SIP 127.0.0.1:{srv.sip_port}, RTP 40000-49999")
        if not args.setup_only:
            run_concurrent(srv, sizes, tmp, args)

        print("\n## Call setup rate: sipp -sn uac -d 0 (INVITE/200/ACK/BYE), flow answer+sleep until BYE")
        srv.route([{"type": "answer"}, {"type": "sleep", "option": {"duration": 120000}}])
        target = f"127.0.0.1:{srv.sip_port}"
        print(
            f"{'-r':>6} {'ok':>6} {'fail':>5} {'setups/s':>8} {'cpu ms/setup':>12} {'INVITE->200':>11} "
            f"{'p95':>8} {'not hangup':>10}"
        )
        for rate in rates:
            calls = max(100, int(rate * args.setup_seconds))
            s = bench_setup(srv, target, srv.pid, rate, calls, 1000, tmp, f"rate{rate}")
            print(
                f"{rate:>6} {s.ok:>6} {s.failed:>5} {s.setups_s:>8.0f} {s.cpu_per_setup_ms:>12.2f} "
                f"{s.rtd_ms:>9.1f}ms {s.rtd_p95_ms:>6.1f}ms {s.ok - s.hung_up:>10}",
                flush=True,
            )
            if s.failed or s.setups_s < 0.9 * rate:
                print(f"# stopping: failures or the rate was not reached at -r {rate}")
                break
        max_calls = args.max_calls
        ours = bench_setup(srv, target, srv.pid, 10000, max_calls, 64, tmp, "max-ours")
        bare_proc = spawn(
            [sys.executable, __file__, "--role", "sip-bare"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert bare_proc.stdout is not None
        bare_port = int(bare_proc.stdout.readline())
        bare = bench_setup(
            None, f"127.0.0.1:{bare_port}", bare_proc.pid, 10000, max_calls, 64, tmp, "max-bare"
        )
        bare_proc.communicate("", timeout=10)
        print(f"# as fast as possible, -l 64, {max_calls} calls:")
        for s in (ours, bare):
            print(
                f"  {s.label:>9}: {s.ok} ok, {s.failed} failed, {s.setups_s:.0f} setups/s, "
                f"{s.cpu_per_setup_ms:.2f} cpu ms/setup, "
                f"INVITE->200 {s.rtd_ms:.1f} ms (p95 {s.rtd_p95_ms:.1f})"
            )
        per_cpu = (
            f"{bare.cpu_per_setup_ms / ours.cpu_per_setup_ms:.4f}"
            if bare.cpu_per_setup_ms > 0
            else "n/a (bare CPU below /proc tick resolution)"
        )
        print(
            f"# ratio ours/bare: {ours.setups_s / bare.setups_s:.3f} (setups/s), {per_cpu} (setups per cpu-s)"
        )
        if ours.hung_up >= 0 and ours.hung_up < ours.ok:
            print(
                f"# warning: {ours.ok - ours.hung_up} of {ours.ok} calls the caller completed (BYE -> 200) "
                "are not 'hangup' in the API"
            )
        srv.http.close()
        log = (tmp / "server.log").read_text(errors="replace")
        warnings = [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
        print(f"# server log: {len(warnings)} warning/error lines")
        for line in warnings[:8]:
            print(f"#   {line[:200]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", default="driver", choices=["driver", "echo-server", "echo-client", "sip-bare"])
    ap.add_argument("--quick", action="store_true", help="small sizes and rates, < 2 minutes")
    ap.add_argument("--sizes", default="10,25,50,100,150,200")
    ap.add_argument("--rates", default="50,100,150,200,300")
    ap.add_argument("--setup-seconds", type=float, default=5.0, help="length of each setup-rate step")
    ap.add_argument("--max-calls", type=int, default=600)
    ap.add_argument("--setup-only", action="store_true", help="only the call setup rate part")
    ap.add_argument("--database-url", default="", help="e.g. postgresql+asyncpg://... (default: SQLite)")
    ap.add_argument("--echo-seconds", type=float, default=6.0)
    ap.add_argument(
        "--arrivals", type=int, default=30, help="setups/s arriving while the N calls are up (0: none)"
    )
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    if args.role == "echo-server":
        run_loop(echo_server_main(args.n))
        return
    if args.role == "echo-client":
        run_loop(echo_client_main(json.loads(sys.stdin.readline()), args.rate, args.seconds))
        return
    if args.role == "sip-bare":
        run_loop(sip_bare_main())
        return
    if shutil.which("sipp") is None:
        raise SystemExit("sipp not found (apt-get install sip-tester)")
    if args.quick:
        args.sizes, args.rates = "10,50", "100"
        args.setup_seconds, args.max_calls, args.echo_seconds = 2.0, 200, 4.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        drive(args)
    finally:
        kill_all()


if __name__ == "__main__":
    main()
