"""AI call while offline inference runs: the largest RTP gap the caller hears.

    .venv/bin/python bench/media_ai_call.py [--turns 3] [--hog 0]

What runs (all on 127.0.0.1, each part in its own process):

1. ``voipbin serve`` (as bench/calls_platform.py starts it: SQLite, uvloop, WARNING logs) with the
   number +15551234567 routed to ``answer -> ai_talk`` on the offline engines (Silero VAD, Whisper
   tiny.en for STT, ``offline.scripted`` as the LLM, Piper for TTS): each caller turn makes the server
   run VAD, Whisper and Piper on its CPU while the call's audio must keep flowing.
2. The caller (``--role peer``, its own process with its own media engine): a SIP UA + RTP session
   that dials the number, waits for the greeting, then says ``--turns`` questions (pre-synthesised
   before dialing, so the peer itself runs no inference during the call), waits for each answer, and
   hangs up. It timestamps every RTP packet the platform sends as it arrives at its socket; it runs
   its threads real-time (``tune_process``) so that on a busy machine its own scheduling adds little.
3. ``--hog N``: N extra processes spinning on the CPU for the whole call (a busier machine).

Printed: the largest inter-arrival gap the caller saw (target <= 40 ms; 20 ms is perfect pacing),
how many gaps exceeded 40 ms, packets received, and the server's own ``metadata.rtp`` for the call
(outbound max gap at send time, late/skipped clock ticks).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ["What time do you open?", "Who are you?", "Thank you, goodbye."]


async def peer(sip_port: int, turns: int, answer_wait: float) -> dict:
    import numpy as np

    from voipbin.media import MediaSession
    from voipbin.phone.speech import synthesize
    from voipbin.sip import SipEndpoint, build_sdp

    speech = [await synthesize(q, "piper") for q in QUESTIONS[:turns]]
    # The measuring peer runs real-time (as serve does, if the OS allows), so that its own
    # scheduling on a busy machine adds as little as possible to the gaps it reports.
    from voipbin.media.engine import tune_process

    tune_process(freeze=False, realtime=True)
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    ms = await MediaSession.create(host="127.0.0.1")
    arrivals: list[float] = []
    ms.rtp.add_sink("in", lambda f: None)  # decode inbound (as a phone would)
    orig = ms.rtp._on_rtp

    def on_rtp(data: bytes, addr: tuple[str, int]) -> None:  # runs on the peer's media thread
        arrivals.append(time.monotonic())
        orig(data, addr)

    ms.rtp._on_rtp = on_rtp  # type: ignore[method-assign]
    ms.rtp.set_arrival_reads(True)  # timestamp each packet when it arrives, not at the next tick
    try:
        res = await asyncio.wait_for(
            ep.invite(
                f"sip:+15551234567@127.0.0.1:{sip_port}", "sip:+15550002222@127.0.0.1",
                "sip:+15551234567@127.0.0.1", build_sdp("127.0.0.1", ms.local_port),
            ),
            20,
        )  # fmt: skip
        if not res.ok or res.call is None or res.call.media is None:
            return {"error": f"call failed: {res.status} {res.reason}"}
        m = res.call.media
        ms.negotiate(m.remote_addr, m.remote_port, m.payload_type, m.dtmf_payload_type)
        ms.start()
        t_start = time.monotonic()
        await asyncio.sleep(answer_wait)  # the greeting
        for pcm in speech:
            await ms.play_pcm(np.frombuffer(pcm, dtype=np.int16))
            await asyncio.sleep(answer_wait)  # VAD hang, Whisper, LLM, Piper, the answer playing
        t_end = time.monotonic()
        await res.call.bye()
    finally:
        await ms.close()
        await ep.stop()
    times = [t for t in arrivals if t_start + 0.5 <= t <= t_end]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    return {
        "packets": len(times),
        "seconds": round(t_end - t_start, 1),
        "max_gap_ms": round(max(gaps), 1) if gaps else None,
        "gaps_over_40ms": sum(1 for g in gaps if g > 40),
        "p99_gap_ms": round(sorted(gaps)[int(len(gaps) * 0.99)], 1) if gaps else None,
        "concealed_frames": ms.stats.concealed_frames,
    }


def hog(stop_at: float) -> None:
    x = 0
    while time.monotonic() < stop_at:
        x = (x * 31 + 7) % 1_000_003


def drive(args: argparse.Namespace) -> None:
    import subprocess

    from calls_platform import machine, start_server

    print(f"# machine: {machine()}")
    print(f"# load average before: {os.getloadavg()[0]:.2f} (the machine may be shared: figures are noisy)")
    with tempfile.TemporaryDirectory(prefix="voipbin-aibench-") as tmp_name:
        tmp = Path(tmp_name)
        srv = start_server(tmp)
        try:
            srv.route(
                [
                    {"type": "answer"},
                    {
                        "type": "ai_talk",
                        "option": {
                            "initial_prompt": "You are the front desk of a small shop.",
                            "language": "en-US",
                        },
                    },
                ]
            )
            hogs = [
                multiprocessing.Process(target=hog, args=(time.monotonic() + 120,), daemon=True)
                for _ in range(args.hog)
            ]
            for h in hogs:
                h.start()
            out = subprocess.run(
                [sys.executable, __file__, "--role", "peer", "--sip-port", str(srv.sip_port), "--turns",
                 str(args.turns), "--answer-wait", str(args.answer_wait)],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            for h in hogs:
                h.terminate()
            if out.returncode != 0:
                print(out.stderr[-3000:])
                raise SystemExit("peer failed")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            calls = srv.drain_calls(1, within=30)
            rtp = (calls[0].get("metadata") or {}).get("rtp", {}) if calls else {}
        finally:
            srv.proc.terminate()
            srv.proc.wait(20)
        log = (tmp / "server.log").read_text(errors="replace")
        warnings = [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
    print(f"\n## One ai_talk call, offline VAD + Whisper + scripted LLM + Piper, {args.turns} caller turns,"
          f" {args.hog} CPU hog process(es)")  # fmt: skip
    print(
        f"caller heard: {result.get('packets')} packets in {result.get('seconds')} s, "
        f"max gap {result.get('max_gap_ms')} ms (target <= 40), "
        f"gaps > 40 ms: {result.get('gaps_over_40ms')}, "
        f"p99 gap {result.get('p99_gap_ms')} ms"
    )
    print(
        "server metadata.rtp: "
        + ", ".join(
            f"{k}={rtp.get(k)}" for k in ("max_gap_out_ms", "late_ticks", "skipped_ticks", "packets_out")
        )
    )
    print(f"# server log: {len(warnings)} warning/error lines")
    for line in warnings[:8]:
        print(f"#   {line[:200]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", default="driver", choices=["driver", "peer"])
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--answer-wait", type=float, default=6.0, help="seconds to wait for each answer")
    ap.add_argument("--hog", type=int, default=0, help="extra CPU-spinning processes during the call")
    ap.add_argument("--sip-port", type=int, default=0)
    args = ap.parse_args()
    if args.role == "peer":
        print(json.dumps(asyncio.run(peer(args.sip_port, args.turns, args.answer_wait))))
    else:
        drive(args)


if __name__ == "__main__":
    main()
