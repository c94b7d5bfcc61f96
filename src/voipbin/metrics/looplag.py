"""The control loop's lag: a task that asks to wake every ``interval`` and measures how late it woke.

A loop busy with work that does not yield (a long serialization, a synchronous call) delays every timer
on it — SIP retransmissions, the flow's timeouts, webhooks. The lateness of this one timer is that delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class LoopLagMonitor:
    def __init__(
        self,
        report: Callable[[str, float, float | None], None],
        *,
        name: str = "control",
        interval: float = 0.25,
    ) -> None:
        self.report = report  # (loop name, lag, largest lag of the interval window)
        self.name = name
        self.interval = interval
        self.last = 0.0
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        window: list[float] = []
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = max(0.0, time.perf_counter() - before - self.interval)
            self.last = lag
            self.worst = max(self.worst, lag)
            window.append(lag)
            window = window[-20:]  # the last ~5 s
            self.report(self.name, lag, max(window))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
