"""A real HTTP server on 127.0.0.1 (uvicorn + starlette) that records requests and answers per path."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.requests import Request
from starlette.responses import Response


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # arrival, wall clock


@dataclass
class LocalServer:
    port: int
    requests: list[Seen] = field(default_factory=list)
    routes: dict[str, Callable[[Seen], Response]] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def local_server() -> AsyncIterator[LocalServer]:
    server_state = LocalServer(port=_free_port())

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        seen = Seen(request.method, request.url.path, dict(request.headers), await request.body())
        server_state.requests.append(seen)
        server_state.arrived.set()
        route = server_state.routes.get(seen.path)
        response = route(seen) if route else Response(status_code=404)
        await response(scope, receive, send)

    config = uvicorn.Config(
        app, host="127.0.0.1", port=server_state.port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110  (uvicorn exposes only a flag)
            await asyncio.sleep(0.01)
    try:
        yield server_state
    finally:
        server.should_exit = True
        await task
