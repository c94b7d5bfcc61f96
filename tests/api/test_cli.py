"""The CLI creates customers and access keys that the API then accepts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from voipbin.app import create_app
from voipbin.config import Settings
from voipbin.node import build_node, start_node, stop_node


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOIPBIN_DATA_DIR": str(data_dir), "VOIPBIN_ADMIN_PASSWORD": "cli-admin-password"}
    return subprocess.run(
        [sys.executable, "-m", "voipbin.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_customer_and_accesskey_create(tmp_path: Path) -> None:
    data = tmp_path / "var"
    out = run_cli(
        data, "customer", "create", "--name", "acme", "--username", "acme", "--password", "acme-pass-1"
    )
    assert out.returncode == 0, out.stderr
    assert "first start" in out.stdout  # the bootstrap ran once, printing the admin credentials
    fields = dict(
        line.split(":", 1) for line in out.stdout.splitlines() if line.startswith(("customer:", "accesskey:"))
    )
    again = run_cli(data, "customer", "create", "--name", "x", "--username", "acme")
    assert again.returncode == 1 and "taken" in again.stderr
    key_out = run_cli(data, "accesskey", "create", "--username", "acme")
    assert key_out.returncode == 0, key_out.stderr
    key = key_out.stdout.strip()
    assert key.startswith("vb_") and "first start" not in key_out.stdout

    platform = build_node(Settings(data_dir=data))
    await start_node(platform)
    app = create_app(platform.settings, platform)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            for k in (key, fields["accesskey"].strip()):
                r = await c.get("/v1.0/customer", params={"accesskey": k})
                assert r.status_code == 200 and r.json()["id"] == fields["customer"].strip()
            r = await c.post("/auth/login", json={"username": "acme", "password": "acme-pass-1"})
            assert r.status_code == 200
    finally:
        await stop_node(platform)
