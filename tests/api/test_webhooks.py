"""Customer webhooks: every event is POSTed as {"id","type","data"}, signed, retried on 5xx, in order."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import uuid

from sqlalchemy import func, select
from starlette.responses import Response

from tests.api.support import Api
from tests.flow.localhttp import local_server
from voipbin.events.webhooks import RetryPolicy
from voipbin.store.tables import EventOutbox


async def test_call_events_reach_the_webhook_signed(api: Api) -> None:
    async with local_server() as hook:
        c = api.admin.client
        await c.put("/v1.0/customer", json={"webhook_uri": hook.url("/hook"), "webhook_method": "POST"})
        secret = (await c.post("/v1.0/customer/webhook_secret_regenerate")).json()["webhook_secret"]
        r = await c.post(
            "/v1.0/calls",
            json={
                "source": {"type": "tel", "target": "+15551234567"},
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "actions": [{"type": "answer"}],
            },
        )
        call_id = r.json()["id"]
        await hook.wait_for(3, within=10)  # created, dialing, hangup (telephony is off in these tests)
        types = [json.loads(s.body)["type"] for s in hook.requests]
        assert types[:3] == ["call_created", "call_dialing", "call_hangup"]
        for seen in hook.requests:
            body = json.loads(seen.body)
            assert body["data"]["id"] == call_id and set(body) == {"id", "type", "data"}
            assert seen.headers["x-voipbin-event-id"] == body["id"]
            expected = "sha256=" + hmac.new(secret.encode(), seen.body, hashlib.sha256).hexdigest()
            assert seen.headers["x-voipbin-signature"] == expected
            assert seen.headers["content-type"] == "application/json"


async def test_retries_on_server_error_then_gives_up(api: Api) -> None:
    """A 5xx is retried (the same event, the same id, backing off) until the event is too old; then it
    is marked failed, reported as ``webhook_failed`` and the next event is sent."""
    dispatcher = api.platform.webhooks
    dispatcher.policy = RetryPolicy(base=0.05, max_delay=0.2, max_age=1.5)
    reports = api.platform.events.subscribe()
    async with local_server() as hook:
        hook.routes["/down"] = lambda seen: Response(status_code=503)
        await api.other.client.put("/v1.0/customer", json={"webhook_uri": hook.url("/down")})
        await api.other.client.post(
            "/v1.0/calls",
            json={
                "source": {"type": "sip", "target": "me@example.com"},
                "destinations": [{"type": "sip", "target": "you@example.com"}],
                "actions": [],
            },
        )
        await hook.wait_for(3, within=10)
        first = [json.loads(s.body) for s in hook.requests[:3]]
        assert len({(b["type"], b["id"]) for b in first}) == 1  # the same event, 3 tries
        gaps = [b.at - a.at for a, b in itertools.pairwise(hook.requests[:3])]
        assert gaps[1] > 0.02, gaps  # backing off, not hammering
        seen = []
        async with asyncio.timeout(10):
            while True:
                event = await reports.get()
                seen.append(event.type)
                if event.type == "webhook_failed":
                    break
        # Reported while still retrying (once), then when given up on.
        assert [t for t in seen if t.startswith("webhook_")] == ["webhook_failing", "webhook_failed"], seen
        assert event.data["event_id"] == first[0]["id"] and event.data["reason"].startswith("undelivered")
        assert event.data["event_type"] == first[0]["type"] and event.data["attempts"] >= 3
        # Gave up on it: the receiver is back, a new call's events go out and the given-up one is
        # never sent again.
        hook.routes["/down"] = lambda seen: Response(status_code=200)
        gave_up_at = len(hook.requests)
        r = await api.other.client.post(
            "/v1.0/calls",
            json={
                "source": {"type": "sip", "target": "me@example.com"},
                "destinations": [{"type": "sip", "target": "you@example.com"}],
                "actions": [],
            },
        )
        new_call = r.json()["id"]

        def later() -> list[dict]:
            return [json.loads(s.body) for s in hook.requests[gave_up_at:]]

        async with asyncio.timeout(10):
            while not any(b["type"] == "call_created" and b["data"]["id"] == new_call for b in later()):
                hook.arrived.clear()
                await hook.arrived.wait()
        assert first[0]["id"] not in {b["id"] for b in later()}  # given up on: never sent again
        assert all(s.path == "/down" for s in hook.requests)
    async with api.platform.db.session() as session:
        failed = (
            (
                await session.execute(
                    select(EventOutbox.status).where(EventOutbox.event_id == uuid.UUID(first[0]["id"]))
                )
            )
            .scalars()
            .all()
        )
    assert failed == ["failed"]


async def test_gone_receiver_is_not_hammered(api: Api) -> None:
    """410 Gone: one request, a report, and the destination's later events are not sent."""
    api.platform.webhooks.policy = RetryPolicy(base=0.05, max_delay=0.1, max_age=60)
    reports = api.platform.events.subscribe()
    async with local_server() as hook:
        hook.routes["/gone"] = lambda seen: Response(status_code=410)
        await api.other.client.put("/v1.0/customer", json={"webhook_uri": hook.url("/gone")})
        await api.other.client.post(
            "/v1.0/calls",
            json={
                "source": {"type": "sip", "target": "me@example.com"},
                "destinations": [{"type": "sip", "target": "you@example.com"}],
                "actions": [],
            },
        )
        async with asyncio.timeout(10):
            while True:
                event = await reports.get()
                if event.type == "webhook_failed":
                    break
        assert "410" in event.data["reason"]
        await api.platform.webhooks.wait_idle()
        assert len(hook.requests) == 1


async def test_other_customers_events_do_not_leak(api: Api) -> None:
    async with local_server() as hook:
        await api.other.client.put("/v1.0/customer", json={"webhook_uri": hook.url("/other")})
        await api.admin.client.post("/v1.0/flows", json={"actions": []})
        await api.admin.client.post(
            "/v1.0/calls",
            json={
                "source": {"type": "tel", "target": "+15551234567"},
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "actions": [],
            },
        )
        await asyncio.sleep(0.5)
        assert hook.requests == []


async def test_activeflow_webhook_receives_its_events(api: Api) -> None:
    async with local_server() as hook:
        r = await api.admin.client.post(
            "/v1.0/activeflows",
            json={
                "actions": [{"type": "variable_set", "option": {"key": "a", "value": "b"}}],
                "webhook_uri": hook.url("/af"),
                "webhook_method": "POST",
            },
        )
        assert r.status_code == 200, r.text
        await hook.wait_for(1, within=10)
        bodies = [json.loads(s.body) for s in hook.requests]
        assert all(b["type"].startswith("activeflow_") and b["data"]["id"] == r.json()["id"] for b in bodies)


async def test_customers_without_webhooks_cost_nothing(api: Api) -> None:
    """Events for a customer with no webhook are skipped on the bus: nothing is stored, nothing queued."""
    dispatcher = api.platform.webhooks
    assert dispatcher is not None
    cid = api.other.created.customer.id
    api.platform.events.publish(cid, "call_updated", {"id": "x"})  # first event: settings are looked up
    await api.platform.writer.flush()
    await dispatcher.wait_idle()
    await api.platform.writer.flush()
    for i in range(5000):
        api.platform.events.publish(cid, "call_updated", {"id": str(i), "activeflow_id": str(i)})
    await asyncio.sleep(0.2)
    await api.platform.writer.flush()
    assert dispatcher.dropped == 0 and dispatcher.backlog() == 0
    async with api.platform.db.session() as session:
        stored = (
            await session.execute(select(func.count()).where(EventOutbox.customer_id == cid))
        ).scalar_one()
    assert stored == 0
