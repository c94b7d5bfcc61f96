"""``/v1.0/aicalls`` and ``/v1.0/aimessages`` validation and tenancy without a live call; AI tool names
refused at write time; ``/ai_models`` is honest about the demo engine."""

from __future__ import annotations

import uuid

from tests.api.support import Api, assert_envelope


async def test_aicall_ids_are_validated_and_scoped(api: Api) -> None:
    c = api.admin.client
    missing = uuid.uuid4()
    assert_envelope(await c.get(f"/v1.0/aicalls/{missing}"), 404, "AICALL_NOT_FOUND")
    assert_envelope(await c.get("/v1.0/aicalls/nope"), 400, "INVALID_ID")
    assert_envelope(await c.post(f"/v1.0/aicalls/{missing}/terminate"), 404, "AICALL_NOT_FOUND")
    assert_envelope(await c.delete(f"/v1.0/aicalls/{missing}"), 404, "AICALL_NOT_FOUND")
    assert_envelope(await c.get(f"/v1.0/aicalls/{missing}/participants"), 404, "AICALL_NOT_FOUND")
    assert_envelope(await c.get(f"/v1.0/aimessages/{missing}"), 404, "AIMESSAGE_NOT_FOUND")
    assert_envelope(await c.delete("/v1.0/aimessages/nope"), 400, "INVALID_ID")
    body = {"aicall_id": str(missing), "role": "user", "content": "hi"}
    assert_envelope(await c.post("/v1.0/aimessages", json=body), 404, "AICALL_NOT_FOUND")
    assert (await c.post("/v1.0/aimessages", json={**body, "role": "wizard"})).status_code == 400
    assert (await c.get("/v1.0/aicalls")).json() == {"result": []}


async def test_post_aicall_checks_its_references(api: Api) -> None:
    c = api.admin.client
    ai = (await c.post("/v1.0/ais", json={"name": "x", "engine_model": "offline.scripted"})).json()
    body = {"assistance_type": "ai", "assistance_id": ai["id"], "reference_type": "call",
            "reference_id": str(uuid.uuid4())}  # fmt: skip
    assert_envelope(await c.post("/v1.0/aicalls", json=body), 404, "CALL_NOT_FOUND")
    r = await c.post("/v1.0/aicalls", json={**body, "reference_type": "conversation"})
    assert_envelope(r, 400, "INVALID_ARGUMENT")
    assert (await c.post("/v1.0/aicalls", json={**body, "assistance_id": "x"})).status_code == 400
    # Another customer's call is not found for them (and their AI is not ours).
    call = await c.post(
        "/v1.0/calls",
        json={"source": {"type": "tel", "target": "+15551234567"},
              "destinations": [{"type": "tel", "target": "+15559876543"}], "actions": [{"type": "answer"}]},
    )  # fmt: skip
    other_body = {**body, "reference_id": call.json()["id"]}
    assert_envelope(await api.other.client.post("/v1.0/aicalls", json=other_body), 404, "CALL_NOT_FOUND")


async def test_tools_that_cannot_run_here_are_refused_when_the_ai_is_written(api: Api) -> None:
    c = api.admin.client
    r = await c.post("/v1.0/ais", json={"engine_model": "offline.scripted", "tool_names": ["send_email"]})
    err = assert_envelope(r, 400, "UNSUPPORTED_TOOL_NAMES")
    assert "send_email" in err["message"] and "SMTP" in err["message"]
    ok = await c.post("/v1.0/ais", json={"engine_model": "offline.scripted", "tool_names": ["connect_call"]})
    assert ok.status_code == 200, ok.text
    r = await c.put(f"/v1.0/ais/{ok.json()['id']}", json={"tool_names": ["case_create", "search_knowledge"]})
    err = assert_envelope(r, 400, "UNSUPPORTED_TOOL_NAMES")
    assert "case_create" in err["message"] and "search_knowledge" in err["message"]


async def test_ai_models_says_the_default_engine_is_a_demo(api: Api) -> None:
    body = (await api.admin.client.get("/v1.0/ai_models")).json()
    assert body["default_engine_model"] == "offline.scripted"
    assert "demo rule table" in body["default_engine_notice"]
    assert "VOIPBIN_OLLAMA_BASE_URL" in body["default_engine_notice"]


async def test_calls_whose_ai_costs_credit_are_refused_for_balance_before_dialing(api: Api) -> None:
    """A cloud AI costs credit: with an empty balance POST /calls answers 402 and dials nothing; the
    offline engines are free, so the same call with them is placed."""
    from sqlalchemy import update

    from voipbin.store.tables import BillingAccount

    c = api.admin.client
    async with api.platform.db.session() as session:
        await session.execute(
            update(BillingAccount)
            .where(BillingAccount.customer_id == api.admin.created.customer.id)
            .values(balance_credit=0, balance_token=0)
        )
        await session.commit()
    cloud = await c.post("/v1.0/ais", json={"engine_model": "openai.gpt-4o-mini", "engine_key": "sk-test-12"})
    assert cloud.status_code == 200, cloud.text
    local = (await c.post("/v1.0/ais", json={"engine_model": "offline.scripted"})).json()

    def call(ai_id: str) -> dict[str, object]:
        return {
            "source": {"type": "sip", "target": "alice@example.test"},
            "destinations": [{"type": "sip", "target": "bob@127.0.0.1:9"}],
            "actions": [{"type": "ai_talk", "option": {"assistance_type": "ai", "assistance_id": ai_id}}],
        }

    r = await c.post("/v1.0/calls", json=call(cloud.json()["id"]))
    assert_envelope(r, 402, "INSUFFICIENT_BALANCE")
    assert (await c.get("/v1.0/calls")).json()["result"] == []  # nothing dialled
    # A stored flow with the cloud AI is refused the same way.
    flow = (await c.post("/v1.0/flows", json={"actions": call(cloud.json()["id"])["actions"]})).json()
    body = {**call(cloud.json()["id"]), "flow_id": flow["id"]}
    del body["actions"]
    assert_envelope(await c.post("/v1.0/calls", json=body), 402, "INSUFFICIENT_BALANCE")
    placed = await c.post("/v1.0/calls", json=call(local["id"]))
    assert placed.status_code == 200, placed.text
