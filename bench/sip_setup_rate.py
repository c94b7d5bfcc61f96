"""Call setup rate of voipbin's SIP endpoint under SIPp load, next to a bare asyncio baseline.

Both servers take the same SIPp load in the same run: ``sipp -sn uac`` (INVITE -> 100/200 -> ACK ->
BYE -> 200) with a bounded number of concurrent calls, as fast as the server answers.

- ours: ``SipEndpoint`` with an app that answers every INVITE with SDP (full parser, transactions,
  dialogs, SDP offer/answer, timers).
- bare: a stateless asyncio UDP responder that only swaps the first line and copies the routing
  headers with bytes operations: the floor for "Python + asyncio + this machine", not a SIP stack.

The ratio ours/bare is the number to watch. uvloop is used when importable.

    .venv/bin/python bench/sip_setup_rate.py [--calls 5000] [--limit 64] [--rate 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import shutil
import socket
import tempfile
import time
from pathlib import Path

from voipbin.sip import IncomingInvite, SipEndpoint, answer_offer


def free_port() -> int:
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


class BareResponder(asyncio.DatagramProtocol):
    """Answers INVITE and BYE with 200 (INVITE with a fixed SDP), ignores ACK. No state."""

    SDP = (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0\r\n"
    )
    KEEP = (b"via:", b"from:", b"to:", b"call-id:", b"cseq:")

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if data.startswith(b"ACK"):
            return
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        keep = [h for h in head[1:] if h.lower().startswith(self.KEEP)]
        keep = [h + b";tag=bare1" if h.lower().startswith(b"to:") else h for h in keep]
        body = self.SDP if data.startswith(b"INVITE") else b""
        extra = [b"Contact: <sip:bare@127.0.0.1>", b"Content-Type: application/sdp"] if body else []
        out = b"\r\n".join([b"SIP/2.0 200 OK", *keep, *extra, b"Content-Length: %d" % len(body), b"", body])
        self.transport.sendto(out, addr)


async def run_sipp(
    port: int, calls: int, limit: int, rate: int, workdir: Path, tag: str
) -> tuple[int, int, float]:
    stats = workdir / f"{tag}.csv"
    sipp_port = free_port()
    cmd = [
        "sipp", "-sn", "uac", "-i", "127.0.0.1", "-p", str(sipp_port), "-nostdin", "-m", str(calls),
        "-l", str(limit), "-r", str(rate), "-d", "0", "-timeout", "120s", "-trace_stat", "-stf", str(stats),
        "-fd", "1", f"127.0.0.1:{port}",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=workdir,
    )  # fmt: skip
    try:
        await asyncio.wait_for(proc.wait(), 180)
    finally:
        if proc.returncode is None:
            proc.kill()
    elapsed = time.perf_counter() - t0
    ok = failed = 0
    with stats.open() as f:
        rows = list(csv.reader(f, delimiter=";"))
    header, last = rows[0], rows[-1]
    ok = int(last[header.index("SuccessfulCall(C)")])
    failed = int(last[header.index("FailedCall(C)")])
    return ok, failed, elapsed


async def bench_ours(args: argparse.Namespace, workdir: Path) -> tuple[int, int, float]:
    def on_request(ctx) -> None:
        if isinstance(ctx, IncomingInvite):
            body, _ = answer_offer(ctx.offer, "127.0.0.1", 40000)
            ctx.answer(body)
        else:
            ctx.respond(405)

    ep = SipEndpoint("127.0.0.1", 0, on_request=on_request)
    await ep.start()
    try:
        return await run_sipp(ep.port, args.calls, args.limit, args.rate, workdir, "ours")
    finally:
        await ep.stop()


async def bench_bare(args: argparse.Namespace, workdir: Path) -> tuple[int, int, float]:
    loop = asyncio.get_running_loop()
    port = free_port()
    transport, _ = await loop.create_datagram_endpoint(BareResponder, local_addr=("127.0.0.1", port))
    try:
        return await run_sipp(port, args.calls, args.limit, args.rate, workdir, "bare")
    finally:
        transport.close()


async def main(args: argparse.Namespace) -> None:
    loop_name = type(asyncio.get_running_loop()).__module__
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}")
    print(f"python {platform.python_version()}, event loop: {loop_name}")
    print(f"load: sipp -sn uac, {args.calls} calls, -l {args.limit}, -r {args.rate}, -d 0")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        results = {}
        for name, fn in (("bare", bench_bare), ("ours", bench_ours)):
            ok, failed, elapsed = await fn(args, workdir)
            results[name] = ok / elapsed
            print(f"{name:5s}: {ok} ok, {failed} failed in {elapsed:.2f}s -> {ok / elapsed:.0f} setups/s")
    print(f"ratio ours/bare: {results['ours'] / results['bare']:.2f}  (target: ours >= 150 setups/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--rate", type=int, default=10000)
    parser.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    ns = parser.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp not found (apt-get install sip-tester)")
    try:
        import uvloop
    except ImportError:
        uvloop = None
    if uvloop is not None and not ns.no_uvloop:
        uvloop.run(main(ns))
    else:
        asyncio.run(main(ns))
