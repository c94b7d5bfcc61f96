"""schemathesis over our own OpenAPI spec against a real ``voipbin serve``: no input gives a 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    port = free_port()
    data = tmp_path_factory.mktemp("fuzz")
    env = {
        **os.environ,
        "VOIPBIN_DATA_DIR": str(data),
        "VOIPBIN_HTTP_HOST": "127.0.0.1",
        "VOIPBIN_HTTP_PORT": str(port),
        "VOIPBIN_ADMIN_PASSWORD": "fuzz-admin-password",
        "VOIPBIN_LOGIN_MAX_FAILURES": "1000000",
        "VOIPBIN_SIP_PORT": str(free_port()),
        "VOIPBIN_LOG_LEVEL": "WARNING",
    }
    log = (data / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "voipbin.cli", "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + Path(log.name).read_text()[-2000:])
            time.sleep(0.2)
        token = httpx.post(
            f"{base}/auth/login", json={"username": "admin", "password": "fuzz-admin-password"}
        ).json()["token"]
        yield base, token
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        server_log = Path(log.name).read_text()
        assert "Traceback" not in server_log, server_log[-4000:]


def test_no_server_errors(server: tuple[str, str]) -> None:
    """Every operation with generated inputs: never a 5xx, and errors always in our envelope."""
    base, token = server
    schema = schemathesis.openapi.from_url(f"{base}/v1.0/openapi.json")
    failures: list[str] = []
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) > 40

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
                )
            elif response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error"} and body["error"]["reason"], (case.method, case.path, body)

        check()
    assert not failures, "\n".join(failures[:20])
