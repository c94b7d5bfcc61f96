"""``VOIPBIN_LOG_FORMAT=json``: one JSON object a line, with the call's and activeflow's ids on the lines
logged by their work (and the AI call's, where an AI session binds it)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.api.support import Api
from tests.calls.crash_support import ServeConfig, ServeFactory
from tests.sip.conftest import free_port
from voipbin import logcontext
from voipbin.phone import TestPhone

PHONE = "+15550107779"


def test_json_lines_carry_the_bound_ids() -> None:
    formatter = logcontext.JsonFormatter()
    record = logging.LogRecord("voipbin.x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    assert json.loads(formatter.format(record)).keys() == {"ts", "level", "logger", "message"}

    def inside() -> dict[str, str]:
        logcontext.bind(call_id="c-1", aicall_id="a-1", activeflow_id=logcontext.ZERO)  # zero: skipped
        return json.loads(formatter.format(record))

    line = logcontext.context(activeflow_id="af-1").run(inside)
    assert line["message"] == "hello world" and line["level"] == "WARNING"
    assert (line["call_id"], line["activeflow_id"], line["aicall_id"]) == ("c-1", "af-1", "a-1")
    assert "call_id" not in json.loads(formatter.format(record))  # not leaked out of that context


async def test_activeflow_work_logs_with_its_id(api: Api) -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logcontext.JsonFormatter())
    logging.getLogger("voipbin").addHandler(handler)
    try:
        r = await api.admin.client.post(
            "/v1.0/activeflows",
            json={
                "actions": [{"type": "webhook_send", "option": {"uri": "http://127.0.0.1:9/x", "sync": True}}]
            },
        )
        assert r.status_code == 200, r.text
        af_id = r.json()["id"]
        async with asyncio.timeout(10):
            while not any("webhook_send" in ln for ln in lines):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        logging.getLogger("voipbin").removeHandler(handler)
    line = json.loads(next(ln for ln in lines if "webhook_send" in ln))
    assert line["activeflow_id"] == af_id and "call_id" not in line


@dataclass
class JsonServeConfig(ServeConfig):
    def env(self) -> dict[str, str]:
        env = super().env()
        # A metrics port too: its server must leave the process's logging alone.
        env.update(
            VOIPBIN_LOG_FORMAT="json",
            VOIPBIN_OUTBOUND_ALLOW="127.0.0.1",
            VOIPBIN_METRICS_PORT=str(free_port()),
        )
        return env


@pytest.mark.timeout(60)
async def test_serve_logs_json_with_call_ids(tmp_path, serve_factory: ServeFactory) -> None:  # type: ignore[no-untyped-def]
    data = serve_factory.tmp / "var"
    data.mkdir(exist_ok=True)
    config = JsonServeConfig(data, f"sqlite+aiosqlite:///{tmp_path / 'voipbin.db'}")
    server = await serve_factory.start(config)
    # The first start prints the admin credentials as plain text on stdout (not a log line).
    key = server.accesskey()
    phone = TestPhone(PHONE, server=("127.0.0.1", config.sip_port))
    await asyncio.wait_for(phone.start(), 10)
    try:
        async with httpx.AsyncClient(
            base_url=config.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=5.0
        ) as api:
            r = await api.post(
                "/v1.0/calls",
                json={
                    "source": {"type": "tel", "target": "+15551234567"},
                    "destinations": [{"type": "tel", "target": PHONE}],
                    "actions": [
                        {"type": "answer"},
                        {"type": "webhook_send", "option": {"uri": "http://127.0.0.1:9/x", "sync": True}},
                        {"type": "hangup"},
                    ],
                },
            )
            assert r.status_code == 200, r.text
            call_id = r.json()["id"]
            handle = await asyncio.wait_for(phone.wait_call(10), 11)
            assert await asyncio.wait_for(handle.answered, 5)
            t = time.monotonic()
            while "webhook_send" not in server.log():
                assert time.monotonic() < t + 15, server.log()
                await asyncio.sleep(0.1)
            call = (await api.get(f"/v1.0/calls/{call_id}")).json()
    finally:
        await asyncio.wait_for(phone.stop(), 10)
    logged = [ln for ln in server.log().splitlines() if ln.startswith("{")]
    others = [ln for ln in server.log().splitlines() if ln and not ln.startswith("{")]
    # Only the first start's credentials block is not a log line.
    assert all(ln.startswith(("===", "  ", "Store these")) for ln in others), others
    parsed = [json.loads(ln) for ln in logged]  # every log line is one JSON object
    assert any(p["message"] == "Application startup complete." for p in parsed), parsed  # uvicorn's too
    hook = next(p for p in parsed if "webhook_send" in p["message"])
    assert hook["call_id"] == call_id and hook["activeflow_id"] == call["activeflow_id"]
