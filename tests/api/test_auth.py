"""Login, every credential location, throttling, and the error envelope for auth failures."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from tests.api.support import Api, assert_envelope, client_for
from voipbin.security import Argon2Cost, Passwords
from voipbin.store.tables import Agent


async def test_login_returns_jwt_usable_everywhere(api: Api) -> None:
    resp = await api.anon.post("/auth/login", json={"username": "admin", "password": "admin-password-1"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["username"] == "admin" and body["token"].count(".") == 2
    token = body["token"]
    assert "token=" in resp.headers["set-cookie"] and "HttpOnly" in resp.headers["set-cookie"]

    for kwargs in (
        {"params": {"token": token}},
        {"headers": {"Authorization": f"Bearer {token}"}},
        {"cookies": {"token": token}},
    ):
        async with client_for(api.app, None) as c:
            c.cookies.update(kwargs.pop("cookies", {}))
            r = await c.get("/v1.0/customer", **kwargs)
            assert r.status_code == 200, (kwargs, r.text)
            assert r.json()["id"] == api.admin.customer_id


async def test_accesskey_everywhere(api: Api) -> None:
    key = api.admin.key
    for kwargs in (
        {"params": {"accesskey": key}},
        {"cookies": {"accesskey": key}},
        {"headers": {"Authorization": f"Bearer {key}"}},
    ):
        async with client_for(api.app, None) as c:
            c.cookies.update(kwargs.pop("cookies", {}))
            r = await c.get("/v1.0/customer", **kwargs)
            assert r.status_code == 200, (kwargs, r.text)


async def test_missing_and_bad_credentials(api: Api) -> None:
    assert_envelope(await api.anon.get("/v1.0/calls"), 401, "AUTHENTICATION_REQUIRED")
    assert_envelope(await api.anon.get("/v1.0/calls", params={"token": "x.y.z"}), 401, "INVALID_CREDENTIALS")
    bad_key = "vb_" + "A" * 32
    assert_envelope(
        await api.anon.get("/v1.0/calls", params={"accesskey": bad_key}), 401, "INVALID_CREDENTIALS"
    )


async def test_wrong_password_then_throttled(api: Api) -> None:
    for _ in range(3):
        r = await api.anon.post("/auth/login", json={"username": "admin", "password": "nope"})
        assert_envelope(r, 401, "INVALID_CREDENTIALS")
    r = await api.anon.post("/auth/login", json={"username": "admin", "password": "admin-password-1"})
    err = assert_envelope(r, 429, "RATE_LIMIT_EXCEEDED")
    assert int(r.headers["Retry-After"]) >= 1
    assert err["status"] == "RESOURCE_EXHAUSTED"


async def test_login_validation(api: Api) -> None:
    assert_envelope(await api.anon.post("/auth/login", json={"username": "admin"}), 400, "INVALID_ARGUMENT")
    r = await api.anon.post("/auth/login", content=b"{nope", headers={"content-type": "application/json"})
    assert_envelope(r, 400, "INVALID_JSON_BODY")
    assert_envelope(await api.anon.post("/v1.0/auth/login", json={}), 404, "ROUTE_NOT_FOUND")


async def test_deleted_accesskey_stops_working(api: Api) -> None:
    created = (await api.admin.client.post("/v1.0/accesskeys", json={"name": "tmp"})).json()
    token = created["token"]
    assert token.startswith("vb_") and len(token) == 35 and created["token_prefix"] == token[:11]
    async with client_for(api.app, token) as c:
        assert (await c.get("/v1.0/customer")).status_code == 200
    listed = (await api.admin.client.get(f"/v1.0/accesskeys/{created['id']}")).json()
    assert "token" not in listed
    assert (await api.admin.client.delete(f"/v1.0/accesskeys/{created['id']}")).status_code == 200
    async with client_for(api.app, token) as c:
        assert_envelope(await c.get("/v1.0/customer"), 401, "INVALID_CREDENTIALS")


async def test_accesskeys_stored_hashed(api: Api) -> None:
    from sqlalchemy import select

    from voipbin.store.tables import Accesskey

    created = (await api.admin.client.post("/v1.0/accesskeys", json={"name": "h", "expire": 86400})).json()
    async with api.platform.db.session() as s:
        rows = (await s.execute(select(Accesskey))).scalars().all()
    assert all(created["token"] not in (r.token_hash, r.token_prefix) for r in rows)
    assert created["tm_expire"] > created["tm_create"]
    r = await api.admin.client.post("/v1.0/accesskeys", json={"expire": 60})
    assert_envelope(r, 400, "INVALID_ARGUMENT")


async def test_passwords_hash_at_production_cost_off_the_event_loop() -> None:
    """The default is RFC 9106's low-memory Argon2id profile, and hashing it leaves the loop running."""
    passwords = Passwords()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        hashed = await passwords.hash("correct horse battery")
        during = ticks
    finally:
        task.cancel()
    assert hashed.startswith("$argon2id$") and "m=65536,t=3,p=4" in hashed
    assert during >= 2, "the event loop stood still while the password was hashed"
    assert await passwords.verify(hashed, "correct horse battery")
    assert not await passwords.verify(hashed, "wrong")
    assert not await passwords.verify(None, "anything")  # no such user: same work, refused


async def test_login_upgrades_a_hash_made_at_a_lower_cost(api: Api) -> None:
    async with api.platform.db.session() as session:
        agent = (await session.execute(select(Agent).where(Agent.username == "admin"))).scalar_one()
        old = agent.password_hash
    raised = Passwords(Argon2Cost(time_cost=2, memory_kib=128, parallelism=1))
    assert raised.needs_rehash(old)
    api.platform.passwords = raised
    resp = await api.anon.post("/auth/login", json={"username": "admin", "password": "admin-password-1"})
    assert resp.status_code == 200, resp.text
    async with api.platform.db.session() as session:
        new = (
            await session.execute(select(Agent.password_hash).where(Agent.username == "admin"))
        ).scalar_one()
    assert new != old and not raised.needs_rehash(new) and raised.verify_blocking(new, "admin-password-1")
    again = await api.anon.post("/auth/login", json={"username": "admin", "password": "admin-password-1"})
    assert again.status_code == 200
