"""The calls API surface: validation, the seed's response shape, 402, hangup and delete."""

from __future__ import annotations

from tests.api.support import Api, assert_envelope

SOURCE = {"type": "tel", "target": "+15551234567"}
DEST = [{"type": "tel", "target": "+15559876543"}]


def seed_call(actions: list) -> dict:
    return {"source": SOURCE, "destinations": DEST, "actions": actions}


async def test_create_call_seed_shape(api: Api) -> None:
    r = await api.admin.client.post(
        "/v1.0/calls",
        json=seed_call(
            [
                {"type": "answer"},
                {
                    "type": "ai",
                    "option": {"initial_prompt": "Be nice.", "language": "en-US", "voice_type": "female"},
                },
            ]
        ),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "dialing" and body["direction"] == "outgoing"
    assert body["source"] == SOURCE and body["destination"] == DEST[0]
    assert body["tm_create"].endswith("Z") and body["id"]
    assert [c["id"] for c in body["calls"]] == [body["id"]] and body["groupcalls"] == []
    got = (await api.admin.client.get(f"/v1.0/calls/{body['id']}")).json()
    assert got["id"] == body["id"] and got["flow_id"] == body["flow_id"]
    # The temporary flow holding inline actions is not listed among the customer's flows.
    assert body["flow_id"] not in {
        f["id"] for f in (await api.admin.client.get("/v1.0/flows")).json()["result"]
    }


async def test_create_call_with_token_query(api: Api) -> None:
    login = (
        await api.anon.post("/auth/login", json={"username": "admin", "password": "admin-password-1"})
    ).json()
    r = await api.anon.post(f"/v1.0/calls?token={login['token']}", json=seed_call([{"type": "answer"}]))
    assert r.status_code == 200, r.text


async def test_create_call_validation(api: Api) -> None:
    c = api.admin.client
    assert_envelope(
        await c.post("/v1.0/calls", json=seed_call([{"type": "nope"}])), 400, "INVALID_ACTION_TYPE"
    )
    r = await c.post("/v1.0/calls", json={"source": SOURCE, "destinations": [], "actions": []})
    assert "destinations" in assert_envelope(r, 400, "INVALID_ARGUMENT")["message"]
    r = await c.post(
        "/v1.0/calls",
        json={"source": SOURCE, "destinations": [{"type": "tel", "target": "12"}], "actions": []},
    )
    assert "destinations[0]" in str(assert_envelope(r, 400, "INVALID_ARGUMENT"))
    r = await c.post("/v1.0/calls", json={"source": SOURCE, "destinations": DEST})
    assert_envelope(r, 400, "INVALID_ARGUMENT")
    r = await c.post(
        "/v1.0/calls",
        json={"source": {"type": "tel", "target": "+15550001111"}, "destinations": DEST, "actions": []},
    )
    assert "source" in str(assert_envelope(r, 400, "INVALID_ARGUMENT"))
    r = await c.post("/v1.0/calls", json={**seed_call([]), "anonymous": "maybe"})
    assert_envelope(r, 400, "INVALID_ARGUMENT")
    r = await c.post("/v1.0/calls", json={**seed_call([]), "variables": {"a": 1}})
    assert_envelope(r, 400, "INVALID_ARGUMENT")
    r = await c.post("/v1.0/calls", content=b"[1,2", headers={"content-type": "application/json"})
    assert_envelope(r, 400, "INVALID_JSON_BODY")
    r = await c.post("/v1.0/calls", json=[1, 2])
    assert_envelope(r, 400, "INVALID_JSON_BODY")


async def test_insufficient_balance_is_402(api: Api) -> None:
    account = (await api.admin.client.get("/v1.0/billing-accounts")).json()
    await api.admin.client.post(
        f"/v1.0/billing_accounts/{account['id']}/balance_subtract_force",
        json={"balance": account["balance_credit"]},
    )
    r = await api.admin.client.post("/v1.0/calls", json=seed_call([{"type": "answer"}]))
    err = assert_envelope(r, 402, "INSUFFICIENT_BALANCE")
    assert err["status"] == "PAYMENT_REQUIRED"


async def test_extension_destination_makes_groupcall(api: Api) -> None:
    await api.admin.client.post("/v1.0/extensions", json={"extension": "3001", "password": "password-123"})
    r = await api.admin.client.post(
        "/v1.0/calls",
        json={
            "source": SOURCE,
            "destinations": [{"type": "extension", "target_name": "3001"}],
            "actions": [{"type": "answer"}],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["calls"] == [] and len(body["groupcalls"]) == 1
    assert body["groupcalls"][0]["ring_method"] == "ring_all"


async def test_hangup_and_delete(api: Api) -> None:
    c = api.admin.client
    call = (await c.post("/v1.0/calls", json=seed_call([{"type": "answer"}]))).json()
    r = await c.post(f"/v1.0/calls/{call['id']}/hangup")
    assert r.status_code == 200
    assert r.json()["status"] == "hangup" and r.json()["hangup_reason"]
    r = await c.delete(f"/v1.0/calls/{call['id']}")
    assert r.status_code == 200 and r.json()["tm_delete"]
    assert_envelope(await c.get(f"/v1.0/calls/{call['id']}"), 404, "CALL_NOT_FOUND")
    assert_envelope(await c.get("/v1.0/calls/123"), 400, "INVALID_ID")
