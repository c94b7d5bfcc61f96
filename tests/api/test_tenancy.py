"""Another customer's ids answer 404 and never appear in lists, for every tenant-owned resource."""

from __future__ import annotations

import pytest

from tests.api.support import Api, assert_envelope

RESOURCES = [
    ("flows", {"name": "x", "actions": [{"type": "answer"}]}, "FLOW_NOT_FOUND", {"name": "y"}),
    ("ais", {"name": "x", "engine_model": "offline.scripted"}, "AI_NOT_FOUND", {"name": "y"}),
    ("extensions", {"extension": "2001", "password": "password-123"}, "EXTENSION_NOT_FOUND", {"name": "y"}),
    ("accesskeys", {"name": "x"}, "ACCESSKEY_NOT_FOUND", {"name": "y"}),
    ("numbers", {"number": "+15554444444"}, "NUMBER_NOT_FOUND", {"name": "y"}),
]


@pytest.mark.parametrize(("path", "create", "reason", "update"), RESOURCES, ids=[r[0] for r in RESOURCES])
async def test_foreign_ids_are_404(api: Api, path: str, create: dict, reason: str, update: dict) -> None:
    r = await api.admin.client.post(f"/v1.0/{path}", json=create)
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    other = api.other.client
    assert_envelope(await other.get(f"/v1.0/{path}/{rid}"), 404, reason)
    assert_envelope(await other.put(f"/v1.0/{path}/{rid}", json=update), 404, reason)
    assert_envelope(await other.delete(f"/v1.0/{path}/{rid}"), 404, reason)
    listed = (await other.get(f"/v1.0/{path}")).json()["result"]
    assert rid not in {x["id"] for x in listed}
    assert all(x.get("customer_id", api.other.customer_id) == api.other.customer_id for x in listed)
    # still intact for its owner
    assert (await api.admin.client.get(f"/v1.0/{path}/{rid}")).status_code == 200


async def test_foreign_calls_and_billing_are_invisible(api: Api) -> None:
    r = await api.admin.client.post(
        "/v1.0/calls",
        json={
            "source": {"type": "tel", "target": "+15551234567"},
            "destinations": [{"type": "tel", "target": "+15559876543"}],
            "actions": [{"type": "answer"}],
        },
    )
    assert r.status_code == 200, r.text
    cid = r.json()["id"]
    assert_envelope(await api.other.client.get(f"/v1.0/calls/{cid}"), 404, "CALL_NOT_FOUND")
    assert_envelope(await api.other.client.post(f"/v1.0/calls/{cid}/hangup"), 404, "CALL_NOT_FOUND")
    assert_envelope(await api.other.client.delete(f"/v1.0/calls/{cid}"), 404, "CALL_NOT_FOUND")
    assert cid not in {c["id"] for c in (await api.other.client.get("/v1.0/calls")).json()["result"]}
    own = (await api.other.client.get("/v1.0/billing_account")).json()
    admins = (await api.admin.client.get("/v1.0/billing_account")).json()
    assert own["id"] != admins["id"]
    ledger = (await api.other.client.get("/v1.0/billings")).json()["result"]
    assert all(b["customer_id"] == api.other.customer_id for b in ledger)
    # A call may not run another tenant's flow.
    flow = (await api.admin.client.post("/v1.0/flows", json={"actions": []})).json()
    num = (await api.other.client.post("/v1.0/numbers", json={"number": "+15552222222"})).json()
    r = await api.other.client.post(
        "/v1.0/calls",
        json={
            "source": {"type": "tel", "target": num["number"]},
            "destinations": [{"type": "tel", "target": "+15559876543"}],
            "flow_id": flow["id"],
        },
    )
    assert_envelope(r, 404, "FLOW_NOT_FOUND")
