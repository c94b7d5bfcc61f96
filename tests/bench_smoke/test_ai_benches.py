"""The AI latency benchmark still runs end to end at a tiny size (real server, fakes, SIP/RTP callers).

It prints figures, which are not asserted (timings belong to the benches); what is asserted is that
the caller's question was answered over the call, the platform recorded the turn and the one-clock
split found it. (``bench/ai_density.py`` shares its parts; run it with ``--sizes 2 --questions 1
--warmup 0`` by hand: both together took ~40 s here, over this directory's 30 s budget.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / args[0]), *args[1:]],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


def test_platform_latency_bench_answers_every_turn():
    out = run_bench("ai_platform_latency.py", "--calls", "1", "--questions", "1", "--warmup", "0")
    assert "turns answered 1, unanswered 0, caller errors 0" in out, out
    assert re.search(r"server turn records \(1 turns\)", out), out
    assert re.search(r"one clock, caller \+ fakes \(1 turns\)", out), out
