"""A tiny HTTP/1.1 server on 127.0.0.1 that LLM fake providers build on.

Hand-written on raw asyncio streams (not starlette/uvicorn) because the tests need control an
ASGI server does not give: send the headers and one SSE event and then go silent (stall), cut the
TCP connection in the middle of a chunked body (drop), and notice the exact moment the client
hangs up (cancellation tests). Each provider module (``llm_openai``, ``llm_anthropic``,
``llm_gemini``) only renders a scripted :class:`Reply` into that provider's wire events.

Usage::

    async with FakeOpenAI() as fake:
        fake.push(Reply(text=["Hel", "lo"]))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="k")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
_REASONS |= {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
_REASONS |= {529: "Overloaded"}


@dataclass
class Fault:
    """What goes wrong. ``status``: answer with an error (``status``, provider error JSON, headers).
    ``stall``: send ``after`` events then nothing, ever. ``drop``: send ``after`` events then abort
    the TCP connection. ``stream_error``: send ``after`` events, then the provider's in-stream error
    event, then end the body."""

    kind: Literal["status", "stall", "drop", "stream_error"]
    status: int = 500
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 1

    @classmethod
    def http(cls, status: int, message: str = "scripted failure", **headers: str) -> Fault:
        return cls(
            "status",
            status=status,
            message=message,
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )

    @classmethod
    def stall(cls, after: int = 1) -> Fault:
        return cls("stall", after=after)

    @classmethod
    def drop(cls, after: int = 1) -> Fault:
        return cls("drop", after=after)

    @classmethod
    def stream_error(cls, after: int = 1, message: str = "overloaded") -> Fault:
        return cls("stream_error", after=after, message=message)


@dataclass
class FakeToolCall:
    id: str
    name: str
    # The JSON argument text split as the provider would stream it.
    argument_chunks: list[str] = field(default_factory=lambda: ["{}"])


@dataclass
class Reply:
    """One scripted model answer, rendered into each provider's own event stream."""

    text: list[str] = field(default_factory=lambda: ["Hello", ", how can", " I help?"])
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    input_tokens: int = 21  # total prompt, including the cached part
    cached_input_tokens: int = 5
    output_tokens: int = 7
    fault: Fault | None = None
    delay: float = 0.0  # seconds between events (slow streams for cancellation tests / benches)
    # Seconds between the opening event and the next one: the model's time to first token (benches).
    first_delay: float = 0.0


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    # Set when the client closes the connection before the response was complete.
    client_gone: asyncio.Event = field(default_factory=asyncio.Event)
    completed: bool = False
    dropped_by_server: bool = False
    received_at: float = field(default_factory=time.monotonic)  # benches line stages up by it
    first_sent_at: float | None = None  # when the first token's event was written (benches)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class FakeLLMServer:
    """Base: HTTP plumbing, a queue of scripted replies, and a log of requests."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self.requests: list[Request] = []
        # When set, requests without this API key get the provider's 401.
        self.expected_key: str | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- subclass API ------------------------------------------------------------------------
    def matches(self, method: str, path: str) -> bool:
        raise NotImplementedError

    def render(self, request: Request, reply: Reply) -> list[bytes]:
        """The SSE events (each a complete ``...\\n\\n`` block) for a successful reply."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def stream_error_event(self, message: str) -> bytes:
        """The provider's error event inside an otherwise successful (200) stream."""
        raise NotImplementedError

    def request_key(self, request: Request) -> str | None:
        """The API key the client sent, wherever this provider's clients put it."""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        return request.headers.get("x-api-key") or request.headers.get("x-goog-api-key")

    # -- public ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def start(self) -> FakeLLMServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> FakeLLMServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- HTTP --------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            await self._respond(request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Server shutdown. Swallowed: asyncio.streams (3.11) logs a cancelled handler as an error.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        line = await reader.readline()
        if not line:
            return None
        method, target, _version = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readline()).strip(), 16)
                if size == 0:
                    await reader.readline()
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(chunks)
        parts = urlsplit(target)
        return Request(method, parts.path, parts.query, headers, body)

    @staticmethod
    def _head(status: int, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _send_json(
        self, writer: asyncio.StreamWriter, status: int, payload: Any, extra: dict[str, str]
    ) -> None:
        body = json.dumps(payload).encode()
        headers = {
            "content-type": "application/json",
            "content-length": str(len(body)),
            "connection": "close",
        }
        writer.write(self._head(status, headers | extra) + body)
        await writer.drain()

    async def _respond(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if not self.matches(request.method, request.path):
            await self._send_json(writer, 404, self.error_body(404, f"no route {request.path}"), {})
            return
        if self.expected_key is not None and self.request_key(request) != self.expected_key:
            await self._send_json(writer, 401, self.error_body(401, "invalid api key"), {})
            return
        reply = self.replies.popleft() if self.replies else self.default
        fault = reply.fault
        if fault is not None and fault.kind == "status":
            await self._send_json(
                writer, fault.status, self.error_body(fault.status, fault.message), fault.headers
            )
            request.completed = True
            return
        events = self.render(request, reply)
        headers = {
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "transfer-encoding": "chunked",
            "connection": "close",
        }
        writer.write(self._head(200, headers))
        await writer.drain()
        # The client sends nothing more on this connection, so EOF on the reader means it hung up.
        watcher = asyncio.ensure_future(reader.read())

        def on_eof(task: asyncio.Future[bytes]) -> None:
            if not task.cancelled() and not request.completed and not request.dropped_by_server:
                request.client_gone.set()

        watcher.add_done_callback(on_eof)
        try:
            for index, event in enumerate(events):
                if fault is not None and index == fault.after:
                    if fault.kind == "drop":
                        request.dropped_by_server = True
                        writer.transport.abort()
                        return
                    if fault.kind == "stream_error":
                        event = self.stream_error_event(fault.message)
                        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
                        await writer.drain()
                        request.completed = True
                        return
                    await watcher  # stall: say nothing until the client gives up
                    return
                pause = reply.first_delay if index == 1 else 0.0
                pause += reply.delay if index else 0.0
                if pause:
                    await asyncio.wait({watcher}, timeout=pause)
                if watcher.done():
                    return
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                if index == 1:
                    request.first_sent_at = time.monotonic()
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            request.completed = True
        finally:
            watcher.cancel()


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event block."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
