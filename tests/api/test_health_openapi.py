from __future__ import annotations

from tests.api.support import Api


async def test_health(api: Api) -> None:
    r = await api.anon.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


async def test_openapi_and_docs(api: Api) -> None:
    spec = (await api.anon.get("/v1.0/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    for path in ("/v1.0/calls", "/v1.0/flows", "/v1.0/ais", "/auth/login", "/v1.0/billing-accounts"):
        assert path in spec["paths"], path
    docs = await api.anon.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_unknown_route_and_method(api: Api) -> None:
    r = await api.admin.client.get("/v1.0/nope")
    assert r.status_code == 404 and r.json()["error"]["reason"] == "ROUTE_NOT_FOUND"
    r = await api.admin.client.patch("/v1.0/calls")
    assert r.status_code == 405 and r.json()["error"]["reason"] == "METHOD_NOT_ALLOWED"
