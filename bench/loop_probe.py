"""A fine-grained control-loop lag probe (and optional stall recorder) for ``voipbin serve`` in benches.

The server's own ``voipbin_event_loop_lag_seconds`` samples every 250 ms into coarse buckets (<=10,
<=20, <=50 ms...): ~4 samples a second, so a run's p99 is its 2nd-worst sample and a 12 ms stall reads
"<=20 ms". This probe runs a 5 ms timer on the control loop and records how late each one fires
(0.25 ms buckets): "stalls" are the firings late by more than 10 ms, i.e. the loop ran one callback
(or one iteration of callbacks, or waited for the GIL) for over 10 ms.

Loaded into the server process by ``bench/loop_probe_site/sitecustomize.py`` when the bench puts that
directory on ``PYTHONPATH`` and sets ``VOIPBIN_BENCH_LOOP_PROBE`` to a file: the probe attaches to the
first event loop that starts running on the main thread (the control loop; the media engine's loop runs
in a thread of its own) and rewrites the file (JSON) every second. ``VOIPBIN_BENCH_LOOP_STACKS=1`` adds
a watchdog thread that samples the main thread's Python stack during each stall and counts stacks
(diagnosis only: its 2 ms wake-ups cost the loop a little).
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
import traceback
from typing import Any

PERIOD = 0.005
BUCKET_MS = 0.25
STALL_MS = 10.0


class Probe:
    def __init__(self, path: str, stacks: bool) -> None:
        self.path = path
        self.counts: collections.Counter[int] = collections.Counter()  # bucket index -> firings
        self.stalls = 0
        self.max_ms = 0.0
        self.tick = time.monotonic()  # last time the loop ran the probe (the watchdog reads it)
        self.stacks: collections.Counter[str] = collections.Counter()
        self.stall_samples = 0
        self._due = 0.0
        self._want_stacks = stacks
        self._main = threading.main_thread().ident
        # Collector pauses (any thread's: the collector holds the GIL): how many, how long, and how
        # many stalls they explain (a stall whose probe interval held >= half its lateness in GC).
        self.gc_count = 0
        self.gc_over_5ms: collections.Counter[str] = collections.Counter()  # by generation
        self.gc_max_ms = 0.0
        self.gc_stalls = 0
        self._gc_since_fire = 0.0
        self._gc_start = 0.0

    def gc_event(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            return
        ms = (time.perf_counter() - self._gc_start) * 1000
        self.gc_count += 1
        if ms > 5:
            self.gc_over_5ms[str(info.get("generation"))] += 1
        self.gc_max_ms = max(self.gc_max_ms, ms)
        self._gc_since_fire += ms

    def attach(self, loop: Any) -> None:
        import gc

        gc.callbacks.append(self.gc_event)
        self._due = time.monotonic() + PERIOD
        loop.call_later(PERIOD, self._fire, loop)
        threading.Thread(target=self._dump_forever, name="bench-loop-probe", daemon=True).start()
        if self._want_stacks:
            threading.Thread(target=self._watch, name="bench-loop-stacks", daemon=True).start()

    def _fire(self, loop: Any) -> None:
        now = time.monotonic()
        late = max(0.0, (now - self._due) * 1000)
        self.counts[int(late / BUCKET_MS)] += 1
        if late > STALL_MS:
            self.stalls += 1
            self.gc_stalls += self._gc_since_fire >= late / 2
        self._gc_since_fire = 0.0
        self.max_ms = max(self.max_ms, late)
        self.tick = now
        self._due = now + PERIOD
        loop.call_later(PERIOD, self._fire, loop)

    def _watch(self) -> None:
        frames = sys._current_frames
        while True:
            time.sleep(0.002)
            if time.monotonic() - self.tick < (PERIOD + STALL_MS / 1000):
                continue
            frame = frames().get(self._main)  # type: ignore[arg-type]
            if frame is None:
                continue
            summary = traceback.extract_stack(frame)[-14:]
            where = (f"{os.path.basename(f.filename)}:{f.lineno}:{f.name}" for f in reversed(summary))
            key = " <- ".join(where)
            self.stacks[key] += 1
            self.stall_samples += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "bucket_ms": BUCKET_MS, "counts": {str(k): v for k, v in sorted(self.counts.items())},
            "stalls": self.stalls, "max_ms": round(self.max_ms, 2), "stall_samples": self.stall_samples,
            "stacks": dict(self.stacks.most_common(60)), "gc_count": self.gc_count,
            "gc_over_5ms": dict(self.gc_over_5ms), "gc_max_ms": round(self.gc_max_ms, 2),
            "gc_stalls": self.gc_stalls,
        }  # fmt: skip

    def _dump_forever(self) -> None:
        tmp = self.path + ".tmp"
        while True:
            time.sleep(1.0)
            with open(tmp, "w") as f:
                json.dump(self.snapshot(), f)
            os.replace(tmp, self.path)


def install() -> None:
    """Wrap ``asyncio._set_running_loop`` (which uvloop captures at its import) to find the control loop."""
    path = os.environ.get("VOIPBIN_BENCH_LOOP_PROBE")
    if not path:
        return
    if "voipbin.media.worker" in sys.orig_argv:
        # Media workers inherit the environment. They used to rewrite the control loop's file (the
        # run's figures then mixed processes: negative stall counts); they get a file of their own,
        # and only when diagnosing stalls (the probe's timer and threads cost a worker a little).
        if os.environ.get("VOIPBIN_BENCH_LOOP_STACKS") != "1":
            return
        path = f"{path}.worker-{os.getpid()}"
    import asyncio
    import asyncio.events

    probe = Probe(path, os.environ.get("VOIPBIN_BENCH_LOOP_STACKS") == "1")
    original = asyncio.events._set_running_loop
    attached = False

    def set_running_loop(loop: Any) -> None:
        nonlocal attached
        original(loop)
        if loop is not None and not attached and threading.current_thread() is threading.main_thread():
            attached = True
            probe.attach(loop)

    asyncio.events._set_running_loop = set_running_loop
    asyncio._set_running_loop = set_running_loop  # type: ignore[attr-defined]


# -- the bench side ---------------------------------------------------------------------------------


def read(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return {"counts": {}, "stalls": 0, "max_ms": 0.0, "stacks": {}, "stall_samples": 0}  # not written yet


def summary(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """p50/p99/max lag (ms) and stalls of the firings between two snapshots."""
    delta = {int(k): v - before["counts"].get(k, 0) for k, v in after["counts"].items()}
    total = sum(delta.values())
    out: dict[str, Any] = {"samples": total, "stalls": after["stalls"] - before["stalls"]}
    for key in ("gc_count", "gc_stalls"):
        out[key] = after.get(key, 0) - before.get(key, 0)
    slow, slow0 = after.get("gc_over_5ms", {}), before.get("gc_over_5ms", {})
    out["gc_over_5ms"] = {g: n - slow0.get(g, 0) for g, n in sorted(slow.items()) if n > slow0.get(g, 0)}
    out["gc_max_ms"] = after.get("gc_max_ms", 0.0)  # since the server started
    width = float(after.get("bucket_ms", BUCKET_MS))
    for q in (0.5, 0.99):
        seen = 0
        out[q] = float("nan")
        for k in sorted(delta):
            seen += delta[k]
            if total and seen >= q * total:
                out[q] = (k + 1) * width  # the bucket's upper bound
                break
    top = max((k for k, v in delta.items() if v > 0), default=-1)
    out["max"] = (top + 1) * width if top >= 0 else float("nan")
    stacks = {k: v - before["stacks"].get(k, 0) for k, v in after["stacks"].items()}
    out["stacks"] = sorted(((v, k) for k, v in stacks.items() if v > 0), reverse=True)
    return out
