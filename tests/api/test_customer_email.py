"""``PUT /customer`` validates ``email``: a bad address is a 400 in VoIPBIN's envelope, naming the field."""

from __future__ import annotations

import pytest

from tests.api.support import Api


@pytest.mark.parametrize("bad", ["not-an-email", "a@", "@example.com", "a b@example.com", "a@@example.com"])
async def test_bad_email_is_400_and_not_stored(api: Api, bad: str) -> None:
    c = api.admin.client
    before = (await c.get("/v1.0/customer")).json()
    r = await c.put("/v1.0/customer", json={"email": bad})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT" and "email" in r.text
    assert (await c.get("/v1.0/customer")).json().get("email") == before.get("email")


async def test_good_email_is_stored(api: Api) -> None:
    c = api.admin.client
    r = await c.put("/v1.0/customer", json={"email": "Ops.Team@Example.COM"})
    assert r.status_code == 200, r.text
    assert (await c.get("/v1.0/customer")).json()["email"] == "Ops.Team@example.com"  # domain normalized
    assert (await c.put("/v1.0/customer", json={"email": ""})).status_code == 200  # "" clears it
