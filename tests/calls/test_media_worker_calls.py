"""Calls whose media runs in the media worker process (VOIPBIN_MEDIA_PROCESS, the default)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tests.calls.support import Telephony
from voipbin.calls.manager import SipCallManager
from voipbin.media.remote import RemoteMediaSession
from voipbin.phone import TestPhone

SOURCE = {"type": "tel", "target": "+15551234567"}
PHONE = "+15559876543"


async def _call_the_phone(telephony: Telephony, phone: TestPhone) -> str:
    r = await telephony.client.post(
        "/v1.0/calls",
        json={
            "source": SOURCE,
            "destinations": [{"type": "tel", "target": PHONE}],
            "actions": [{"type": "answer"}, {"type": "sleep", "option": {"duration": 30000}}],
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def test_a_call_whose_media_worker_dies_ends_failed_with_bye(telephony: Telephony) -> None:
    manager = telephony.platform.calls
    assert isinstance(manager, SipCallManager) and manager.media_pool is not None
    worker = manager.media_pool.workers[0]
    phone = TestPhone(PHONE, server=("127.0.0.1", telephony.sip_port))
    await phone.start()
    try:
        call_id = await _call_the_phone(telephony, phone)
        handle = await phone.wait_call(10)
        await telephony.wait_call(call_id, lambda c: c["status"] == "progressing")
        live = next(iter(manager.live.values()))
        assert isinstance(live.media, RemoteMediaSession)  # the call's media is in the worker
        old_pid = worker.pid
        os.kill(old_pid, signal.SIGKILL)
        call = await telephony.wait_hangup(call_id, within=10)
        assert (call["hangup_reason"], call["hangup_by"]) == ("failed", "local"), call
        assert await asyncio.wait_for(handle.ended, 10) == "remote"  # the phone got our BYE
        # the next call gets a new worker, and its media flows
        call_id = await _call_the_phone(telephony, phone)
        handle = await phone.wait_call(10)
        await telephony.wait_call(call_id, lambda c: c["status"] == "progressing")
        await asyncio.sleep(1.0)
        assert worker.running and worker.pid != old_pid
        await telephony.client.post(f"/v1.0/calls/{call_id}/hangup")
        call = await telephony.wait_hangup(call_id, within=10)
        assert call["metadata"]["rtp"]["packets_out"] >= 40, call["metadata"]["rtp"]
        assert call["metadata"]["rtp"]["packets_in"] >= 40, call["metadata"]["rtp"]
    finally:
        await phone.stop()


@pytest.mark.parametrize("telephony", [{"media_process": False}], indirect=True)
async def test_media_on_a_thread_of_the_node_when_asked(telephony: Telephony) -> None:
    manager = telephony.platform.calls
    assert isinstance(manager, SipCallManager) and manager.media_pool is None
    phone = TestPhone(PHONE, server=("127.0.0.1", telephony.sip_port))
    await phone.start()
    try:
        call_id = await _call_the_phone(telephony, phone)
        await phone.wait_call(10)
        await telephony.wait_call(call_id, lambda c: c["status"] == "progressing")
        await asyncio.sleep(1.0)
        await telephony.client.post(f"/v1.0/calls/{call_id}/hangup")
        call = await telephony.wait_hangup(call_id, within=10)
        assert call["metadata"]["rtp"]["packets_out"] >= 40 and call["metadata"]["rtp"]["packets_in"] >= 40
    finally:
        await phone.stop()
