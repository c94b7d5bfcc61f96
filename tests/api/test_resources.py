"""CRUD, validation and pagination of the control-plane resources."""

from __future__ import annotations

from tests.api.support import Api, assert_envelope

SEED_ACTIONS = [
    {"type": "answer"},
    {
        "type": "ai",
        "option": {
            "initial_prompt": "You are a helpful customer service assistant.",
            "language": "en-US",
            "voice_type": "female",
        },
    },
]


async def test_flow_crud(api: Api) -> None:
    c = api.admin.client
    r = await c.post("/v1.0/flows", json={"name": "f", "detail": "d", "actions": SEED_ACTIONS})
    assert r.status_code == 200, r.text
    flow = r.json()
    assert flow["type"] == "flow" and len(flow["actions"]) == 2
    assert all(a["id"] for a in flow["actions"])
    assert flow["actions"][1]["option"]["voice_type"] == "female"

    r = await c.put(f"/v1.0/flows/{flow['id']}", json={"name": "g", "actions": [{"type": "hangup"}]})
    assert r.json()["name"] == "g" and r.json()["actions"][0]["type"] == "hangup"
    assert r.json()["tm_update"]
    assert (await c.get(f"/v1.0/flows/{flow['id']}")).json()["name"] == "g"
    assert (await c.delete(f"/v1.0/flows/{flow['id']}")).json()["tm_delete"]
    assert_envelope(await c.get(f"/v1.0/flows/{flow['id']}"), 404, "FLOW_NOT_FOUND")


async def test_flow_action_validation(api: Api) -> None:
    c = api.admin.client
    r = await c.post("/v1.0/flows", json={"actions": [{"type": "answer"}, {"type": "dance"}]})
    err = assert_envelope(r, 400, "INVALID_ACTION_TYPE")
    assert "actions[1]" in err["message"] or "actions[1]" in str(err.get("details"))
    r = await c.post("/v1.0/flows", json={"actions": [{"type": "sleep", "option": {"duration": "long"}}]})
    err = assert_envelope(r, 400, "INVALID_ARGUMENT")
    assert "duration" in err["message"]
    r = await c.post("/v1.0/flows", json={"actions": "answer"})
    assert_envelope(r, 400, "INVALID_ARGUMENT")
    assert_envelope(await c.get("/v1.0/flows/not-a-uuid"), 400, "INVALID_ID")


async def test_pagination_walks_every_row_once(api: Api) -> None:
    c = api.admin.client
    ids = set()
    for i in range(7):
        ids.add((await c.post("/v1.0/flows", json={"name": f"p{i}", "actions": []})).json()["id"])
    seen: list[str] = []
    token = None
    while True:
        params = {"page_size": 3, **({"page_token": token} if token else {})}
        body = (await c.get("/v1.0/flows", params=params)).json()
        if not body["result"]:
            break
        assert len(body["result"]) <= 3
        seen += [f["id"] for f in body["result"]]
        token = body["next_page_token"]
    assert set(seen) == ids and len(seen) == len(ids)
    assert_envelope(
        await c.get("/v1.0/flows", params={"page_token": "yesterday"}), 400, "INVALID_REQUEST_PARAMETER"
    )
    assert (await c.get("/v1.0/flows", params={"page_size": 0})).status_code == 200


async def test_ai_engine_key_masked_and_encrypted(api: Api) -> None:
    c = api.admin.client
    key = "sk-test-1234567890abcdef"
    r = await c.post(
        "/v1.0/ais",
        json={
            "name": "a",
            "engine_model": "openai.gpt-4o",
            "engine_key": key,
            "init_prompt": "hi",
            "tts_type": "piper",
            "stt_type": "whisper",
        },
    )
    assert r.status_code == 200, r.text
    ai = r.json()
    assert ai["engine_key"] == "****cdef"
    assert key not in r.text
    from sqlalchemy import text

    async with api.platform.db.session() as s:
        stored = (await s.execute(text("SELECT engine_key_enc FROM ais"))).scalar_one()
    assert key not in stored and api.platform.encryptor.decrypt(stored) == key
    got = await c.get(f"/v1.0/ais/{ai['id']}")
    assert key not in got.text
    r = await c.put(f"/v1.0/ais/{ai['id']}", json={"init_prompt": "new"})
    assert r.json()["init_prompt"] == "new" and r.json()["engine_key"] == "****cdef"


