"""Our response bodies validate against VoIPBIN's official OpenAPI schemas (secrets masked aside)."""

from __future__ import annotations

import pytest

from tests.api.support import Api
from tests.spec import SPEC, validate

pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="VoIPBIN reference spec not present")


async def test_bodies_match_voipbin_schemas(api: Api) -> None:
    c = api.admin.client
    flow = (
        await c.post(
            "/v1.0/flows",
            json={
                "name": "f",
                "actions": [
                    {"type": "answer"},
                    {"type": "talk", "option": {"text": "hi", "language": "en-US"}},
                    {"type": "sleep", "option": {"duration": 1000}},
                ],
            },
        )
    ).json()
    validate(flow, "FlowManagerFlow")
    # engine_model: the spec's enum lists 11 cloud models; we accept every registry model (documented).
    ai = (
        await c.post(
            "/v1.0/ais",
            json={"name": "a", "engine_model": "offline.scripted", "tts_type": "piper", "stt_type": ""},
        )
    ).json()
    validate(ai, "AIManagerAI", relax=("engine_model", "stt_type"))
    call = (
        await c.post(
            "/v1.0/calls",
            json={
                "source": {"type": "tel", "target": "+15551234567"},
                "destinations": [{"type": "tel", "target": "+15559876543"}],
                "flow_id": flow["id"],
            },
        )
    ).json()
    validate({k: v for k, v in call.items() if k not in ("calls", "groupcalls")}, "CallManagerCall")
    for item in call["calls"]:
        validate(item, "CallManagerCall")
    number = (await c.get("/v1.0/numbers")).json()["result"][0]
    validate(number, "NumberManagerNumber")
    key = (await c.post("/v1.0/accesskeys", json={"name": "k"})).json()
    validate(key, "CustomerManagerAccesskey")
    ext = (await c.post("/v1.0/extensions", json={"extension": "4001", "password": "password-123"})).json()
    validate(ext, "RegistrarManagerExtension")
    validate((await c.get("/v1.0/billing_account")).json(), "BillingManagerAccount")
    validate((await c.get("/v1.0/billings")).json()["result"][0], "BillingManagerBilling")
    validate((await c.get("/v1.0/customer")).json(), "CustomerManagerCustomer")
    err = (await c.get("/v1.0/calls/00000000-0000-0000-0000-000000000001")).json()
    validate(err, "ErrorResponse")
