"""``VOIPBIN_METRICS_PORT``: ``/metrics`` on a port of its own, served by uvicorn on the node's loop
(prometheus-client's own server runs in a thread, where reading the node's live state is not safe)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn
from prometheus_client import make_asgi_app
from prometheus_client.registry import CollectorRegistry


class _NoSignals(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:  # the API server handles SIGTERM
        yield


class MetricsServer:
    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        config = uvicorn.Config(
            make_asgi_app(registry),
            host=host,
            port=port,
            lifespan="off",
            log_config=None,  # the process's logging is the API server's: leave it alone
        )
        self._server = _NoSignals(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self, within: float = 10.0) -> None:
        self._task = asyncio.get_running_loop().create_task(self._server.serve(), name="metrics-server")
        async with asyncio.timeout(within):
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # raises why it could not start (port in use...)
                    raise OSError("the metrics server stopped")
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