async def test_ai_engine_model_validation(api: Api) -> None:
    c = api.admin.client
    for bad in ("gpt-4o", "nosuch.model", "openai.", ".gpt"):
        r = await c.post("/v1.0/ais", json={"engine_model": bad, "engine_key": "k" * 20})
        err = assert_envelope(r, 400, "INVALID_ARGUMENT")
        assert "engine_model" in err["message"], err
    # A cloud model with no key here and none configured for the platform: refused now, not mid-call.
    r = await c.post("/v1.0/ais", json={"engine_model": "anthropic.claude-3-5-sonnet"})
    err = assert_envelope(r, 400, "INVALID_ARGUMENT")
    assert "VOIPBIN_ANTHROPIC_API_KEY" in err["message"]
    r = await c.post("/v1.0/ais", json={"engine_model": "offline.scripted", "tts_type": "nosuchtts"})
    err = assert_envelope(r, 400, "INVALID_ARGUMENT")
    assert "tts_type" in err["message"]
    r = await c.post("/v1.0/ais", json={"engine_model": "offline.scripted", "tool_names": ["fly"]})
    assert_envelope(r, 400, "INVALID_TOOL_NAMES")
    models = (await c.get("/v1.0/ai_models")).json()
    assert any(m["provider"] == "openai" for m in models["result"])


async def test_numbers_buy_charges_and_lists(api: Api) -> None:
    c = api.other.client
    before = (await c.get("/v1.0/billing_account")).json()["balance_credit"]
    avail = (await c.get("/v1.0/available_numbers", params={"country_code": "US"})).json()["result"]
    numbers = [a["number"] for a in avail]
    assert "+15551234567" not in numbers  # the admin's development number
    assert "+15559876543" in numbers
    r = await c.post("/v1.0/numbers", json={"number": "+15552222222", "name": "mine"})
    assert r.status_code == 200, r.text
    number = r.json()
    assert number["status"] == "active" and number["tm_purchase"]
    after = (await c.get("/v1.0/billing_account")).json()["balance_credit"]
    assert before - after == api.platform.settings.number_price
    ledger = (await c.get("/v1.0/billings")).json()["result"]
    assert (
        ledger[0]["reference_type"] == "number"
        and ledger[0]["amount_credit"] == -api.platform.settings.number_price
    )
    assert_envelope(await c.post("/v1.0/numbers", json={"number": "+15552222222"}), 409, "ALREADY_EXISTS")
    assert_envelope(await c.post("/v1.0/numbers", json={"number": "+15550000000"}), 400, "INVALID_ARGUMENT")
    assert_envelope(await c.post("/v1.0/numbers", json={"number": "555"}), 400, "INVALID_ARGUMENT")
    flow = (await c.post("/v1.0/flows", json={"actions": [{"type": "answer"}]})).json()
    r = await c.put(f"/v1.0/numbers/{number['id']}/flow_ids", json={"call_flow_id": flow["id"]})
    assert r.json()["call_flow_id"] == flow["id"]
    foreign = (await api.admin.client.post("/v1.0/flows", json={"actions": []})).json()
    r = await c.put(f"/v1.0/numbers/{number['id']}", json={"call_flow_id": foreign["id"]})
    assert_envelope(r, 404, "FLOW_NOT_FOUND")
    assert (await c.delete(f"/v1.0/numbers/{number['id']}")).json()["status"] == "deleted"


