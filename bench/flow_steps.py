"""Flow engine step cost, measured side by side in one run.

Runs an API activeflow of N ``variable_set`` actions (each substituting two variables) and reports
actions per second for: (1) the pure per-action work (``${}`` substitution + option parsing, no I/O),
(2) the real engine on SQLite (state in memory while it runs — GET /activeflows answers from it —
written at start and end through the group commit; events published), and (3) the real engine with 20
activeflows running concurrently. The ratios show what a step costs beyond the pure work.

    .venv/bin/python bench/flow_steps.py [--actions 300]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from voipbin.config import Settings  # noqa: E402
from voipbin.flow.variables import substitute_value  # noqa: E402
from voipbin.models.actions import parse_option, validate_actions  # noqa: E402
from voipbin.node import build_node  # noqa: E402
from voipbin.tenants import bootstrap  # noqa: E402


def actions(n: int) -> list:
    raw = [{"type": "variable_set", "option": {"key": "v", "value": "${v}.${name}"}} for _ in range(n)]
    return validate_actions(raw)


def pure(n: int) -> float:
    variables = {"v": "", "name": "x"}
    acts = actions(n)
    started = time.perf_counter()
    for a in acts:
        sub = a.model_copy(update={"option": substitute_value(a.option, variables)})
        parse_option(sub)
        variables["v"] = sub.option["value"][:50]
    return n / (time.perf_counter() - started)


async def engine_rate(n: int, concurrent: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/b.db"
        s = Settings(data_dir=Path(tmp), database_url=url, admin_password="x" * 12)
        p = build_node(s)
        await p.db.migrate()
        created = await bootstrap(p.db, p.settings)
        assert created is not None
        engine = p.flows
        acts = actions(n)
        started = time.perf_counter()
        customer = created.customer.id
        rows = [
            await engine.create(customer, reference_type="api", actions=acts, variables={"name": "x"})
            for _ in range(concurrent)
        ]
        for row in rows:
            await engine.wait(row.id)
        elapsed = time.perf_counter() - started
        await engine.close()
        await p.writer.close()
        await p.db.close()
        return n * concurrent / elapsed


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--actions", type=int, default=300)
    n = ap.parse_args().actions
    base = pure(n)
    one = await engine_rate(n, 1)
    many = await engine_rate(max(n // 10, 10), 20)
    print(f"machine: {platform.machine()} {platform.python_version()} cpus={__import__('os').cpu_count()}")
    print(f"pure substitute+parse:        {base:10.0f} actions/s")
    print(f"engine, 1 activeflow, SQLite: {one:10.0f} actions/s  (pure/engine = {base / one:.1f}x)")
    print(f"engine, 20 concurrent:        {many:10.0f} actions/s  (vs 1 activeflow = {many / one:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
