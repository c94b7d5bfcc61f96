"""End-of-turn detection on the labelled set: delay after complete turns, cut-offs of unfinished ones.

Replays every item of ``tests/turns/labelled_set.py`` (Piper speech through G.711: complete turns and
unfinished ones with 0.3-1.0 s mid-sentence pauses) through the detector in each configuration side
by side — the old fixed 0.5 s silence, each part alone (the Smart Turn audio model, the words), each
pair, and all three (the default) — so each part's contribution reads off one table. Words come as
from a streaming STT (interim words during speech, the final at its end, no trailing punctuation),
``--text-delay`` late.

Two model speeds, because the detector cannot control the machine's load:

* ``idle``: the model's answer is delivered a fixed 100 ms after it was asked (≈ one idle core);
* ``load``: the inference time measured in this run, on this machine as loaded as it is now.

    .venv/bin/python bench/turn_detection.py [--text-delay 0 0.2] [--speed idle load]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.turns.labelled_set import HELD_OUT, Item, load_set  # noqa: E402
from tests.turns.replay import CONFIGS, DEFAULT, Outcome, replay  # noqa: E402
from voipbin.speech.turn_model import completion_probability_blocking  # noqa: E402

IDLE_LATENCY = 0.1


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _inference_ms(items: list[Item], n: int = 20) -> tuple[float, float]:
    """Median and p90 of the model's own inference time now (turn audio of a few seconds)."""
    took = []
    for it in items[:n]:
        began = time.perf_counter()
        completion_probability_blocking(it.pcm, 8000)
        took.append(time.perf_counter() - began)
    return statistics.median(took) * 1000, _pct(took, 0.9) * 1000


def _table(items: list[Item], speed: str, text_delay: float, cache: dict[tuple[str, int], float]) -> None:
    complete = [it for it in items if it.complete_only]
    unfinished = [it for it in items if not it.complete_only]
    latency = IDLE_LATENCY if speed == "idle" else None
    how = f"model answer after {IDLE_LATENCY * 1000:.0f} ms (idle core)" if latency else "inference measured"
    print(f"\n[{speed}] {how}; words {text_delay * 1000:.0f} ms behind the speech; load average {_load()}")
    print(f"{'configuration':32s} {'EOT p50':>8s} {'p90':>7s} {'cut-off':>14s} {'early':>7s} {'model':>6s}")
    cut_ids: list[str] = []
    held: dict[str, Outcome] = {}
    for name, cfg in CONFIGS.items():
        outs: dict[str, Outcome] = {
            it.spec.id: replay(
                it,
                cfg,
                model_latency=latency,
                text_delay=text_delay,
                probability=cache if latency is not None else None,
            )
            for it in items
        }
        delays = [d for it in complete if (d := outs[it.spec.id].delay) is not None]
        cut = [it.spec.id for it in unfinished if outs[it.spec.id].cut_off]
        early = sum(outs[it.spec.id].cut_off for it in complete) / len(complete)
        runs = sum(o.model_runs for o in outs.values())
        stale = sum(o.stale_runs for o in outs.values())
        if name == DEFAULT:
            cut_ids = cut
            held = {k: v for k, v in outs.items() if k in HELD_OUT}
        print(
            f"{name:32s} {statistics.median(delays) * 1000:6.0f}ms {_pct(delays, 0.9) * 1000:5.0f}ms"
            f" {len(cut) / len(unfinished) * 100:6.1f}% {len(cut):2d}/{len(unfinished)}"
            f" {early * 100:6.1f}% {runs:5d}x {stale:5d}"
        )
    by_id = {it.spec.id: it for it in items}
    h_delays = [o.delay for k, o in held.items() if by_id[k].complete_only and o.delay is not None]
    h_unfinished = [k for k in held if not by_id[k].complete_only]
    h_cut = sum(held[k].cut_off for k in h_unfinished)
    print(
        f"  default on the {len(held)} held-out turns: EOT p50 {statistics.median(h_delays) * 1000:.0f}ms,"
        f" cut-off {h_cut}/{len(h_unfinished)}"
    )
    print(
        "  cut by the default:", ", ".join(f"{i} ({by_id[i].spec.parts[0]!r} …)" for i in cut_ids) or "none"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-delay", type=float, nargs="*", default=[0.0, 0.2])
    ap.add_argument("--speed", nargs="*", choices=["idle", "load"], default=["idle", "load"])
    args = ap.parse_args()
    items = load_set()
    complete = sum(it.complete_only for it in items)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    print(
        f"labelled set: {complete} complete turns, {len(items) - complete} unfinished (mid-sentence pauses)"
    )
    p50, p90 = _inference_ms(items)
    print(f"Smart Turn inference now: median {p50:.0f} ms, p90 {p90:.0f} ms (load average {_load()})")
    cache: dict[tuple[str, int], float] = {}  # model answers are deterministic: shared by the idle runs
    for speed in args.speed:
        for text_delay in args.text_delay:
            _table(items, speed, text_delay, cache)
    print(
        "\nEOT = caller's speech end -> turn ended (complete turns, p50/p90); cut-off = unfinished turns"
        "\nended before the caller finished (in a mid-sentence pause); early = complete turns ended at an"
        "\ninner comma pause; model = Smart Turn runs; stale = runs whose answer came after the caller spoke"
        "\nagain. Targets: EOT p50 <= 250 ms, cut-off <= 10 %."
    )


if __name__ == "__main__":
    main()
