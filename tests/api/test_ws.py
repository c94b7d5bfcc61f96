"""``GET /v1.0/ws``: VoIPBIN's event stream, with a real ``websockets`` client against the app served by
uvicorn on loopback: authentication, subscribe/unsubscribe, a call's status changes in order, tenancy,
and a stalled client dropped without delaying anything else."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection, connect

from tests.api.support import Api
from tests.sip.conftest import free_port

CALL = {
    "source": {"type": "tel", "target": "+15551234567"},
    "destinations": [{"type": "tel", "target": "+15559876543"}],
    "actions": [{"type": "answer"}],
}


@pytest.fixture
async def served(api: Api) -> AsyncIterator[str]:
    """The app on a real loopback port (the node is already started by ``api``): its ws:// base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110  (uvicorn exposes only a flag)
            await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/v1.0/ws"
    finally:
        server.should_exit = True
        await task


async def recv_json(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), within))


async def subscribe(ws: ClientConnection, *topics: str) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "subscribe", "topics": list(topics)}))
    return await recv_json(ws)


async def events_until(ws: ClientConnection, last_type: str, within: float = 10.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while not got or got[-1]["type"] != last_type:
        got.append(await recv_json(ws, max(0.1, deadline - time.monotonic())))
    return got


async def test_unauthenticated_is_refused_with_the_envelope(api: Api, served: str) -> None:
    for url in (served, f"{served}?token=not-a-jwt", f"{served}?accesskey=nope"):
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            async with connect(url):
                pass
        assert info.value.response.status_code == 401
        assert json.loads(info.value.response.body)["error"]["status"] == "UNAUTHENTICATED"


async def test_call_status_changes_arrive_in_order(api: Api, served: str) -> None:
    cid = api.admin.customer_id
    async with connect(f"{served}?accesskey={api.admin.key}") as ws:
        ack = await subscribe(ws, f"customer_id:{cid}:call:*")
        assert ack == {"type": "ack", "action": "subscribe", "topics": [f"customer_id:{cid}:call:*"]}
        r = await api.admin.client.post("/v1.0/calls", json=CALL)
        call_id = r.json()["id"]
        got = await events_until(ws, "call_hangup")
        assert [e["type"] for e in got] == ["call_created", "call_dialing", "call_hangup"]
        assert all(e["data"]["id"] == call_id and e["topic"] == f"customer_id:{cid}:call:*" for e in got)
        assert len({e["id"] for e in got}) == 3  # each with its own event id
        # Unsubscribe, then a per-resource topic: only that call's events.
        r2 = await api.admin.client.post("/v1.0/calls", json=CALL)
        other_call = r2.json()["id"]
        await ws.send(json.dumps({"type": "unsubscribe", "topics": [f"customer_id:{cid}:call:*"]}))
        while (msg := await recv_json(ws))["type"] != "ack":  # sent before the unsubscribe took effect
            assert msg["data"]["id"] == other_call
        await api.admin.client.post("/v1.0/calls", json=CALL)
        with pytest.raises(TimeoutError):  # unsubscribed: nothing more
            await recv_json(ws, 0.5)
        assert (await subscribe(ws, f"customer_id:{cid}:call:{call_id}"))["type"] == "ack"
        await api.admin.client.post("/v1.0/calls", json=CALL)  # another call: not this topic
        await api.admin.client.delete(f"/v1.0/calls/{call_id}")
        deleted = await recv_json(ws)
        assert deleted["type"] == "call_deleted" and deleted["data"]["id"] == call_id


async def test_webhook_and_stream_carry_the_same_event(api: Api, served: str) -> None:
    from tests.events.receiver import FlakyReceiver

    receiver = FlakyReceiver()
    await receiver.up(200)
    try:
        await api.admin.client.put("/v1.0/customer", json={"webhook_uri": receiver.url})
        async with connect(served, additional_headers={"Authorization": f"Bearer {api.admin.key}"}) as ws:
            await subscribe(ws, f"customer_id:{api.admin.customer_id}:call:*")
            await api.admin.client.post("/v1.0/calls", json=CALL)
            got = await events_until(ws, "call_hangup")
        await api.platform.writer.flush()
        await api.platform.webhooks.wait_idle()
        hooks = {h.event_id: h.body for h in receiver.hits}
        for e in got:
            assert hooks[e["id"]] == {k: v for k, v in e.items() if k != "topic"}
    finally:
        await receiver.down()


async def test_other_tenants_resources_are_not_visible(api: Api, served: str) -> None:
    admin_cid, other_cid = api.admin.customer_id, api.other.customer_id
    async with connect(f"{served}?accesskey={api.other.key}") as ws:
        refused = await subscribe(ws, f"customer_id:{admin_cid}:call:*")
        assert refused["type"] == "error" and "not your customer" in refused["message"]
        bad = await subscribe(ws, "call:*")
        assert bad["type"] == "error"
        await ws.send("not json")
        assert (await recv_json(ws))["type"] == "error"
        await ws.send(b"\x00binary")
        assert (await recv_json(ws))["type"] == "error"
        assert (await subscribe(ws, f"customer_id:{other_cid}:call:*"))["type"] == "ack"
        r = await api.admin.client.post("/v1.0/calls", json=CALL)  # the admin customer's call
        with pytest.raises(TimeoutError):
            leaked = await recv_json(ws, 1.0)
            pytest.fail(f"another tenant's event leaked: {leaked} (call {r.json()['id']})")


@pytest.mark.serial  # a real-time bound: run with nothing beside it (conftest)
async def test_stalled_client_is_dropped_without_delaying_calls(api: Api, served: str) -> None:
    api.platform.stream.buffer = 50
    cid = api.admin.customer_id
    topic = f"customer_id:{cid}:call:*"
    # The stalled client: a tiny receive buffer, and it never reads after subscribing.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(served.split(":")[2].split("/")[0])))
    stalled = await connect(f"{served}?accesskey={api.admin.key}", sock=sock, max_queue=1)
    assert (await subscribe(stalled, topic))["type"] == "ack"
    async with connect(f"{served}?accesskey={api.admin.key}") as good:
        await subscribe(good, topic)
        big = {"id": "x", "blob": os.urandom(20_000).hex()}  # incompressible (permessage-deflate)
        got: list[dict[str, Any]] = []

        async def read_good() -> None:
            while len(got) < 400:
                got.append(await recv_json(good, 20))

        reader = asyncio.create_task(read_good())  # the good client reads while events are published
        spent = 0.0
        for i in range(400):  # ~16 MB: far more than the stalled client's buffers hold
            t = time.monotonic()
            api.platform.events.publish(api.admin.created.customer.id, "call_updated", {**big, "id": str(i)})
            spent += time.monotonic() - t
            if i % 5 == 4:
                await asyncio.sleep(0.01)
        assert spent < 1.0  # publishing never waited for a client
        await reader
        assert [e["data"]["id"] for e in got] == [str(i) for i in range(400)]  # the good client: in order
        t = time.monotonic()
        r = await api.admin.client.post("/v1.0/calls", json=CALL)
        assert r.status_code == 200
        events = await events_until(good, "call_hangup")
        assert events[0]["type"] == "call_created" and time.monotonic() - t < 5.0
    assert api.platform.stream.dropped == 1
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with asyncio.timeout(10):
            while True:
                await stalled.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    await stalled.close()
