"""Fixtures for the flow engine: a real platform on SQLite, calls backed by ``MemoryCall``."""

from __future__ import annotations

import asyncio
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.support import api, settings  # noqa: F401  (fixtures for the activeflows API tests)
from tests.flow.memcall import MemoryCall
from voipbin.app import build_platform
from voipbin.config import Settings
from voipbin.flow import get_engine, start_call_flow
from voipbin.models.actions import validate_actions
from voipbin.platform import Platform
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
    platform: Platform
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
        row = Call(
            customer_id=self.customer_id,
            flow_id=flow.id,
            source={"type": "tel", "target": "+15551234567", "name": "Alice"},
            destination={"type": "tel", "target": "+15559876543"},
            status="progressing",
            direction="outgoing",
            variables=variables or {},
            chained_call_ids=[],
            recording_ids=[],
            action={},
        )
        async with self.platform.db.session() as session:
            session.add(row)
            await session.commit()
        call = MemoryCall(self.platform, row.id, self.customer_id)
        call.answered = True
        return call

    async def start(self, call: MemoryCall) -> uuid.UUID:
        return await start_call_flow(self.platform, call)

    async def run(
        self, actions: list[dict[str, Any]], *, within: float = 10.0, **kwargs: Any
    ) -> tuple[MemoryCall, Activeflow]:
        call = await self.call(actions, **kwargs)
        af_id = await self.start(call)
        await self.wait(af_id, within)
        return call, await self.activeflow(af_id)

    async def wait(self, activeflow_id: uuid.UUID, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            await get_engine(self.platform).wait(activeflow_id)

    async def activeflow(self, activeflow_id: uuid.UUID) -> Activeflow:
        async with self.platform.db.session() as session:
            row = await session.get(Activeflow, activeflow_id)
        assert row is not None
        return row

    async def call_row(self, call_id: uuid.UUID) -> Call:
        async with self.platform.db.session() as session:
            row = await session.get(Call, call_id)
        assert row is not None
        return row


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    media = tmp_path / "media"
    media.mkdir()
    monkeypatch.setenv("VOIPBIN_FLOW_MEDIA_DIRS", str(media))
    s = Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'flow.db'}",
        admin_username="admin",
        admin_password="admin-password-1",
    )
    platform = build_platform(s)
    await platform.db.migrate()
    created = await bootstrap(platform)
    assert created is not None
    try:
        yield Env(platform, created.customer.id, media)
    finally:
        await get_engine(platform).close()
        await platform.db.close()
