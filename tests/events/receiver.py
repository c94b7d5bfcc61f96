"""A webhook receiver on 127.0.0.1 whose behaviour the test switches: ``down`` (nothing listens on its
port), ``500`` (answers every request with 500) or ``200``. It records every request it answered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from tests.sip.conftest import free_port


@dataclass
class Hit:
    event_id: str  # the X-VoIPBIN-Event-Id header
    body: dict[str, Any]
    raw: bytes
    answered: int
    at: float


class FlakyReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.hits: list[Hit] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def up(self, status: int) -> None:
        self.status = status
        if self._server is None:
            self._server = await asyncio.start_server(self._conn, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])
                }
                raw = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                status = self.status
                self.hits.append(
                    Hit(headers.get("x-voipbin-event-id", ""), json.loads(raw), raw, status, time.monotonic())
                )
                reason = b"OK" if status == 200 else b"Error"
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n" % (status, reason))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def delivered(self) -> dict[str, Hit]:
        """Each event id's first accepted delivery (dedup by id, as a receiver would)."""
        seen: dict[str, Hit] = {}
        for h in self.hits:
            if h.answered == 200 and h.event_id not in seen:
                seen[h.event_id] = h
        return seen

    def accepted_in_order(self) -> list[Hit]:
        return sorted(self.delivered().values(), key=lambda h: h.at)
