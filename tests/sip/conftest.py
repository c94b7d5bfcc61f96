"""Helpers for SIP tests: free ports, SIPp runner (always killed), endpoints on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from voipbin.sip import SipEndpoint

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")

requires_sipp = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) not installed")


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            t.close()
            u.close()
        return port
    raise RuntimeError("no free port")


@dataclass
class SippRun:
    proc: asyncio.subprocess.Process
    port: int
    message_file: Path
    error_file: Path

    async def wait(self, limit: float = 30) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), limit)
        except TimeoutError:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def messages(self) -> str:
        return self.message_file.read_text(errors="replace") if self.message_file.exists() else ""

    def errors(self) -> str:
        return self.error_file.read_text(errors="replace") if self.error_file.exists() else ""


class SippLauncher:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runs: list[SippRun] = []

    async def start(self, *args: str, port: int | None = None, scenario: str | None = None) -> SippRun:
        assert SIPP is not None
        port = port or free_port()
        n = len(self.runs)
        msg, err = self.tmp / f"sipp{n}_messages.log", self.tmp / f"sipp{n}_errors.log"
        cmd = [SIPP, "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-timeout", "20s"]
        cmd += ["-trace_msg", "-message_file", str(msg), "-trace_err", "-error_file", str(err)]
        if scenario:
            cmd += ["-sf", str(SCENARIOS / scenario)]
        cmd += list(args)
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, cwd=self.tmp,
        )  # fmt: skip
        run = SippRun(proc, port, msg, err)
        self.runs.append(run)
        return run

    async def start_server(self, *args: str, scenario: str | None = None, transport: str = "u1") -> SippRun:
        """Start a SIPp UAS and wait until its socket is bound (a new port if another process took ours
        between choosing it and SIPp binding it)."""
        for attempt in range(3):
            try:
                return await self._start_server(*args, scenario=scenario, transport=transport)
            except RuntimeError as exc:
                if "Unable to bind" not in str(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _start_server(self, *args: str, scenario: str | None, transport: str) -> SippRun:
        run = await self.start("-t", transport, *args, scenario=scenario)
        kind = socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM
        for _ in range(100):
            if run.proc.returncode is not None:
                raise RuntimeError(f"sipp exited with {run.proc.returncode}: {run.errors()}")
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", run.port))
            except OSError:
                return run  # bound by SIPp
            finally:
                s.close()
            await asyncio.sleep(0.05)
        raise RuntimeError("sipp did not bind")


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[SippLauncher]:
    launcher = SippLauncher(tmp_path)
    try:
        yield launcher
    finally:
        for run in launcher.runs:
            run.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run.proc.wait(), 5)


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()
