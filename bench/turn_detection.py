"""End-of-turn detection on the labelled set: delay after complete turns, cut-offs of unfinished ones.

Replays every item of ``tests/turns/labelled_set.py`` (Piper speech through G.711, 24 complete and
24 unfinished turns with 0.3-1.0 s mid-sentence pauses) through the detector in each configuration
side by side — the old fixed 0.5 s silence, the Smart Turn audio model alone, + the words, + the
adaptive wait — with the model's real inference time on this machine as its delay. Words come as
from a streaming STT (interim words during speech, the final at its end), ``--text-delay`` late.

    .venv/bin/python bench/turn_detection.py [--text-delay 0.2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.turns.labelled_set import load_set  # noqa: E402
from tests.turns.replay import CONFIGS, Outcome, replay  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-delay", type=float, nargs="*", default=[0.0, 0.2])
    ap.add_argument(
        "--model-latency", type=float, default=None, help="simulated model delay (s); default: measured"
    )
    args = ap.parse_args()
    items = load_set()
    complete = [it for it in items if it.complete_only]
    unfinished = [it for it in items if not it.complete_only]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"labelled set: {len(complete)} complete turns, {len(unfinished)} unfinished (mid-sentence pauses)")
    for text_delay in args.text_delay:
        how = "measured inference" if args.model_latency is None else f"{args.model_latency * 1000:.0f} ms"
        print(f"\nwords {text_delay * 1000:.0f} ms behind the speech; model delay = {how}")
        print(
            f"{'configuration':34s} {'EOT p50':>10s} {'p90':>6s} {'cut-off':>8s} {'early':>6s} {'model':>7s}"
        )
        for name, cfg in CONFIGS.items():
            outs: dict[str, Outcome] = {
                it.spec.id: replay(it, cfg, model_latency=args.model_latency, text_delay=text_delay)
                for it in items
            }
            delays = [outs[it.spec.id].delay for it in complete if outs[it.spec.id].delay is not None]
            cut = sum(outs[it.spec.id].cut_off for it in unfinished) / len(unfinished)
            early = sum(outs[it.spec.id].cut_off for it in complete) / len(complete)
            runs = sum(o.model_runs for o in outs.values())
            print(
                f"{name:34s} {statistics.median(delays) * 1000:8.0f}ms {_pct(delays, 0.9) * 1000:4.0f}ms"
                f" {cut * 100:7.1f}% {early * 100:5.1f}% {runs:5d}x"
            )
    print(
        "\nEOT = caller's speech end -> turn ended (complete turns); cut-off = unfinished turns ended in a"
        "\nmid-sentence pause; early = complete turns ended at an inner comma pause; model = Smart Turn runs."
    )


if __name__ == "__main__":
    main()
