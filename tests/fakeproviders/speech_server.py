"""Harness for fake speech providers on 127.0.0.1: a tiny HTTP/1.1 server and a WebSocket server.

Hand-written HTTP on raw asyncio streams because fault tests need what an ASGI server hides:
answer headers then go silent (stall) or abort the TCP connection mid-body (drop). WebSockets use
the ``websockets`` server, whose ``process_request`` hook answers the handshake with 401/429/500
and whose transport can be aborted without a close frame. Faults are set per server with
``fake.fault = "auth" | "ratelimit" | "server" | "stall" | "drop"`` (``None`` = behave). On HTTP,
"stall"/"drop" hit streamed bodies after the first chunk and plain bodies before the status line.
Fault bodies follow each provider's error format (``fault_body``); 429 carries ``retry-after``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse

FAULT_STATUS = {"auth": 401, "ratelimit": 429, "server": 500}


def tone(secs: float, rate: int, freq: float = 220.0) -> bytes:
    """A voiced-looking test signal (harmonics + syllable envelope), PCM16 mono."""
    t = np.arange(int(secs * rate)) / rate
    env = 0.5 * (1 - np.cos(2 * math.pi * 4 * t)) * 0.4
    sig = sum(np.sin(2 * math.pi * freq * k * t) / k for k in (1, 2, 3))
    return (sig * env * 12000).astype(np.int16).tobytes()


@dataclass
class HttpRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body or b"{}")


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: AsyncIterator[bytes] | None = None  # streamed with chunked encoding


def json_response(status: int, obj: object) -> HttpResponse:
    return HttpResponse(status, json.dumps(obj).encode(), {"content-type": "application/json"})


def parse_multipart(req: HttpRequest) -> dict[str, bytes]:
    """``multipart/form-data`` fields by name (file contents included)."""
    boundary = req.headers["content-type"].split("boundary=")[1].strip('"').encode()
    parts = {}
    for part in req.body.split(b"--" + boundary)[1:-1]:
        head, _, data = part[2:].partition(b"\r\n\r\n")  # drop the CRLF after the boundary
        m = re.search(rb'name="([^"]+)"', head)
        if m:
            parts[m.group(1).decode()] = data[:-2] if data.endswith(b"\r\n") else data
    return parts


def wav_info(data: bytes) -> tuple[int, float]:
    """(sample_rate, seconds) of an uploaded PCM16 mono WAV; ValueError if it is not one."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE" or data[36:40] != b"data":
        raise ValueError("not a canonical PCM WAV")
    fmt, channels, rate = struct.unpack("<HHI", data[20:28])
    bits = struct.unpack("<H", data[34:36])[0]
    if (fmt, channels, bits) != (1, 1, 16):
        raise ValueError("not PCM16 mono")
    size = struct.unpack("<I", data[40:44])[0]
    if size != len(data) - 44:
        raise ValueError("data size does not match")
    return rate, size / 2 / rate


def _default_fault_body(status: int, fault: str) -> object:
    return {"detail": {"status": fault, "message": "scripted fault"}}


class FakeHttpServer:
    """HTTP/1.1, one request per connection (``Connection: close``), chunked streaming bodies."""

    def __init__(self, handler: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.handler = handler
        self.fault: str | None = None
        self.fault_body: Callable[[int, str], object] = _default_fault_body
        self.retry_after = "1"
        self.chunk_delay = 0.0  # seconds between streamed chunks (pace like a real synthesiser)
        self.requests: list[HttpRequest] = []
        self.client_hangups = 0  # streamed responses the client closed before the end
        self.hung_up = asyncio.Event()  # set at the first such hang-up
        self.request_seen = asyncio.Event()
        self.completed = 0  # streamed responses sent to the end
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._release.set()
        if self._server:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            req = await self._read(reader)
            if req is None:
                return
            self.requests.append(req)
            self.request_seen.set()
            if self.fault in FAULT_STATUS:
                status = FAULT_STATUS[self.fault]
                resp = json_response(status, self.fault_body(status, self.fault))
                if status == 429:
                    resp.headers["retry-after"] = self.retry_after
            else:
                resp = await self.handler(req)
            if resp.chunks is None and self.fault == "drop":
                writer.transport.abort()
                return
            if resp.chunks is None and self.fault == "stall":
                await self._release.wait()
                return
            await self._write(reader, writer, resp)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> HttpRequest | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = b""
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        return HttpRequest(method, url.path, query, headers, body)

    async def _write(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, resp: HttpResponse
    ) -> None:
        reason = HTTPStatus(resp.status).phrase
        headers = {"connection": "close"} | resp.headers
        if resp.chunks is None:
            headers["content-length"] = str(len(resp.body))
        else:
            headers["transfer-encoding"] = "chunked"
        head = f"HTTP/1.1 {resp.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(head.encode("latin-1") + b"\r\n")
        if resp.chunks is None:
            writer.write(resp.body)
            await writer.drain()
            return
        sent = 0
        hangup = asyncio.create_task(reader.read())  # b"" once the client closes its side
        try:
            async for chunk in resp.chunks:
                if self.fault in ("stall", "drop") and sent >= 1:
                    if self.fault == "drop":
                        writer.transport.abort()
                        return
                    await self._release.wait()  # stall: headers and one chunk, then silence
                    return
                if hangup.done():
                    self._hung_up()
                    return
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
                sent += 1
                if self.chunk_delay:
                    await asyncio.wait([hangup], timeout=self.chunk_delay)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            self.completed += 1
        except ConnectionError:
            self._hung_up()
        finally:
            if hangup.done() and not hangup.cancelled():
                hangup.exception()  # a reset peer is expected here; mark it retrieved
            hangup.cancel()

    def _hung_up(self) -> None:
        self.client_hangups += 1
        self.hung_up.set()


class FakeWsServer:
    """A WebSocket endpoint; ``handler(conn, path, query)`` speaks the provider protocol."""

    def __init__(self, handler: Callable[[ServerConnection, str, dict[str, str]], Awaitable[None]]) -> None:
        self.handler = handler
        self.fault: str | None = None
        self.api_key: str | None = None  # when set, checked by check_header
        self.auth_header: tuple[str, str] | None = None  # (header, prefix)
        self.handshakes: list[WsRequest] = []
        self._server = None
        self.release = asyncio.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await serve(self._serve, "127.0.0.1", 0, process_request=self._process_request)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.release.set()
        if self._server:
            self._server.close(close_connections=False)
            for conn in list(self._server.connections):
                conn.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _process_request(self, conn: ServerConnection, request: WsRequest) -> WsResponse | None:
        self.handshakes.append(request)
        status = FAULT_STATUS.get(self.fault or "")
        if status is None and self.auth_header and self.api_key is not None:
            name, prefix = self.auth_header
            if request.headers.get(name, "") != prefix + self.api_key:
                status = 401
        if status is None:
            return None
        body = json.dumps({"err_code": str(status), "err_msg": "scripted fault"}).encode()
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return WsResponse(status, HTTPStatus(status).phrase, headers, body)

    async def _serve(self, conn: ServerConnection) -> None:
        url = urlsplit(conn.request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if self.fault == "stall":
            await self.release.wait()
            return
        with contextlib.suppress(Exception):
            await self.handler(conn, url.path, query)

    def drop(self, conn: ServerConnection) -> None:
        """Lose the connection without a close frame."""
        conn.transport.abort()
