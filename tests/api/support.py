"""An API under test: a real database (SQLite and PostgreSQL), the real app, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from voipbin.app import create_app
from voipbin.config import Settings
from voipbin.node import Node, build_node, start_node, stop_node
from voipbin.tenants import NewCustomer, create_customer


@dataclass
class Tenant:
    created: NewCustomer
    client: httpx.AsyncClient

    @property
    def customer_id(self) -> str:
        return str(self.created.customer.id)

    @property
    def key(self) -> str:
        return self.created.accesskey


@dataclass
class Api:
    platform: Node
    app: Any
    admin: Tenant
    other: Tenant
    anon: httpx.AsyncClient


def client_for(app: Any, accesskey: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {accesskey}"} if accesskey else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        admin_username="admin",
        admin_password="admin-password-1",
        login_max_failures=3,
        login_window_seconds=60,
        telephony=False,
    )


@pytest.fixture
async def api(settings: Settings, capsys: pytest.CaptureFixture[str]) -> AsyncIterator[Api]:
    platform = build_node(settings)
    await platform.db.migrate()
    from voipbin.tenants import bootstrap

    admin = await bootstrap(platform.db, platform.settings)
    assert admin is not None
    async with platform.db.session() as session:
        other = await create_customer(
            session,
            passwords=platform.passwords,
            initial_balance=platform.settings.initial_balance,
            name="other",
            username="other",
            password="other-pass-1",
        )
        await session.commit()
    await start_node(platform)
    app = create_app(settings, platform)
    clients = [client_for(app, admin.accesskey), client_for(app, other.accesskey), client_for(app, None)]
    try:
        yield Api(platform, app, Tenant(admin, clients[0]), Tenant(other, clients[1]), clients[2])
    finally:
        for c in clients:
            await c.aclose()
        await stop_node(platform)


def assert_envelope(resp: httpx.Response, status: int, reason: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert err["reason"] == reason
    assert err["status"] and err["message"] and err["request_id"]
    return err
