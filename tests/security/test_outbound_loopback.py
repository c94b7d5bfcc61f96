"""The SSRF guard against real loopback receivers: every forbidden spelling is refused when the URL is
saved (400 naming the field) and again when it is dialled; an allow-listed local receiver works."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
import websockets
from starlette.responses import Response

from tests.api.support import Api
from tests.flow.conftest import Env
from tests.flow.localhttp import local_server
from voipbin.security.outbound import (
    OutboundBlocked,
    OutboundPolicy,
    blocked_cause,
    check_url_resolving,
    guarded_client,
    open_checked_socket,
)
from voipbin.store.tables import Customer

# The list of loopback spellings that must be refused by default.
SPELLINGS = ["127.0.0.1", "localhost", "[::1]", "127.1", "2130706433", "[::ffff:127.0.0.1]", "0.0.0.0"]
STRICT = OutboundPolicy()
LOOPBACK_ALLOWED = OutboundPolicy.parse("127.0.0.0/8")


def url_at(spelling: str, port: int, path: str = "/hook", scheme: str = "http") -> str:
    return f"{scheme}://{spelling}:{port}{path}"


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"] == [{"field": field}], error
    assert "VOIPBIN_OUTBOUND_ALLOW" in error["message"]


# --- save time ----------------------------------------------------------------------------------------


async def test_customer_webhook_uri_refused_at_save_time(api: Api) -> None:
    for spelling in SPELLINGS:
        r = await api.admin.client.put("/v1.0/customer", json={"webhook_uri": url_at(spelling, 6379, "/")})
        assert_refused(r, "webhook_uri")
    r = await api.admin.client.put(
        "/v1.0/customer", json={"webhook_uri": "http://[fe80::1%25eth0]/", "name": "x"}
    )
    assert_refused(r, "webhook_uri")
    got = (await api.admin.client.get("/v1.0/customer")).json()
    assert got["webhook_uri"] == "" and got["name"] != "x"  # nothing of a refused update was stored


async def test_action_urls_refused_at_save_time(api: Api) -> None:
    def cases(url: str) -> list[tuple[dict[str, Any], str]]:
        return [
            ({"type": "webhook_send", "option": {"uri": url}}, "actions[0].option.uri"),
            ({"type": "fetch", "option": {"event_url": url}}, "actions[0].option.event_url"),
            ({"type": "play", "option": {"stream_urls": [url]}}, "actions[0].option.stream_urls[0]"),
        ]

    for spelling in SPELLINGS:
        for action, field in cases(url_at(spelling, 8080)):
            body = {"actions": [action]}
            assert_refused(await api.admin.client.post("/v1.0/flows", json=body), field)
            assert_refused(await api.admin.client.post("/v1.0/activeflows", json=body), field)
        media = {"type": "external_media_start", "option": {"external_host": f"{spelling}:5004"}}
        r = await api.admin.client.post("/v1.0/flows", json={"actions": [media]})
        assert_refused(r, "actions[0].option.external_host")
        media["option"] = {"external_host": url_at(spelling, 8765, "/bot", "ws"), "transport": "websocket"}
        r = await api.admin.client.post("/v1.0/flows", json={"actions": [media]})
        assert_refused(r, "actions[0].option.external_host")
    r = await api.admin.client.post(
        "/v1.0/activeflows", json={"actions": [], "webhook_uri": "http://127.1:9/"}
    )
    assert_refused(r, "webhook_uri")
    bad = [{"type": "answer"}, {"type": "fetch", "option": {"event_url": "http://2130706433/"}}]
    call = {
        "source": {"type": "tel", "target": "+15551234567"},
        "destinations": [{"type": "tel", "target": "+15559876543"}],
        "actions": bad,
    }
    assert_refused(await api.admin.client.post("/v1.0/calls", json=call), "actions[1].option.event_url")
    flow = (await api.admin.client.post("/v1.0/flows", json={"actions": []})).json()
    r = await api.admin.client.put(f"/v1.0/flows/{flow['id']}", json={"actions": bad})
    assert_refused(r, "actions[1].option.event_url")
    # A placeholder cannot be judged yet: accepted now, checked when dialled (below).
    ok = {"actions": [{"type": "webhook_send", "option": {"uri": "${target}"}}]}
    assert (await api.admin.client.post("/v1.0/flows", json=ok)).status_code == 200


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # Requested before ``api``: the node's Settings read it (after the autouse strict default).
    monkeypatch.setenv("VOIPBIN_OUTBOUND_ALLOW", "127.0.0.0/8")


async def test_allow_listed_receiver_is_accepted_and_delivered(allow_loopback: None, api: Api) -> None:
    # A node with the allow-list set: the webhook is saved and the dispatcher delivers to it.
    assert api.platform.settings.outbound_allow == "127.0.0.0/8"
    async with local_server() as hook:
        r = await api.admin.client.put("/v1.0/customer", json={"webhook_uri": hook.url("/hook")})
        assert r.status_code == 200 and r.json()["webhook_uri"] == hook.url("/hook")
        await api.admin.client.post("/v1.0/activeflows", json={"actions": []})
        await hook.wait_for(1)
    assert hook.requests[0].path == "/hook"


# --- connect time -------------------------------------------------------------------------------------


async def test_guarded_client_refuses_every_spelling_at_connect_time() -> None:
    async with local_server() as server, guarded_client(STRICT) as client:
        for spelling in SPELLINGS:
            with pytest.raises(httpx.ConnectError) as caught:
                await client.get(url_at(spelling, server.port))
            assert blocked_cause(caught.value) is not None, (spelling, caught.value)
        assert server.requests == []


async def test_guarded_client_reaches_an_allowed_receiver() -> None:
    async with local_server() as server:
        server.routes["/hook"] = lambda _: Response(b"ok")
        for policy in (LOOPBACK_ALLOWED, OutboundPolicy.parse("localhost")):
            async with guarded_client(policy) as client:
                host = "localhost" if policy.hosts else "127.1"
                r = await client.get(url_at(host, server.port))
                assert r.status_code == 200 and r.content == b"ok"
        assert [s.headers["host"] for s in server.requests] == [
            f"127.1:{server.port}",
            f"localhost:{server.port}",
        ]


async def test_connect_time_dials_the_address_it_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name resolves to a public address when saved, to 127.0.0.1 when dialled. The
    guard resolves once per connection, checks that answer and dials exactly it."""
    loop = asyncio.get_running_loop()
    answers = iter(["93.184.216.34", "127.0.0.1"])

    async def rebinding_dns(host: str, port: Any, **_: Any) -> list[Any]:
        assert host == "rebind.test"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), int(port)))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding_dns)
    async with local_server() as server:
        url = url_at("rebind.test", server.port)
        await check_url_resolving(STRICT, url)  # saved: public address
        async with guarded_client(STRICT) as client:
            with pytest.raises(httpx.ConnectError) as caught:
                await client.get(url)
        assert "127.0.0.1" in str(blocked_cause(caught.value))
        assert server.requests == []

        # Allowed, the pinned address is the one dialled (httpcore never resolves "rebind.test" itself),
        # and the request still names the host.
        answers = iter(["127.0.0.1"])
        async with guarded_client(LOOPBACK_ALLOWED) as client:
            r = await client.get(url)
        assert r.status_code == 404 and server.requests[0].headers["host"] == f"rebind.test:{server.port}"


