"""AI call density: N concurrent ``ai_talk`` calls on one ``voipbin serve`` with cloud-like fake providers.

    .venv/bin/python bench/ai_density.py [--sizes 20,40,60,80] [--questions 4] [--ramp 10]

The same parts as bench/ai_platform_latency.py, each in its own process on 127.0.0.1: the fake
providers (OpenAI SSE with a 350 ms first token, Deepgram live STT with 300 ms endpointing,
ElevenLabs stream-input with 200 ms to first audio), ``voipbin serve`` (SQLite, uvloop), and the
callers (SIP UAs with a minimal RTP phone each; up to ``--per-proc`` per process). For each N the
calls start evenly over ``--ramp`` seconds, so new AI calls are set up while the earlier ones talk;
each caller asks ``--questions`` questions (Piper speech), waits for the answer to finish, then asks
the next one.

Printed per N:

* turn latency, the caller's measure (its speech end -> first audio back) and the platform's own
  (``turn.first_audio_out_ms`` of the assistant aimessages), p50/p95; the fixed provider part
  (300 + 20 + 350 + 200 = 870 ms) is in both;
* the control loop's lag p50/p99/max and its stalls ("> 10ms": how often a 5 ms probe timer fired
  more than 10 ms late, i.e. a callback, a loop iteration or a GIL wait held the loop that long), from
  bench/loop_probe.py loaded into the server (0.25 ms buckets, ~200 samples a second); "lag p99" is the
  server's own ``voipbin_event_loop_lag_seconds`` (a timer every 250 ms, the upper bound of its coarse
  bucket; "lags": its samples in the run). ``--stacks`` also samples the control thread's Python stack
  during stalls and prints the most frequent;
* RTP at the callers: the largest inter-arrival gap of any call, and how many calls had a gap > 40 ms,
  by the kernel's receive stamps (``SO_TIMESTAMPNS``: on loopback, when the platform sent; a caller
  process descheduled on the shared cores no longer counts its own stall); "sent gap": the same
  at the server as it sent (``metadata.rtp.max_gap_out_ms``; "late": its late media ticks, all
  calls); "callers late" is the callers' own worst clock stall (their outbound frames, which the
  platform's inbound jitter handling absorbs);
* lost STT streams (server log lines of Deepgram stream failures / STT errors) and unanswered turns;
* CPU: the server's share of a core over the run, and the callers' and fakes' (they share the 2 cores).

Targets (issue 10): >= 60 calls with loop lag p99 < 10 ms and no RTP gap > 40 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ai_platform_latency as apl
import loop_probe
from calls_platform import CpuSampler, cpu_seconds, kill_all, machine, start_server

LLM_MS, TTS_MS = 350.0, 200.0
SITE_DIR = str(Path(__file__).resolve().parent / "loop_probe_site")  # its sitecustomize loads the probe
FIXED_MS = apl.ENDPOINTING_MS + apl.FRAME_MS + LLM_MS + TTS_MS


def lost_stt(lines: list[str]) -> int:
    keys = ("deepgram", "stt ", "SpeechTimeout", "SpeechConnectionError")
    return sum(1 for line in lines if any(k in line for k in keys))


def run_size(srv: apl.Any, fakes_pid: int, n: int, args: argparse.Namespace, metrics_port: int,
             seen: set[str], tmp: Path, log_from: int) -> dict[str, apl.Any]:  # fmt: skip
    before = apl.scrape(metrics_port)
    probe0 = loop_probe.read(args.probe_file)
    sampler = CpuSampler(srv.pid)
    sampler.start()
    cpu0, fcpu0, t0 = cpu_seconds(srv.pid), cpu_seconds(fakes_pid), time.monotonic()
    procs = []
    per = math.ceil(n / math.ceil(n / args.per_proc))
    for first in range(0, n, per):
        k = min(per, n - first)
        procs.append(apl.start_callers(srv.sip_port, k, first, args.questions, args.ramp, 20))
    pids = [p.pid for p in procs]
    ccpu: dict[int, float] = {}

    def sample_callers() -> None:
        for pid in pids:
            with contextlib.suppress(OSError):
                ccpu[pid] = cpu_seconds(pid)

    # The callers' CPU, sampled until they exit (they are reaped by collect_callers).
    import threading

    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            sample_callers()
            stop.wait(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    callers = apl.collect_callers(procs, 900)
    stop.set()
    wall = time.monotonic() - t0
    cpu, fcpu = cpu_seconds(srv.pid) - cpu0, cpu_seconds(fakes_pid) - fcpu0
    sampler.stop.set()
    after = apl.scrape(metrics_port)
    time.sleep(1.1)  # the probe rewrites its file every second
    probe = loop_probe.summary(probe0, loop_probe.read(args.probe_file))
    rtp = [c.get("metadata", {}).get("rtp") or {} for c in srv.drain_calls(n, within=30)]
    sent_gaps = [float(r["max_gap_out_ms"]) for r in rtp if "max_gap_out_ms" in r]
    turns, _ = apl.ai_turns(srv, seen)
    lines = apl.server_log_problems(tmp)[log_from:]
    h0 = apl.histogram(before, "voipbin_event_loop_lag_seconds", loop="control")
    h1 = apl.histogram(after, "voipbin_event_loop_lag_seconds", loop="control")
    lag = {q: apl.hist_quantile(h0, h1, q) for q in (0.5, 0.99, 1.0)}
    lat = [x for c in callers for x in c["latencies_ms"]]
    server_lat = [float(t["first_audio_out_ms"]) for t in turns if t.get("first_audio_out_ms") is not None]
    gaps = [c["max_gap_ms"] for c in callers if c["max_gap_ms"] is not None]
    return {
        "n": n, "probe": probe, "lat": lat, "server_lat": server_lat, "lag": lag,
        "clock_late": max(c["clock_late_ms"] for c in callers),
        "max_gap": max(gaps) if gaps else float("nan"), "over40": sum(1 for g in gaps if g > 40),
        "sent_gap": max(sent_gaps) if sent_gaps else float("nan"),
        "sent_over40": sum(1 for g in sent_gaps if g > 40),
        "late_ticks": sum(int(r.get("late_ticks", 0)) for r in rtp),
        "errors": [c["error"] for c in callers if c["error"]],
        "unanswered": sum(c["unanswered"] for c in callers), "lost_stt": lost_stt(lines),
        "cpu": cpu / wall, "fakes_cpu": fcpu / wall, "callers_cpu": sum(ccpu.values()) / wall,
        "wall": wall, "problems": lines, "load": os.getloadavg(),
    }  # fmt: skip


def drive(args: argparse.Namespace) -> None:
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"# machine: {machine()}")
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(2 cores shared with other engineers' test runs: figures are noisy)")  # fmt: skip
    print(f"# fake providers: STT final {apl.ENDPOINTING_MS}+{apl.FRAME_MS} ms, "
          f"LLM first token {LLM_MS:.0f} ms, TTS first audio {TTS_MS:.0f} ms "
          f"-> fixed {FIXED_MS:.0f} ms in every turn")  # fmt: skip
    print(f"# each call: {args.questions} questions; calls start evenly over {args.ramp:.0f} s; "
          f"turn model: {'none' if args.no_smart_turn else 'smart-turn (the default)'}")  # fmt: skip
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="voipbin-aidensity-") as tmp_name:
            tmp = Path(tmp_name)
            fakes, urls = apl.start_fakes(LLM_MS, TTS_MS)
            metrics_port = apl.free_port()
            apl.provider_env(urls, metrics_port)
            if args.no_smart_turn:  # the node's default turn model off: silence + words end turns
                os.environ["VOIPBIN_TURN_MODEL"] = "none"
            # The fine loop probe (bench/loop_probe.py) in the server process only.
            args.probe_file = str(tmp / "loop-probe.json")
            probe_env = {
                "PYTHONPATH": os.pathsep.join([SITE_DIR, os.environ.get("PYTHONPATH", "")]),
                "VOIPBIN_BENCH_LOOP_PROBE": args.probe_file,
                "VOIPBIN_BENCH_LOOP_STACKS": "1" if args.stacks else "0",
            }
            saved = {k: os.environ.get(k) for k in probe_env}
            os.environ.update(probe_env)
            try:
                srv = start_server(tmp)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            srv.route(apl.ai_flow())
            seen: set[str] = set()
            if args.warmup:  # one call first: imports, connection pools on the server
                apl.collect_callers([apl.start_callers(srv.sip_port, 1, 900, 1, 0, 20)], 120)
                time.sleep(1.0)
                srv.drain_calls(1, within=20)
                apl.ai_turns(srv, seen)
            print(
                f"\n{'N':>4} {'turns':>5} {'unans':>5} {'caller p50/p95 ms':>18} {'server p50/p95 ms':>18} "
                f"{'loop p50/p99/max ms':>19} {'>10ms':>5} {'lag p99':>8} {'lags':>4} "
                f"{'max gap':>8} {'>40ms':>5} {'sent gap':>8} {'>40ms':>5} {'late':>4} {'lost stt':>8} "
                f"{'callers late':>12} {'srv core':>8} {'callers':>7} {'fakes':>5} {'load1':>5}"
            )
            log_from = 0  # server log lines already counted for an earlier size
            for n in sizes:
                r = run_size(srv, fakes.pid, n, args, metrics_port, seen, tmp, log_from)
                log_from += len(r["problems"])
                results.append(r)
                ctl, samples = r["lag"][0.99]
                pr = r["probe"]
                loop_cols = f"{pr[0.5]:.2f}/{pr[0.99]:.2f}/{pr['max']:.1f}"
                print(
                    f"{n:>4} {len(r['lat']):>5} {r['unanswered']:>5} "
                    f"{apl.pct(r['lat'], 50):>8.0f}/{apl.pct(r['lat'], 95):<8.0f} "
                    f"{apl.pct(r['server_lat'], 50):>8.0f}/{apl.pct(r['server_lat'], 95):<8.0f} "
                    f"{loop_cols:>19} {pr['stalls']:>5} {'<=' + format(ctl * 1000, '.0f') + 'ms':>8} "
                    f"{samples:>4} "
                    f"{r['max_gap']:>6.1f}ms {r['over40']:>5} {r['sent_gap']:>6.1f}ms {r['sent_over40']:>5} "
                    f"{r['late_ticks']:>4} {r['lost_stt']:>8} {r['clock_late']:>10.0f}ms "
                    f"{r['cpu']:>8.2f} {r['callers_cpu']:>7.2f} "
                    f"{r['fakes_cpu']:>5.2f} {r['load'][0]:>5.2f}",
                    flush=True,
                )
                print(
                    f"#   loop stalls > 10 ms: {pr['stalls']}, {pr['gc_stalls']} in a collector pause; "
                    f"collections {pr['gc_count']}, over 5 ms by generation {pr['gc_over_5ms']} "
                    f"(longest since start {pr['gc_max_ms']:.1f} ms)"
                )
                if args.stacks:
                    total = sum(v for v, _ in pr["stacks"])
                    print(f"#   stall stacks ({total} samples), most frequent first:")
                    for count, stack in pr["stacks"][:15]:
                        print(f"#   {count:>5} {stack}")
                    for wpath in sorted(glob.glob(args.probe_file + ".worker-*")):
                        w = loop_probe.read(wpath)  # since the worker started (workers come and go)
                        pid = wpath.rsplit("-", 1)[-1]
                        print(
                            f"#   media worker {pid}: loop stalls > 10 ms {w.get('stalls')}, max "
                            f"{w.get('max_ms')} ms, longest collection {w.get('gc_max_ms')} ms"
                        )
                        for stack, count in list(w.get("stacks", {}).items())[:8]:
                            print(f"#     {count:>5} {stack}")
                if r["errors"]:
                    print(f"#   caller errors: {len(r['errors'])} {r['errors'][:3]}")
                time.sleep(2.0)
            fakes.communicate("", timeout=10)
            problems = apl.server_log_problems(tmp)
    finally:
        kill_all()
    print("target: >= 60 calls with control-loop lag p99 < 10 ms and no RTP gap > 40 ms at the callers")
    print(f"# server log: {len(problems)} warning/error lines")
    for count, kind in apl.problem_kinds(problems, 12):
        print(f"#   {count:>5} x {kind}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20,40,60,80")
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--ramp", type=float, default=10.0, help="seconds over which each size's calls start")
    ap.add_argument("--no-smart-turn", action="store_true", help="VOIPBIN_TURN_MODEL=none (side by side)")
    ap.add_argument("--warmup", type=int, default=1, help="0: no warm-up call (smoke tests)")
    ap.add_argument("--stacks", action="store_true", help="sample the control thread's stack in each stall")
    ap.add_argument("--per-proc", type=int, default=40, help="callers per caller process")
    drive(ap.parse_args())


if __name__ == "__main__":
    main()
