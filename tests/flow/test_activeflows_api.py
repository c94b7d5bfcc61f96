"""``/v1.0/activeflows`` through the real app on SQLite and PostgreSQL: create, list, get, stop, delete,
tenancy and the error envelope."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.api.support import Api, assert_envelope


@pytest.fixture
async def fapi(api: Api) -> AsyncIterator[Api]:
    assert "/v1.0/activeflows" in api.app.openapi()["paths"]
    try:
        yield api
    finally:
        await api.platform.flows.close()


async def wait_status(api: Api, af_id: str, status: str, within: float = 5.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        body = (await api.admin.client.get(f"/v1.0/activeflows/{af_id}")).json()
        if body["status"] == status or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_create_with_actions_runs_to_the_end(fapi: Api) -> None:
    c = fapi.admin.client
    r = await c.post(
        "/v1.0/activeflows",
        json={
            "actions": [
                {"type": "variable_set", "option": {"key": "greeting", "value": "hi ${who}"}},
                {"type": "sleep", "option": {"duration": 10}},
            ],
            "variables": {"who": "Ann", "voipbin.activeflow.id": "forged"},
        },
    )
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["reference_type"] == "api" and created["status"] == "running"
    assert created["customer_id"] == fapi.admin.customer_id and created["tm_create"].endswith("Z")
    body = await wait_status(fapi, created["id"], "ended")
    assert body["status"] == "ended"
    assert [a["type"] for a in body["executed_actions"]] == ["variable_set", "sleep"]
    assert body["current_action"]["type"] == "sleep"
    listed = (await c.get("/v1.0/activeflows")).json()
    assert created["id"] in {a["id"] for a in listed["result"]} and listed["next_page_token"]


async def test_create_with_flow_id_id_and_webhook(fapi: Api) -> None:
    c = fapi.admin.client
    flow = (await c.post("/v1.0/flows", json={"name": "f", "actions": [{"type": "stop"}]})).json()
    wanted = str(uuid.uuid4())
    r = await c.post(
        "/v1.0/activeflows",
        json={"id": wanted, "flow_id": flow["id"], "webhook_uri": "https://example.com/af"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == wanted and body["flow_id"] == flow["id"]
    assert body["webhook_uri"] == "https://example.com/af" and body["webhook_method"] == "POST"
    assert (await wait_status(fapi, wanted, "ended"))["status"] == "ended"
    # The same id again is rejected.
    assert_envelope(
        await c.post("/v1.0/activeflows", json={"id": wanted, "flow_id": flow["id"]}), 400, "INVALID_ARGUMENT"
    )


async def test_create_validation(fapi: Api) -> None:
    c = fapi.admin.client
    assert_envelope(await c.post("/v1.0/activeflows", json={}), 400, "INVALID_ARGUMENT")
    assert_envelope(
        await c.post("/v1.0/activeflows", json={"actions": [{"type": "nope"}]}), 400, "INVALID_ACTION_TYPE"
    )
    assert_envelope(
        await c.post("/v1.0/activeflows", json={"flow_id": str(uuid.uuid4())}), 404, "FLOW_NOT_FOUND"
    )
    assert_envelope(
        await c.post("/v1.0/activeflows", json={"actions": [], "webhook_method": "PATCH"}),
        400,
        "INVALID_ARGUMENT",
    )
    # Another tenant's flow is not found either.
    other_flow = (
        await fapi.other.client.post("/v1.0/flows", json={"name": "x", "actions": [{"type": "stop"}]})
    ).json()
    assert_envelope(
        await c.post("/v1.0/activeflows", json={"flow_id": other_flow["id"]}), 404, "FLOW_NOT_FOUND"
    )


async def test_call_actions_end_an_api_activeflow_with_an_error(fapi: Api) -> None:
    c = fapi.admin.client
    created = (
        await c.post(
            "/v1.0/activeflows",
            json={
                "actions": [
                    {"type": "answer"},
                    {"type": "variable_set", "option": {"key": "k", "value": "v"}},
                ]
            },
        )
    ).json()
    body = await wait_status(fapi, created["id"], "ended")
    assert body["status"] == "ended" and [a["type"] for a in body["executed_actions"]] == ["answer"]


async def test_stop_and_delete(fapi: Api) -> None:
    c = fapi.admin.client
    sub = fapi.platform.events.subscribe()
    created = (
        await c.post(
            "/v1.0/activeflows", json={"actions": [{"type": "sleep", "option": {"duration": 60000}}]}
        )
    ).json()
    body = await wait_status(fapi, created["id"], "running")
    await asyncio.sleep(0.1)
    started = time.monotonic()
    r = await c.post(f"/v1.0/activeflows/{created['id']}/stop")
    assert r.status_code == 200 and r.json()["status"] == "ended"
    assert time.monotonic() - started < 2.0
    again = await c.post(f"/v1.0/activeflows/{created['id']}/stop")  # idempotent
    assert again.status_code == 200 and again.json()["status"] == "ended"
    r = await c.delete(f"/v1.0/activeflows/{created['id']}")
    assert r.status_code == 200 and r.json()["tm_delete"]
    assert_envelope(await c.get(f"/v1.0/activeflows/{created['id']}"), 404, "ACTIVEFLOW_NOT_FOUND")
    assert created["id"] not in {a["id"] for a in (await c.get("/v1.0/activeflows")).json()["result"]}
    types = []
    while not sub.queue.empty():
        event = sub.queue.get_nowait()
        if event.data.get("id") == created["id"]:
            types.append(event.type)
    assert types[0] == "activeflow_created" and types[-1] == "activeflow_deleted"
    assert "activeflow_updated" in types
    del body


async def test_tenancy(fapi: Api) -> None:
    created = (
        await fapi.admin.client.post(
            "/v1.0/activeflows", json={"actions": [{"type": "sleep", "option": {"duration": 60000}}]}
        )
    ).json()
    other = fapi.other.client
    af = created["id"]
    assert_envelope(await other.get(f"/v1.0/activeflows/{af}"), 404, "ACTIVEFLOW_NOT_FOUND")
    assert_envelope(await other.post(f"/v1.0/activeflows/{af}/stop"), 404, "ACTIVEFLOW_NOT_FOUND")
    assert_envelope(await other.delete(f"/v1.0/activeflows/{af}"), 404, "ACTIVEFLOW_NOT_FOUND")
    assert af not in {a["id"] for a in (await other.get("/v1.0/activeflows")).json()["result"]}
    assert_envelope(await other.get("/v1.0/activeflows/not-a-uuid"), 400, "INVALID_ID")
    assert_envelope(await fapi.anon.get("/v1.0/activeflows"), 401, "AUTHENTICATION_REQUIRED")
    # Still running: the other tenant could not stop it.
    assert (await fapi.admin.client.get(f"/v1.0/activeflows/{af}")).json()["status"] == "running"


async def test_bodies_match_voipbin_schema(fapi: Api) -> None:
    from tests.spec import SPEC, validate

    if not SPEC.exists():
        pytest.skip("VoIPBIN reference spec not present")
    c = fapi.admin.client
    created = (
        await c.post(
            "/v1.0/activeflows",
            json={
                "actions": [{"type": "variable_set", "option": {"key": "a", "value": "b"}}, {"type": "stop"}]
            },
        )
    ).json()
    validate(created, "FlowManagerActiveflow")
    ended = await wait_status(fapi, created["id"], "ended")
    validate(ended, "FlowManagerActiveflow")
