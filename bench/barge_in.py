"""Barge-in over SIP/RTP: caller voice onset -> our audio silent, at the caller; and backchannels.

    .venv/bin/python bench/barge_in.py [--trials 10] [--skip-set]

Part 1 (all on 127.0.0.1, each side in its own process): ``voipbin serve`` (as
bench/calls_platform.py starts it) with a number routed to ``answer -> ai_talk`` on the offline
engines (VAD, Whisper tiny.en, ``offline.scripted``, Piper). The caller (``--role peer``, its own
process and media engine) asks a long question; one second into the answer it says "Stop, stop,
stop." (pre-synthesised by Piper). It timestamps every RTP packet as it leaves its socket and as it
arrives (before its own jitter buffer), decodes them, and measures per trial:

    onset   = the first packet it sends whose audio is loud (>= -40 dBFS, VAD's min_volume 0.6);
              also printed from the first voiced packet (>= -30 dBFS: a word's first hiss is not)
    silence = the first packet it receives after that from which the platform sends 100 ms of
              silence (< -55 dBFS)

``silence - onset`` is what the caller experiences: our inbound jitter buffer (80 ms), the frame
batching to the AI, the onset detector (40 ms of voice), the pause and the next 20 ms tick. The
server's own per-turn figures (``metadata.barge_ins``: detect / reaction / confirm) are printed too.

Part 2 (offline, no SIP): the labelled barge-in set (tests/turns/backchannel_set.py: 48
backchannels, 24 interruptions, Piper through G.711) through the session's decision rule: the
false-interruption rate (backchannels that would cancel the reply) and the missed-interruption rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

QUESTION = "Please tell me about the weather in Paris and in London and in Berlin tomorrow morning."
STOP = "Stop, stop, stop."
LOUD_DB = -40.0
VOICED_DB = -30.0  # a word's voiced part (its first hiss, e.g. the "s" of "stop", is -40..-55 dBFS)
QUIET_DB = -55.0


def _db(pcm: bytes) -> float:
    from voipbin.speech.audio import dbfs

    return dbfs(pcm)


async def peer(sip_port: int, trials: int) -> dict:
    import numpy as np

    from voipbin.media import MediaSession
    from voipbin.media.g711 import alaw_decode, ulaw_decode
    from voipbin.phone.speech import synthesize
    from voipbin.sip import SipEndpoint, build_sdp

    question = np.frombuffer(await synthesize(QUESTION, "piper"), dtype=np.int16)
    stop = np.frombuffer(await synthesize(STOP, "piper"), dtype=np.int16)
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    ms = await MediaSession.create(host="127.0.0.1")
    arrivals: list[tuple[float, float]] = []  # (time, dBFS) of what the platform sends
    sent: list[tuple[float, float]] = []  # (time, dBFS) of what we send

    def decode(data: bytes) -> float:
        pt = data[1] & 0x7F
        if pt not in (0, 8):
            return -100.0
        payload = data[12 + 4 * (data[0] & 0x0F) :]
        return _db(ulaw_decode(payload) if pt == 0 else alaw_decode(payload))

    orig_rx = ms.rtp._on_rtp

    def on_rtp(data: bytes, addr: tuple[str, int]) -> None:  # the peer's media thread
        arrivals.append((time.monotonic(), decode(data)))
        orig_rx(data, addr)

    ms.rtp._on_rtp = on_rtp  # type: ignore[method-assign]
    ms.rtp.set_arrival_reads(True)  # timestamp each packet when it arrives, not at the next tick
    orig_tx = ms.rtp.stream.send

    def on_send(datagram: bytes) -> None:
        sent.append((time.monotonic(), decode(datagram)))
        orig_tx(datagram)

    ms.rtp.stream.send = on_send
    results: list[dict] = []
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
        await asyncio.sleep(1.5)
        for _ in range(trials):
            await ms.play_pcm(question)
            asked = time.monotonic()
            # Wait for the answer to be playing for a second (loud packets arriving).
            talk_from = None
            while time.monotonic() - asked < 20:
                await asyncio.sleep(0.05)
                loud = [t for t, d in arrivals if t > asked and d > LOUD_DB]
                if loud and talk_from is None:
                    talk_from = loud[0]
                if talk_from is not None and time.monotonic() - talk_from > 1.0:
                    break
            if talk_from is None:
                results.append({"error": "no answer"})
                continue
            mark = time.monotonic()
            await ms.play_pcm(stop)
            await asyncio.sleep(4.0)  # the answer to "stop" plays out
            onset = next((t for t, d in sent if t >= mark and d > LOUD_DB), None)
            voiced = next((t for t, d in sent if t >= mark and d > VOICED_DB), None)
            if onset is None or voiced is None:
                results.append({"error": "onset not sent"})
                continue
            after = [(t, d) for t, d in arrivals if t >= onset]
            silence = None
            for i in range(len(after) - 5):
                if all(d < QUIET_DB for _, d in after[i : i + 5]):
                    silence = after[i][0]
                    break
            results.append(
                {
                    "latency_ms": None if silence is None else round((silence - onset) * 1000, 1),
                    "voiced_ms": None if silence is None else round((silence - voiced) * 1000, 1),
                }
            )
            await asyncio.sleep(1.0)
        await res.call.bye()
    finally:
        await ms.close()
        await ep.stop()
    return {"trials": results}


def drive(args: argparse.Namespace) -> None:
    import subprocess

    from calls_platform import machine, start_server

    print(f"# machine: {machine()}")
    print(f"# load average before: {os.getloadavg()[0]:.2f} (shared machine: figures are noisy)")
    with tempfile.TemporaryDirectory(prefix="voipbin-bargein-") as tmp_name:
        tmp = Path(tmp_name)
        srv = start_server(tmp)
        try:
            srv.route(
                [
                    {"type": "answer"},
                    {"type": "ai_talk", "option": {"initial_prompt": "You are a shop.", "language": "en-US"}},
                ]
            )
            out = subprocess.run(
                [sys.executable, __file__, "--role", "peer", "--sip-port", str(srv.sip_port),
                 "--trials", str(args.trials)],
                capture_output=True, text=True, timeout=60 + 30 * args.trials,
            )  # fmt: skip
            if out.returncode != 0:
                print(out.stderr[-3000:])
                raise SystemExit("peer failed")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            srv.drain_calls(1, within=30)
            time.sleep(1.0)
            aicalls = srv.http.get("/v1.0/aicalls", params={"page_size": 10}).json().get("result") or []
        finally:
            srv.proc.terminate()
            srv.proc.wait(20)
        log = (tmp / "server.log").read_text(errors="replace")
    lat = [t["latency_ms"] for t in result.get("trials", []) if t.get("latency_ms") is not None]
    errors = [t for t in result.get("trials", []) if "error" in t or t.get("latency_ms") is None]
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    print("\n## Barge-in over SIP: caller voice onset -> our audio silent, at the caller's socket")
    if lat:
        lat.sort()
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
        print(
            f"trials {len(lat)}: p50 {statistics.median(lat):.0f} ms, p95 {p95:.0f} ms, "
            f"min {lat[0]:.0f}, max {lat[-1]:.0f} (target p95 <= 120 ms)"
        )
        print(f"all: {lat}")
        vo = sorted(t["voiced_ms"] for t in result["trials"] if t.get("voiced_ms") is not None)
        p95v = vo[min(len(vo) - 1, round(0.95 * (len(vo) - 1)))]
        print(
            f"from the first voiced packet (>= {VOICED_DB:.0f} dBFS) instead: "
            f"p50 {statistics.median(vo):.0f} ms, p95 {p95v:.0f} ms; all: {vo}"
        )
    print(f"failed trials: {len(errors)} {errors[:3]}")
    for ai in aicalls:
        meta = ai.get("metadata") or {}
        barges = meta.get("barge_ins") or []
        if barges:
            detect = [b["detect_ms"] for b in barges]
            react = [b["reaction_ms"] for b in barges]
            print(
                f"server side ({len(barges)} barge-ins): onset -> detected (listener clock, after the jitter "
                f"buffer) median {statistics.median(detect):.0f} ms, detected -> paused median "
                f"{statistics.median(react):.0f} ms; false interruptions: "
                f"{[(f['reason'], f['paused_ms']) for f in meta.get('false_interruptions') or []]}"
            )
            print(f"ignored speech: {meta.get('ignored_speech')}")
    warnings = [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
    print(f"# server log: {len(warnings)} warning/error lines")
    for line in warnings[:5]:
        print(f"#   {line[:200]}")


async def labelled_set() -> None:
    from tests.turns.backchannel_set import decide, load_set
    from voipbin.speech.stt_whisper import whisper_model

    await asyncio.to_thread(whisper_model)
    clips = await asyncio.to_thread(load_set)
    decisions = [await decide(c) for c in clips]
    backs = [d for d in decisions if d.clip.backchannel]
    inter = [d for d in decisions if not d.clip.backchannel]
    false = [d for d in backs if d.interrupted]
    missed = [d for d in inter if not d.interrupted]
    paused = sum(d.paused for d in decisions)
    print("\n## Labelled barge-in set (Piper through G.711, offline Whisper tiny.en)")
    print(f"voice onsets that paused our audio: {paused}/{len(decisions)}")
    print(
        f"false interruptions (backchannel cancelled the reply): {len(false)}/{len(backs)} "
        f"= {100 * len(false) / len(backs):.1f} % (target <= 5 %)"
    )
    print(f"missed interruptions (real words resumed the reply): {len(missed)}/{len(inter)}")
    for d in false + missed:
        print(f"#   {d.clip.id} {d.clip.text!r} heard {d.heard!r} voice {d.voiced_secs:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", default="driver", choices=["driver", "peer"])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--sip-port", type=int, default=0)
    ap.add_argument("--skip-set", action="store_true", help="only the SIP part")
    args = ap.parse_args()
    if args.role == "peer":
        print(json.dumps(asyncio.run(peer(args.sip_port, args.trials))))
        return
    drive(args)
    if not args.skip_set:
        asyncio.run(labelled_set())


if __name__ == "__main__":
    main()
