"""The durable outbox in one process: a receiver that is down, then answers 500, then 200 gets every
event of a call exactly once after dedup by id, in order; a restart resumes what was pending."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from tests.api.support import Api
from tests.events.receiver import FlakyReceiver
from voipbin.events.webhooks import RetryPolicy
from voipbin.node import build_node, start_node, stop_node
from voipbin.store.tables import EventOutbox
from voipbin.store.types import utcnow

CALL = {
    "source": {"type": "tel", "target": "+15551234567"},
    "destinations": [{"type": "tel", "target": "+15559876543"}],
    "actions": [{"type": "answer"}],
}


async def pending_rows(api: Api) -> int:
    await api.platform.writer.flush()
    async with api.platform.db.session() as session:
        return int(
            (await session.execute(select(func.count()).where(EventOutbox.status == "pending"))).scalar_one()
        )


async def until(what: str, ok: object, within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not ok():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_down_then_500_then_200_delivers_each_event_once_in_order(api: Api) -> None:
    api.platform.webhooks.policy = RetryPolicy(base=0.05, max_delay=0.3, max_age=120)
    receiver = FlakyReceiver()  # down: nothing listens yet
    c = api.admin.client
    assert (await c.put("/v1.0/customer", json={"webhook_uri": receiver.url})).status_code == 200
    ids = []
    for _ in range(3):
        r = await c.post("/v1.0/calls", json=CALL)
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    await asyncio.sleep(0.8)  # connection refused, retried
    assert receiver.hits == [] and await pending_rows(api) >= 9
    await receiver.up(500)
    await until("500s", lambda: len(receiver.hits) >= 3)
    assert {h.event_id for h in receiver.hits} == {receiver.hits[0].event_id}  # the head, retried
    await receiver.up(200)
    await until("all delivered", lambda: sum(h.answered == 200 for h in receiver.hits) >= 9)
    await api.platform.webhooks.wait_idle()
    assert await pending_rows(api) == 0
    for h in receiver.hits:
        assert h.body["id"] == h.event_id and set(h.body) == {"id", "type", "data"}
    accepted = receiver.accepted_in_order()
    assert len(accepted) == len([h for h in receiver.hits if h.answered == 200])  # no duplicates
    for call_id in ids:
        types = [h.body["type"] for h in accepted if h.body["data"]["id"] == call_id]
        assert types == ["call_created", "call_dialing", "call_hangup"], types
    # Retries of one event carry the same id and the same bytes.
    by_id: dict[str, bytes] = {}
    for h in receiver.hits:
        assert by_id.setdefault(h.event_id, h.raw) == h.raw


async def test_restart_resumes_pending_deliveries_in_order(api: Api) -> None:
    """Events stored while the receiver was down are delivered by the next node on the same database."""
    api.platform.webhooks.policy = RetryPolicy(base=5.0, max_delay=5.0, max_age=120)
    receiver = FlakyReceiver()
    c = api.admin.client
    await c.put("/v1.0/customer", json={"webhook_uri": receiver.url})
    r = await c.post(
        "/v1.0/activeflows",
        json={
            "actions": [{"type": "variable_set", "option": {"key": f"k{i}", "value": "v"}} for i in range(4)]
        },
    )
    assert r.status_code == 200, r.text
    af_id = r.json()["id"]
    await asyncio.sleep(0.3)
    stored = await pending_rows(api)
    assert stored >= 3 and receiver.hits == []
    async with api.platform.db.session() as session:
        expected = [
            json.loads(b)
            for b in (await session.execute(select(EventOutbox.body).order_by(EventOutbox.seq))).scalars()
        ]
    await stop_node(api.platform)  # the deliveries stay pending in the table
    await receiver.up(200)
    again = build_node(api.platform.settings)
    again.webhooks.policy = RetryPolicy(base=0.05, max_delay=0.1, max_age=120)
    await start_node(again)
    try:
        await until("resumed", lambda: len(receiver.delivered()) >= len(expected))
        got = [h.body for h in receiver.accepted_in_order()]
        assert [b["id"] for b in got[: len(expected)]] == [b["id"] for b in expected]
        assert all(b["data"]["id"] == af_id for b in got if b["type"].startswith("activeflow_"))
    finally:
        await stop_node(again)


async def test_events_of_a_clean_stop_are_delivered_by_the_next_start(api: Api) -> None:
    """SIGTERM ends running activeflows after deliveries stopped: their final events are still stored, with
    the change, and the next start sends them."""
    receiver = FlakyReceiver()
    await receiver.up(200)
    c = api.admin.client
    await c.put("/v1.0/customer", json={"webhook_uri": receiver.url})
    r = await c.post(
        "/v1.0/activeflows", json={"actions": [{"type": "sleep", "option": {"duration": 60000}}]}
    )
    af_id = r.json()["id"]
    await until(
        "created delivered", lambda: any(h.body["type"] == "activeflow_created" for h in receiver.hits)
    )
    await stop_node(api.platform)

    def ended() -> bool:
        return any(
            h.body["type"] == "activeflow_updated" and h.body["data"]["status"] == "ended"
            for h in receiver.delivered().values()
            if h.body["data"]["id"] == af_id
        )

    assert not ended()
    again = build_node(api.platform.settings)
    await start_node(again)
    try:
        await until("the stop's events delivered after the restart", ended)
    finally:
        await stop_node(again)
        await receiver.down()


async def test_a_start_deletes_failed_rows_past_their_retention_and_keeps_the_rest(api: Api) -> None:
    """Rows given up on are an operator's record for VOIPBIN_WEBHOOK_FAILED_RETENTION_S, not forever."""
    now = utcnow()
    rows = {
        "old-failed": ("failed", now - timedelta(days=8)),
        "new-failed": ("failed", now - timedelta(days=1)),
        "old-pending": ("pending", now - timedelta(days=8)),
    }
    async with api.platform.db.session() as session:
        for i, (name, (status, created)) in enumerate(rows.items()):
            session.add(
                EventOutbox(
                    id=uuid.uuid4(), seq=-(i + 1), event_id=uuid.uuid4(), customer_id=uuid.uuid4(),
                    type="call_created", body=json.dumps({"name": name}), status=status,
                    node_id="gone-node", tm_create=created,
                )
            )  # fmt: skip
        await session.commit()
    await stop_node(api.platform)
    again = build_node(api.platform.settings)
    again.webhooks.policy = RetryPolicy(failed_retention=7 * 86400.0)
    await start_node(again)
    try:
        async with again.db.session() as session:
            left = {
                json.loads(b)["name"]
                for b in (
                    await session.execute(select(EventOutbox.body).where(EventOutbox.node_id == "gone-node"))
                ).scalars()
            }
        assert left == {"new-failed", "old-pending"}
    finally:
        await stop_node(again)
