"""Shared fixtures: a throw-away PostgreSQL cluster on 127.0.0.1 and a platform per test."""

from __future__ import annotations

import gc
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# The SSRF guard refuses loopback by default; the suite's webhook receivers, fetch servers and bots
# listen on loopback, so tests allow it (tests/security sets its own, empty, allow-list).
os.environ.setdefault("VOIPBIN_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128,localhost")
# Argon2id at production cost is ~0.2-0.5 s of CPU per hash, and most tests create two customers:
# the suite hashes with a tiny cost (the same code path; tests/api/test_auth.py checks the production one).
os.environ.setdefault("VOIPBIN_PASSWORD_HASH_TIME_COST", "1")
os.environ.setdefault("VOIPBIN_PASSWORD_HASH_MEMORY_KIB", "64")
os.environ.setdefault("VOIPBIN_PASSWORD_HASH_PARALLELISM", "1")


# `make test` runs the suite in two passes: everything else spread over pytest-xdist workers, then the
# tests marked ``serial`` in one process with nothing beside them (``-m serial``). Serial are the tests
# that assert real time: RTP pacing and gaps, media scheduling, barge-in and reply latency, sub-second
# bounds. All of tests/media is (RTP clocks on the media thread), including modules added later.
_SERIAL_DIRS = (Path(__file__).parent / "media",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.path.is_relative_to(d) for d in _SERIAL_DIRS):
            item.add_marker(pytest.mark.serial)


@pytest.fixture(autouse=True)
def _settled_heap(request: pytest.FixtureRequest) -> Iterator[None]:
    """A serial test runs with the heap the tests before it left frozen, as ``voipbin serve`` freezes
    its start-up heap (media.engine.tune_process): otherwise a full collection walking everything the
    earlier tests allocated (a GIL-holding pause that grows with the suite) can land inside the
    test's timed window and stall the media thread. Unfrozen after it, so nothing leaks."""
    if request.node.get_closest_marker("serial") is None:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]), None
    )
    if not found:
        raise RuntimeError(f"PostgreSQL binary {name} not found; `make test` installs the postgresql package")
    return found


class PgCluster:
    """initdb + pg_ctl on a free loopback port; as root the server runs as the postgres user."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="voipbin-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        data = str(self.dir / "data")
        self._run(_pg_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c full_page_writes=off"
        )
        self._run(_pg_bin("pg_ctl"), "-D", data, "-o", opts, "-w", "-l", str(self.dir / "log"), "start")

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'voipbin.db'}"
        return
    import asyncpg

    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(host="127.0.0.1", port=cluster.port, user="postgres", database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield cluster.url(name)
    conn = await asyncpg.connect(host="127.0.0.1", port=cluster.port, user="postgres", database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
