"""The durable outbox across ``kill -9`` (issue 11, "How it is checked"): real ``voipbin serve``
processes; the receiver is down while the call runs, the platform is SIGKILLed mid-call and restarted,
the receiver then answers 500 for a while and then 200 — and every event of the call arrives exactly once
after dedup by id, in order, including every event that was stored before the kill."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from tests.calls.crash_support import ServeConfig, ServeFactory
from tests.events.receiver import FlakyReceiver
from voipbin.phone import TestPhone
from voipbin.store.db import Database
from voipbin.store.tables import EventOutbox

pytestmark = pytest.mark.timeout(120)

PHONE = "+15550107778"
SOURCE = {"type": "tel", "target": "+15551234567"}  # the admin customer's number (bootstrap)
# The order a call's status events may come in (call_updated may come between any two).
STATUS_ORDER = ["call_created", "call_dialing", "call_ringing", "call_progressing", "call_hangup"]


@dataclass
class RetryingServeConfig(ServeConfig):
    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(VOIPBIN_WEBHOOK_RETRY_BASE_S="0.1", VOIPBIN_WEBHOOK_RETRY_MAX_S="0.5")
        return env


async def stored_events(database_url: str) -> list[dict[str, object]]:
    db = Database(database_url)
    try:
        async with db.session() as session:
            rows = (
                await session.execute(
                    select(EventOutbox.body).where(EventOutbox.status == "pending").order_by(EventOutbox.seq)
                )
            ).scalars()
            return [json.loads(b) for b in rows]
    finally:
        await db.close()


async def pending_count(database_url: str) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return int(
                (
                    await session.execute(select(func.count()).where(EventOutbox.status == "pending"))
                ).scalar_one()
            )
    finally:
        await db.close()


async def test_kill_9_mid_call_every_event_once_in_order(
    database_url: str, serve_factory: ServeFactory
) -> None:
    data = serve_factory.tmp / "var"
    data.mkdir(exist_ok=True)
    config = RetryingServeConfig(data, database_url)
    first = await serve_factory.start(config)
    key = first.accesskey()
    receiver = FlakyReceiver()  # down
    phone = TestPhone(PHONE, server=("127.0.0.1", config.sip_port))
    async with httpx.AsyncClient(
        base_url=config.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=5.0
    ) as api:
        assert (await api.put("/v1.0/customer", json={"webhook_uri": receiver.url})).status_code == 200
        await asyncio.wait_for(phone.start(), 10)
        try:
            r = await api.post(
                "/v1.0/calls",
                json={
                    "source": SOURCE,
                    "destinations": [{"type": "tel", "target": PHONE}],
                    "actions": [{"type": "answer"}, {"type": "sleep", "option": {"duration": 60000}}],
                },
            )
            assert r.status_code == 200, r.text
            call_id = r.json()["id"]
            handle = await asyncio.wait_for(phone.wait_call(10), 11)
            assert await asyncio.wait_for(handle.answered, 5)
            deadline = time.monotonic() + 15
            while True:  # until the answered call's events are stored
                before = [e for e in await stored_events(database_url) if e["data"].get("id") == call_id]  # type: ignore[union-attr]
                if "call_progressing" in [e["type"] for e in before]:
                    break
                assert time.monotonic() < deadline, before
                await asyncio.sleep(0.1)

            first.kill9()  # mid-call, with every delivery still pending
            await serve_factory.start(config)
            await receiver.up(500)
            t = time.monotonic()
            while len(receiver.hits) < 3:
                assert time.monotonic() < t + 15, "no retries after the restart"
                await asyncio.sleep(0.05)
            await receiver.up(200)

            def call_events() -> list[str]:
                return [
                    h.body["type"]
                    for h in receiver.accepted_in_order()
                    if h.body["data"].get("id") == call_id
                ]

            t = time.monotonic()
            while "call_hangup" not in call_events():  # the restart hangs the call up (failed)
                assert time.monotonic() < t + 20, call_events()
                await asyncio.sleep(0.1)
            await asyncio.wait_for(handle.hangup(within=2.0), 5)
        finally:
            await asyncio.wait_for(phone.stop(), 10)
    delivered = receiver.delivered()
    # Everything stored before the kill arrived, once after dedup by id, in the order it was stored.
    assert all(str(e["id"]) in delivered for e in before), (before, list(delivered))
    accepted = [h.body for h in receiver.accepted_in_order() if h.body["data"].get("id") == call_id]
    assert [e["id"] for e in accepted[: len(before)]] == [e["id"] for e in before]
    statuses = [b["type"] for b in accepted if b["type"] != "call_updated"]
    assert statuses == sorted(statuses, key=STATUS_ORDER.index), statuses
    assert statuses[0] == "call_created" and statuses[-1] == "call_hangup"
    hangup = next(b for b in accepted if b["type"] == "call_hangup")
    assert hangup["data"]["hangup_reason"] == "failed", hangup  # ended by the restart's recovery
    assert len([b for b in accepted if b["type"] == "call_hangup"]) == 1
    for h in receiver.hits:  # retries carry the same id in the header and the body
        assert h.body["id"] == h.event_id
    assert any(h.answered == 500 for h in receiver.hits)
    await receiver.down()
    t = time.monotonic()
    while await pending_count(database_url):  # delivered rows are removed
        assert time.monotonic() < t + 10
        await asyncio.sleep(0.1)