async def test_number_purchase_needs_balance(api: Api) -> None:
    admin = api.admin.client
    other_account = (await api.other.client.get("/v1.0/billing_account")).json()
    r = await admin.post(
        f"/v1.0/billing_accounts/{other_account['id']}/balance_subtract_force",
        json={"balance": other_account["balance_credit"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["balance_credit"] == 0
    r = await api.other.client.post("/v1.0/numbers", json={"number": "+15553333333"})
    assert_envelope(r, 402, "INSUFFICIENT_BALANCE")


async def test_extensions_password_masked(api: Api) -> None:
    c = api.admin.client
    r = await c.post("/v1.0/extensions", json={"extension": "1001", "password": "s3cret-pass-99"})
    assert r.status_code == 200, r.text
    ext = r.json()
    assert ext["password"] == "****s-99" and "s3cret-pass-99" not in r.text
    assert ext["domain_name"].startswith(api.admin.customer_id)
    assert_envelope(
        await c.post("/v1.0/extensions", json={"extension": "1001", "password": "another-pass"}),
        409,
        "ALREADY_EXISTS",
    )
    assert_envelope(
        await c.post("/v1.0/extensions", json={"extension": "10 01", "password": "another-pass"}),
        400,
        "INVALID_ARGUMENT",
    )
    assert_envelope(
        await c.post("/v1.0/extensions", json={"extension": "1002", "password": "short"}),
        400,
        "INVALID_ARGUMENT",
    )
    r = await c.put(f"/v1.0/extensions/{ext['id']}", json={"password": "changed-pass-77"})
    assert r.json()["password"] == "****s-77"
    assert (await c.delete(f"/v1.0/extensions/{ext['id']}")).status_code == 200


async def test_billing_paths_and_admin(api: Api) -> None:
    a = (await api.admin.client.get("/v1.0/billing_account")).json()
    b = (await api.admin.client.get("/v1.0/billing-accounts")).json()
    assert a == b and a["balance_credit"] == api.platform.settings.initial_balance
    r = await api.admin.client.post(
        f"/v1.0/billing_accounts/{a['id']}/balance_add_force", json={"balance": 5}
    )
    assert r.json()["balance_credit"] == a["balance_credit"] + 5
    # Admin endpoints are refused to ordinary customers.
    r = await api.other.client.post(
        f"/v1.0/billing_accounts/{a['id']}/balance_add_force", json={"balance": 5}
    )
    assert_envelope(r, 403, "PERMISSION_DENIED")
    assert_envelope(await api.other.client.get("/v1.0/billing_accounts"), 403, "PERMISSION_DENIED")
    r = await api.admin.client.post(
        f"/v1.0/billing_accounts/{a['id']}/balance_add_force", json={"balance": -5}
    )
    assert_envelope(r, 400, "INVALID_ARGUMENT")


async def test_providers_and_routes_admin_only(api: Api) -> None:
    c = api.admin.client
    r = await c.post(
        "/v1.0/providers",
        json={
            "hostname": "127.0.0.1:5090",
            "name": "trunk",
            "auth_username": "u",
            "auth_password": "trunk-password",
        },
    )
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["auth_password"] == "****word" and "trunk-password" not in r.text
    r = await c.post("/v1.0/routes", json={"provider_id": p["id"], "target": "+1", "priority": 1})
    assert r.status_code == 200 and r.json()["target"] == "+1"
    assert_envelope(
        await c.post("/v1.0/routes", json={"provider_id": p["id"], "target": "usa"}), 400, "INVALID_ARGUMENT"
    )
    assert_envelope(await api.other.client.get("/v1.0/providers"), 403, "PERMISSION_DENIED")
    assert_envelope(
        await api.other.client.post("/v1.0/routes", json={"provider_id": p["id"]}), 403, "PERMISSION_DENIED"
    )
    r = await c.put(f"/v1.0/providers/{p['id']}", json={"register": True})
    assert r.json()["register"] is True


async def test_customer_webhook_settings(api: Api) -> None:
    c = api.admin.client
    r = await c.put(
        "/v1.0/customer", json={"webhook_uri": "http://127.0.0.1:9/hook", "webhook_method": "POST"}
    )
    assert r.status_code == 200 and r.json()["webhook_uri"] == "http://127.0.0.1:9/hook"
    assert_envelope(await c.put("/v1.0/customer", json={"webhook_uri": "ftp://x"}), 400, "INVALID_ARGUMENT")
    assert_envelope(await c.put("/v1.0/customer", json={"webhook_method": "PATCH"}), 400, "INVALID_ARGUMENT")
    r = await c.post("/v1.0/customer/webhook_secret_regenerate")
    secret = r.json()["webhook_secret"]
    assert secret.startswith("whsec_")
    assert (await c.get("/v1.0/customer")).json()["webhook_secret"] == "****" + secret[-4:]


async def test_inline_ai_providers_checked_at_create(api: Api) -> None:
    c = api.admin.client
    option = {"initial_prompt": "hi", "engine_model": "anthropic.claude-3-5-sonnet"}
    bad = [{"type": "ai_talk", "option": option}]
    err = assert_envelope(await c.post("/v1.0/flows", json={"actions": bad}), 400, "INVALID_ARGUMENT")
    assert "actions[0].option.engine_model" in err["message"]
    assert "VOIPBIN_ANTHROPIC_API_KEY" in err["message"]
    bad = [{"type": "ai", "option": {"initial_prompt": "hi", "tts_type": "nosuch"}}]
    err = assert_envelope(await c.post("/v1.0/flows", json={"actions": bad}), 400, "INVALID_ARGUMENT")
    assert "tts_type" in err["message"]
    option = {"initial_prompt": "hi", "engine_model": "offline.scripted", "tts_type": "piper"}
    ok = [{"type": "ai", "option": option}]
    assert (await c.post("/v1.0/flows", json={"actions": ok})).status_code == 200
