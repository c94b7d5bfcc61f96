"""Real-process harness for crash tests: ``voipbin serve`` as a subprocess that can be ``kill -9``-ed and
restarted on the same data directory and database, and a loopback HTTP receiver for webhooks.

Fixtures (exported through tests/calls/conftest.py):

* ``serve_factory`` -- ``ServeProcess`` factory; every process it made is SIGKILLed at teardown.
* ``webhook_receiver`` -- records every webhook the platform sends (``events``).

The server's stdout/stderr go to ``<tmp>/serve-<n>.log`` (no pipe can fill up and stall it); the first
start prints the admin access key there, which ``ServeProcess.accesskey()`` parses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sip.conftest import free_port

ADMIN_PASSWORD = "crash-admin-password-1"
VOIPBIN = Path(sys.executable).with_name("voipbin")
_POLL_LINE = re.compile(r'^INFO: +127\.0\.0\.1:\d+ - "GET ')


def free_rtp_range(count: int = 100) -> tuple[int, int]:
    """An even-based block of ``count`` UDP ports, all free right now, below the ephemeral range."""
    for _ in range(50):
        base = random.randrange(21000, 31000 - count, 2)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base, base + count - 1
    raise RuntimeError("no free RTP port range")


@dataclass
class ServeConfig:
    """What stays the same across restarts: data dir, database, ports."""

    data_dir: Path
    database_url: str
    http_port: int = field(default_factory=free_port)
    sip_port: int = field(default_factory=free_port)
    rtp_ports: tuple[int, int] = field(default_factory=free_rtp_range)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOIPBIN_")}  # hermetic
        env.update(
            VOIPBIN_DATA_DIR=str(self.data_dir),
            VOIPBIN_DATABASE_URL=self.database_url,
            VOIPBIN_HTTP_HOST="127.0.0.1",
            VOIPBIN_HTTP_PORT=str(self.http_port),
            VOIPBIN_SIP_HOST="127.0.0.1",
            VOIPBIN_SIP_PORT=str(self.sip_port),
            VOIPBIN_RTP_PORT_MIN=str(self.rtp_ports[0]),
            VOIPBIN_RTP_PORT_MAX=str(self.rtp_ports[1]),
            VOIPBIN_TELEPHONY="true",
            VOIPBIN_DEVCARRIER="loopback",
            VOIPBIN_ADMIN_PASSWORD=ADMIN_PASSWORD,
            VOIPBIN_DIAL_TIMEOUT="10",
            VOIPBIN_LOG_LEVEL="INFO",
            VOIPBIN_OUTBOUND_ALLOW="127.0.0.0/8",  # the test webhook receiver listens on loopback
            PYTHONUNBUFFERED="1",
        )
        return env

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"


class ServeProcess:
    """One ``voipbin serve`` process."""

    def __init__(self, config: ServeConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.earlier_logs: list[Path] = []  # of the same config (the first start printed the admin key)

    def start(self) -> None:
        cmd = [str(VOIPBIN), "serve"] if VOIPBIN.exists() else [sys.executable, "-m", "voipbin.cli", "serve"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.config.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.config.data_dir.parent, start_new_session=True,
            )  # fmt: skip
        self.started_at = time.monotonic()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def wait_ready(self, within: float = 30.0) -> None:
        """Until ``GET /health`` answers 200 (fails early, with the log, if the process exits)."""
        assert self.proc is not None
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.config.base_url, timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"voipbin serve exited with {self.proc.returncode}:\n{self.log()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"voipbin serve not ready within {within:g} s:\n{self.log()}")
                await asyncio.sleep(0.1)

    def accesskey(self) -> str:
        """The admin access key printed at the first start."""
        logs = "".join(p.read_text(errors="replace") for p in self.earlier_logs if p.exists()) + self.log()
        found = re.search(r"^\s*accesskey:\s*(\S+)", logs, re.MULTILINE)
        assert found, f"no access key printed at first start:\n{self.log()}"
        return found.group(1)

    def kill9(self) -> None:
        """SIGKILL, no chance to clean up (what a crash or an OOM kill does)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def terminate(self, within: float = 20.0) -> int:
        """SIGTERM (what systemd or docker stop sends) and wait for the exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(within)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ServeFactory:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.processes: list[ServeProcess] = []

    def config(self, database_url: str) -> ServeConfig:
        data = self.tmp / "var"
        data.mkdir(exist_ok=True)
        return ServeConfig(data, database_url)

    async def start(self, config: ServeConfig, within: float = 30.0) -> ServeProcess:
        first = not any(p.config is config for p in self.processes)
        for attempt in range(3):
            proc = ServeProcess(config, self.tmp / f"serve-{len(self.processes)}.log")
            proc.earlier_logs = [p.log_path for p in self.processes if p.config is config]
            self.processes.append(proc)
            proc.start()
            try:
                await proc.wait_ready(within)
                return proc
            except AssertionError:
                # free_port() only found ports free a moment ago; another process may have taken one
                # since. A first start can move to new ports (a restart must keep its ports).
                if not (first and attempt < 2 and "address already in use" in proc.log()):
                    raise
                config.http_port, config.sip_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def kill_all(self) -> None:
        for p in self.processes:
            p.kill9()


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[ServeFactory]:
    factory = ServeFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.kill_all()
        for p in factory.processes:  # shown by pytest only when the test failed
            lines = [ln for ln in p.log().splitlines() if not _POLL_LINE.match(ln)]
            print(f"----- {p.log_path.name} (last 60 lines, GET polls left out) -----")
            print("\n".join(lines[-60:]))


@dataclass
class ReceivedEvent:
    type: str
    data: dict[str, Any]
    at: float  # time.monotonic() when received


class WebhookReceiver:
    """A minimal HTTP/1.1 server on 127.0.0.1 (keep-alive aware) that answers 200 to everything and
    records the JSON bodies; enough for the platform's httpx webhook client."""

    def __init__(self) -> None:
        self.events: list[ReceivedEvent] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])
                }
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                with contextlib.suppress(ValueError):
                    doc = json.loads(body)
                    if isinstance(doc, dict):
                        data = doc.get("data")
                        self.events.append(
                            ReceivedEvent(
                                str(doc.get("type")), data if isinstance(data, dict) else {}, time.monotonic()
                            )
                        )
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def since(self, t0: float) -> list[ReceivedEvent]:
        return [e for e in self.events if e.at >= t0]

    def find(self, t0: float, type_: str, id_: str, **match: Any) -> ReceivedEvent | None:
        for e in self.since(t0):
            if (
                e.type == type_
                and str(e.data.get("id")) == id_
                and all(e.data.get(k) == v for k, v in match.items())
            ):
                return e
        return None


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
