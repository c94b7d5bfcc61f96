"""Fixtures for the flow engine: a real platform on SQLite, calls backed by ``MemoryCall``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.support import api, settings  # noqa: F401  (fixtures for the activeflows API tests)
from tests.flow.memcall import MemoryCall
from voipbin.config import Settings
from voipbin.models.actions import validate_actions
from voipbin.node import Node, build_node
from voipbin.store.tables import Activeflow, Call, Flow
from voipbin.tenants import bootstrap


def write_tone(path: Path, seconds: float, rate: int = 8000) -> Path:
    frames = int(seconds * rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x10\x00" * frames)
    return path


@dataclass
class Env:
    platform: Node
    customer_id: uuid.UUID
    media_dir: Path

    async def flow(self, actions: list[dict[str, Any]], **fields: Any) -> Flow:
        stored = [a.to_api() for a in validate_actions(actions)]
        flow = Flow(customer_id=self.customer_id, name="t", actions=stored, **fields)
        async with self.platform.db.session() as session:
            session.add(flow)
            await session.commit()
        return flow

    async def call(
        self, actions: list[dict[str, Any]], *, variables: dict[str, str] | None = None, **flow_fields: Any
    ) -> MemoryCall:
        """A stored, answered outgoing call whose flow holds ``actions`` (not yet running)."""
        flow = await self.flow(actions, **flow_fields)
        row = self.platform.call_records.new_call(
            self.customer_id,
            flow_id=flow.id,
            source={"type": "tel", "target": "+15551234567", "name": "Alice"},
            destination={"type": "tel", "target": "+15559876543"},
            status="progressing",
            direction="outgoing",
            variables=variables or {},
        )
        await self.platform.call_records.add([row])  # live on this node, as a call manager's calls are
        call = MemoryCall(self.platform, row.id, self.customer_id)
        call.answered = True
        return call

    async def start(self, call: MemoryCall) -> uuid.UUID:
        af_id = await self.platform.flows.start_call(call)
        call.activeflow_id = af_id  # what a call manager keeps, to stop the flow when the call ends
        return af_id

    async def run(
        self, actions: list[dict[str, Any]], *, within: float = 10.0, **kwargs: Any
    ) -> tuple[MemoryCall, Activeflow]:
        call = await self.call(actions, **kwargs)
        af_id = await self.start(call)
        await self.wait(af_id, within)
        return call, await self.activeflow(af_id)

    async def wait(self, activeflow_id: uuid.UUID, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            await self.platform.flows.wait(activeflow_id)

    async def activeflow(self, activeflow_id: uuid.UUID) -> Activeflow:
        """As the API sees it: the live state while it runs, else the stored row."""
        row = await self.platform.flows.get(activeflow_id)
        assert row is not None
        return row

    async def call_row(self, call_id: uuid.UUID) -> Call:
        """As the API sees it: the live state while the call is live, else the stored row."""
        row = await self.platform.call_records.get(call_id)
        assert row is not None
        return row


def env_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> tuple[Settings, Path]:
    """Settings of an in-memory-calls node in ``tmp_path``, and the media dir flows may play from."""
    media = tmp_path / "media"
    media.mkdir()
    monkeypatch.setenv("VOIPBIN_FLOW_MEDIA_DIRS", str(media))
    s = Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'flow.db'}",
        admin_username="admin",
        admin_password="admin-password-1",
        **overrides,
    )
    return s, media


@contextlib.asynccontextmanager
async def running_env(s: Settings, media: Path) -> AsyncIterator[Env]:
    """A migrated, bootstrapped node for flow tests (calls are in memory; SIP is never started)."""
    platform = build_node(s)
    await platform.db.migrate()
    created = await bootstrap(platform.db, platform.settings)
    assert created is not None
    try:
        yield Env(platform, created.customer.id, media)
    finally:
        await platform.flows.close()
        await platform.writer.close()
        await platform.db.close()


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    async with running_env(*env_settings(tmp_path, monkeypatch)) as e:
        yield e
