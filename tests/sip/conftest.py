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


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6()
requires_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback on this host")


def _free_on(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as s:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1 (and on ::1, where the platform listens too)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
        if _free_on("127.0.0.1", port) and (not HAS_IPV6 or _free_on("::1", port)):
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

    async def start(
        self, *args: str, port: int | None = None, scenario: str | None = None, host: str = "127.0.0.1"
    ) -> SippRun:
        assert SIPP is not None
        port = port or free_port()
        n = len(self.runs)
        msg, err = self.tmp / f"sipp{n}_messages.log", self.tmp / f"sipp{n}_errors.log"
        cmd = [SIPP, "-i", host, "-p", str(port), "-nostdin", "-timeout", "20s"]
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

    async def start_server(
        self, *args: str, scenario: str | None = None, transport: str = "u1", host: str = "127.0.0.1"
    ) -> SippRun:
        """Start a SIPp UAS on ``host`` and wait until its socket is bound (a new port if another
        process took ours between choosing it and SIPp binding it)."""
        for attempt in range(3):
            try:
                return await self._start_server(*args, scenario=scenario, transport=transport, host=host)
            except RuntimeError as exc:
                if "Unable to bind" not in str(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _start_server(self, *args: str, scenario: str | None, transport: str, host: str) -> SippRun:
        run = await self.start("-t", transport, *args, scenario=scenario, host=host)
        kind = socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(100):
            if run.proc.returncode is not None:
                raise RuntimeError(f"sipp exited with {run.proc.returncode}: {run.errors()}")
            s = socket.socket(family, kind)
            try:
                s.bind((host, run.port))
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