async def test_websocket_sockets_are_checked() -> None:
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        for spelling in SPELLINGS:
            with pytest.raises(OutboundBlocked):
                await open_checked_socket(STRICT, url_at(spelling, port, "/", "ws"))
        with pytest.raises(OutboundBlocked):
            await open_checked_socket(LOOPBACK_ALLOWED, f"http://127.0.0.1:{port}/")  # not a ws URL
        url = url_at("localhost", port, "/", "ws")
        sock = await open_checked_socket(OutboundPolicy.parse("localhost"), url)
        async with websockets.connect(url, sock=sock) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"


async def test_flow_actions_are_checked_when_dialled(env: Env) -> None:
    """URLs from ${variables} pass the save-time check; the dial-time check refuses them."""
    async with local_server() as server:
        server.routes["/actions"] = lambda _: Response(b"[]", media_type="application/json")
        for spelling in SPELLINGS:
            target = url_at(spelling, server.port)
            _, af = await env.run(
                [
                    {"type": "webhook_send", "option": {"sync": True, "uri": "${target}", "data": "x"}},
                    {"type": "variable_set", "option": {"key": "after", "value": "yes"}},
                    {"type": "fetch", "option": {"event_url": "${target}"}},
                ],
                variables={"target": target},
            )
            assert af.variables["after"] == "yes"  # a refused webhook_send is logged, not fatal
            assert "fetch" in af.error and "VOIPBIN_OUTBOUND_ALLOW" in af.error, af.error
            _, af = await env.run(
                [{"type": "play", "option": {"stream_urls": ["${target}"]}}], variables={"target": target}
            )
            assert "play" in af.error and "VOIPBIN_OUTBOUND_ALLOW" in af.error, af.error
        assert server.requests == []


async def test_webhook_dispatcher_checks_the_stored_uri_when_delivering(api: Api) -> None:
    """A webhook_uri that reached the database some other way (an older release, SQL) is still refused."""
    async with local_server() as hook:
        async with api.platform.db.session() as session:
            customer = await session.get(Customer, api.admin.created.customer.id)
            assert customer is not None
            customer.webhook_uri = url_at("127.1", hook.port)
            await session.commit()
        api.platform.webhooks.forget(api.admin.created.customer.id)
        api.platform.webhooks.retry_delay = 0.01
        await api.admin.client.post("/v1.0/activeflows", json={"actions": []})
        await asyncio.sleep(0.5)
        assert hook.requests == []
        assert api.platform.webhooks.failed >= 1
