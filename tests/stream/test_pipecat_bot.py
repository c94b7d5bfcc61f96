"""A bot built from pipecat-ai's own ``TwilioFrameSerializer`` and WebSocket server transport echoes the
caller: the SIP test phone hears its own speech, DTMF reaches the bot, the flow continues when it ends.

pipecat-ai pins dependencies of its own (protobuf < 7, numba, Pillow...), so the bot runs in its own
virtualenv as its own process, like a customer's bot: ``make pipecat-venv`` creates ``.venv-pipecat``
(or point ``VOIPBIN_PIPECAT_PYTHON`` at an interpreter that has ``pipecat-ai[websocket]``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.calls.support import Telephony, heard_fraction
from tests.conftest import free_port
from tests.stream.support import AFTER_STREAM, PHONE, call_body
from voipbin.phone import TestPhone

ROOT = Path(__file__).resolve().parents[2]
PIPECAT_PYTHON = os.environ.get("VOIPBIN_PIPECAT_PYTHON") or str(ROOT / ".venv-pipecat" / "bin" / "python")

pytestmark = pytest.mark.skipif(
    not Path(PIPECAT_PYTHON).exists(), reason="no pipecat-ai interpreter (make pipecat-venv)"
)


async def _lines(proc: asyncio.subprocess.Process, seen: list[str], changed: asyncio.Event) -> None:
    assert proc.stdout is not None
    async for raw in proc.stdout:
        seen.append(raw.decode().strip())
        changed.set()


async def _wait_line(seen: list[str], changed: asyncio.Event, line: str, within: float) -> None:
    async with asyncio.timeout(within):
        while line not in seen:
            changed.clear()
            await changed.wait()


async def test_pipecat_twilio_bot_echoes_the_caller(telephony: Telephony, tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        PIPECAT_PYTHON,
        str(Path(__file__).with_name("pipecat_echo_bot.py")),
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=open(tmp_path / "pipecat.log", "wb"),  # noqa: SIM115,ASYNC230  (the child owns it)
    )
    seen: list[str] = []
    changed = asyncio.Event()
    reader = asyncio.create_task(_lines(proc, seen, changed))
    phone = TestPhone(PHONE, server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    try:
        await _wait_line(seen, changed, "READY", 60)  # pipecat imports take a while on a busy machine
        await phone.start()
        body = call_body(f"ws://127.0.0.1:{port}/", "", *AFTER_STREAM)
        r = await telephony.client.post("/v1.0/calls", json=body)
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        handle = await phone.wait_call(10)
        assert await asyncio.wait_for(handle.answered, 10)
        await _wait_line(seen, changed, "CONNECTED", 10)
        await asyncio.sleep(0.5)
        await handle.say("The quick brown fox jumps over the lazy dog.", tts_type="piper")
        await asyncio.sleep(1.0)
        await handle.send_dtmf("7")
        await _wait_line(seen, changed, "DTMF 7", 10)
        await handle.send_dtmf("#")  # the bot ends its pipeline, closing the stream
        call = await telephony.wait_hangup(call_id, within=20)
        text = (await handle.heard_text(stt_type="whisper")).lower()
    finally:
        await phone.stop()
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        reader.cancel()
    log = (tmp_path / "pipecat.log").read_text(errors="replace")
    assert not call["metadata"].get("flow_error"), (call["metadata"], log[-2000:])
    af = (await telephony.client.get(f"/v1.0/activeflows/{call['activeflow_id']}")).json()
    assert [a["type"] for a in af["executed_actions"]][:2] == ["external_media_start", "variable_set"]
    assert heard_fraction(text, "the quick brown fox jumps over the lazy dog") >= 0.6, (text, log[-2000:])
