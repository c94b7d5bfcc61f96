"""The AI benchmarks still run end to end at tiny sizes (real server, fakes, SIP/RTP callers).

They print figures, which are not asserted (timings belong to the benches); what is asserted is that
every caller's question was answered over the call and the platform recorded the turns.
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


def test_density_bench_answers_every_turn():
    out = run_bench("ai_density.py", "--sizes", "2", "--questions", "1", "--ramp", "1", "--warmup", "0")
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("2 "))
    assert row[1:3] == ["2", "0"], out  # N=2: two turns answered, none unanswered
