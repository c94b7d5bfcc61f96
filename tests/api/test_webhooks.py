"""Customer webhooks: every event is POSTed as {"type","data"}, signed, retried on 5xx, in order."""

from __future__ import annotations

import hashlib
import hmac
import json

from starlette.responses import Response

from tests.api.support import Api
from tests.flow.localhttp import local_server


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
            assert body["data"]["id"] == call_id and set(body) == {"type", "data"}
            expected = "sha256=" + hmac.new(secret.encode(), seen.body, hashlib.sha256).hexdigest()
            assert seen.headers["x-voipbin-signature"] == expected
            assert seen.headers["content-type"] == "application/json"


async def test_retries_on_server_error_then_gives_up(api: Api) -> None:
    api.platform.webhooks.retry_delay = 0.05  # type: ignore[union-attr]
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
        assert len({json.loads(s.body)["type"] for s in hook.requests[:3]}) == 1  # the same event, 3 tries
        assert all(s.path == "/down" for s in hook.requests)


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
        import asyncio

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
    """Events for a customer with no webhook are skipped on the bus: no queue fills, nothing is dropped."""
    import asyncio

    dispatcher = api.platform.webhooks
    assert dispatcher is not None
    cid = api.other.created.customer.id
    api.platform.events.publish(cid, "call_updated", {"id": "x"})  # first event: settings are looked up
    await asyncio.sleep(0.2)
    for i in range(5000):
        api.platform.events.publish(cid, "call_updated", {"id": str(i), "activeflow_id": str(i)})
    await asyncio.sleep(0.5)
    assert dispatcher.dropped == 0
    queue, _ = dispatcher._worker(cid)
    assert queue.qsize() == 0
