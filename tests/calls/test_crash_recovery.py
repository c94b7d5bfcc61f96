"""Crash recovery on real processes (issue 7, "How it is checked"): ``kill -9`` the server in the middle of
a recorded call, restart it on the same data directory and database, and the call, its activeflow and
its recording are finished (the WAV plays), the customer is told by webhook, and the phone that
registered before the crash can be called again without registering anew.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.calls.crash_support import ServeConfig, ServeFactory, WebhookReceiver
from tests.calls.support import write_sine
from voipbin.phone import TestPhone

pytestmark = pytest.mark.timeout(90)

PHONE = "+15550107777"  # not in the number inventory: reached through the development carrier
SOURCE = {"type": "tel", "target": "+15551234567"}  # the admin customer's number (bootstrap)
RECOVERY_WITHIN = 10.0


async def poll(
    what: str, fetch: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], deadline: float
) -> Any:
    """``fetch()`` until ``ok(value)``; past ``deadline`` (monotonic) fail showing the last value."""
    while True:
        value = await fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}; last seen: {value}")
        await asyncio.sleep(0.1)


def get_json(api: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def fetch() -> dict[str, Any]:
        r = await api.get(url)
        assert r.status_code == 200, f"GET {url}: {r.status_code} {r.text}"
        return r.json()

    return fetch


def call_request(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"source": SOURCE, "destinations": [{"type": "tel", "target": PHONE}], "actions": list(actions)}


def audio_seconds(path: Path) -> float:
    return max(0, path.stat().st_size - 44) / 16000 if path.exists() else 0.0


async def test_kill_9_mid_call_then_restart(
    database_url: str, serve_factory: ServeFactory, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    tone = tmp_path / "phone-tone.wav"
    write_sine(tone, seconds=40.0, freq=523.0, amp=0.3)  # the phone talks for the whole call
    config: ServeConfig = serve_factory.config(database_url)
    first = await serve_factory.start(config)
    key = first.accesskey()
    phone = TestPhone(PHONE, server=("127.0.0.1", config.sip_port), play=tone)
    async with httpx.AsyncClient(
        base_url=config.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=5.0
    ) as api:
        r = await api.put("/v1.0/customer", json={"webhook_uri": webhook_receiver.url})
        assert r.status_code == 200, r.text
        await asyncio.wait_for(phone.start(), 10)
        try:
            await crash_and_recover(api, serve_factory, config, webhook_receiver, phone)
        finally:
            await asyncio.wait_for(phone.stop(), 10)


async def crash_and_recover(
    api: httpx.AsyncClient,
    serve_factory: ServeFactory,
    config: ServeConfig,
    receiver: WebhookReceiver,
    phone: TestPhone,
) -> None:
    # 1. A call the phone answers; the flow answers, records and sleeps a minute.
    r = await api.post(
        "/v1.0/calls",
        json=call_request(
            {"type": "answer"}, {"type": "recording_start"}, {"type": "sleep", "option": {"duration": 60000}}
        ),
    )
    assert r.status_code == 200, r.text
    call_id = r.json()["id"]
    t = time.monotonic()
    call = await poll(
        "the call never got to progressing with a recording",
        get_json(api, f"/v1.0/calls/{call_id}"),
        lambda c: (
            c["status"] == "progressing" and c["recording_id"] != "00000000-0000-0000-0000-000000000000"
        ),
        t + 15,
    )
    handle = await asyncio.wait_for(phone.wait_call(5), 6)
    assert await asyncio.wait_for(handle.answered, 5)
    rec_id, af_id = call["recording_id"], call["activeflow_id"]
    wav = config.recordings_dir / f"{rec_id}.wav"
    rec = await get_json(api, f"/v1.0/recordings/{rec_id}")()
    assert rec["status"] == "recording", rec
    t = time.monotonic()
    while audio_seconds(wav) < 3.0:  # a few seconds of the phone's audio on disk
        assert time.monotonic() < t + 10, f"recording not growing: {audio_seconds(wav):.2f} s in {wav}"
        await asyncio.sleep(0.1)
    af = await get_json(api, f"/v1.0/activeflows/{af_id}")()
    assert af["status"] == "running", af

    # 2. kill -9, restart on the same data dir and database.
    serve_factory.processes[-1].kill9()
    restarted_at = time.monotonic()
    second = await serve_factory.start(config)
    deadline = restarted_at + RECOVERY_WITHIN

    # 3. Within 10 s of the restart: everything the crash left running is finished.
    call = await poll(
        "the call was not finished after the restart",
        get_json(api, f"/v1.0/calls/{call_id}"),
        lambda c: c["status"] == "hangup",
        deadline,
    )
    assert call["hangup_reason"] == "failed", call
    assert "restart" in str(call["metadata"].get("hangup_detail", "")).lower(), call["metadata"]
    await poll(
        "the activeflow was not ended after the restart",
        get_json(api, f"/v1.0/activeflows/{af_id}"),
        lambda a: a["status"] == "ended",
        deadline,
    )
    await poll(
        "the recording was not ended after the restart",
        get_json(api, f"/v1.0/recordings/{rec_id}"),
        lambda rc: rc["status"] == "ended",
        deadline,
    )
    with wave.open(str(wav), "rb") as wf:  # strict reader: the header's sizes match the file
        assert (wf.getframerate(), wf.getsampwidth()) == (8000, 2)
        pcm = np.frombuffer(wf.readframes(wf.getnframes()), dtype="<i2")
        assert len(pcm) == wf.getnframes() * wf.getnchannels()
    assert len(pcm) / 8000 > 1.0, f"only {len(pcm) / 8000:.2f} s of audio in {wav}"
    loud = np.sqrt(np.mean(pcm.astype(np.float64) ** 2))
    assert loud > 1000, f"the recording is silent (RMS {loud:.0f})"
    expected = [
        ("call_hangup", call_id, {}),
        ("activeflow_updated", af_id, {"status": "ended"}),
        ("recording_finished", rec_id, {}),
    ]
    while missing := [e for e in expected if receiver.find(restarted_at, e[0], e[1], **e[2]) is None]:
        if time.monotonic() > deadline:
            got = [(e.type, e.data.get("id"), e.data.get("status")) for e in receiver.since(restarted_at)]
            raise AssertionError(f"webhooks not received after the restart: {missing}; got {got}")
        await asyncio.sleep(0.1)

    # 4. The phone is not registered again: the registration made before the crash must still route.
    await asyncio.wait_for(handle.hangup(within=2.0), 5)  # the person hangs up on the dead line
    assert second.alive
    r = await api.post(
        "/v1.0/calls",
        json=call_request({"type": "answer"}, {"type": "sleep", "option": {"duration": 3000}}),
    )
    assert r.status_code == 200, r.text
    again = r.json()["id"]
    await poll(
        "the phone registered before the crash was not reached after the restart",
        get_json(api, f"/v1.0/calls/{again}"),
        lambda c: c["status"] in ("progressing", "hangup"),
        time.monotonic() + 15,
    )
    reached = await get_json(api, f"/v1.0/calls/{again}")()
    assert reached["status"] == "progressing" or reached.get("tm_progressing"), (
        f"the second call never reached progressing: {reached}"
    )
    handle2 = await asyncio.wait_for(phone.wait_call(5), 6)
    assert await asyncio.wait_for(handle2.answered, 5)


async def test_sigterm_ends_live_calls_with_bye(
    database_url: str, serve_factory: ServeFactory, tmp_path: Path
) -> None:
    """A clean stop is not a crash: live calls are hung up (BYE) and stored ``hangup`` before the exit."""
    config: ServeConfig = serve_factory.config(database_url)
    server = await serve_factory.start(config)
    key = server.accesskey()
    phone = TestPhone(PHONE, server=("127.0.0.1", config.sip_port))
    async with httpx.AsyncClient(
        base_url=config.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=5.0
    ) as api:
        await asyncio.wait_for(phone.start(), 10)
        try:
            r = await api.post(
                "/v1.0/calls",
                json=call_request({"type": "answer"}, {"type": "sleep", "option": {"duration": 60000}}),
            )
            assert r.status_code == 200, r.text
            call_id = r.json()["id"]
            handle = await asyncio.wait_for(phone.wait_call(5), 6)
            assert await asyncio.wait_for(handle.answered, 5)
            await poll(
                "the call never got to progressing",
                get_json(api, f"/v1.0/calls/{call_id}"),
                lambda c: c["status"] == "progressing",
                time.monotonic() + 10,
            )
            code = await asyncio.to_thread(server.terminate)
            # uvicorn shuts the app down, then re-raises SIGTERM so the exit status says why it stopped.
            assert code in (0, -15) and "Application shutdown complete" in server.log(), (
                f"exit code {code}:\n{server.log()}"
            )
            why = await asyncio.wait_for(asyncio.shield(handle.ended), 5)  # the phone got our BYE
            assert why, why
            restarted = await serve_factory.start(config)
            call = await get_json(api, f"/v1.0/calls/{call_id}")()
            assert call["status"] == "hangup" and call["hangup_by"] == "local", call
            assert call["hangup_reason"] == "normal", call
            assert "restart" not in str(call["metadata"].get("hangup_detail", "")), call["metadata"]
            assert restarted.alive
        finally:
            await asyncio.wait_for(phone.stop(), 10)
