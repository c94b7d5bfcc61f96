"""fetch and webhook_send against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from starlette.responses import JSONResponse, Response

from tests.flow.conftest import Env
from tests.flow.localhttp import Seen, local_server
from voipbin.store.tables import Customer


async def set_secret(env: Env, secret: str) -> None:
    async with env.platform.db.session() as session:
        customer = await session.get(Customer, env.customer_id)
        customer.webhook_secret_enc = env.platform.encryptor.encrypt(secret)
        await session.commit()


async def test_fetch_runs_the_returned_actions_next(env: Env) -> None:
    async with local_server() as server:

        def actions(seen: Seen) -> Response:
            body = json.loads(seen.body)
            return JSONResponse(
                [
                    {
                        "type": "variable_set",
                        "option": {"key": "fetched_for", "value": body["activeflow_id"]},
                    },
                    {"type": "variable_set", "option": {"key": "trail", "value": "${trail}f"}},
                ]
            )

        server.routes["/actions"] = actions
        call, af = await env.run(
            [
                {"type": "variable_set", "option": {"key": "trail", "value": "a"}},
                {"type": "fetch", "option": {"event_url": server.url("/actions"), "event_method": "POST"}},
                {"type": "variable_set", "option": {"key": "trail", "value": "${trail}b"}},
            ]
        )
        assert af.error == "" and af.variables["trail"] == "afb"
        assert af.variables["fetched_for"] == str(af.id)
        seen = server.requests[0]
        assert seen.method == "POST" and json.loads(seen.body) == {
            "activeflow_id": str(af.id),
            "reference_id": str(call.call_id),
        }


async def test_fetch_failures_end_the_flow(env: Env) -> None:
    async with local_server() as server:
        server.routes["/bad-type"] = lambda _: JSONResponse([{"type": "nope"}])
        server.routes["/not-json"] = lambda _: Response(b"hello")
        server.routes["/error"] = lambda _: Response(status_code=500)
        cases = [
            ("/bad-type", "unknown action type 'nope'"),
            ("/not-json", "not JSON"),
            ("/error", "HTTP 500"),
        ]
        for path, message in cases:
            call, af = await env.run([{"type": "fetch", "option": {"event_url": server.url(path)}}])
            assert message in af.error, af.error
            assert call.hangup_reason == "failed"


async def test_webhook_send_signed_sync(env: Env) -> None:
    await set_secret(env, "s3cret")
    async with local_server() as server:
        server.routes["/hook"] = lambda _: Response(status_code=204)
        call, af = await env.run(
            [
                {
                    "type": "webhook_send",
                    "option": {
                        "sync": True,
                        "uri": server.url("/hook"),
                        "method": "POST",
                        "data_type": "application/json",
                        "data": '{"call":"${voipbin.call.id}","who":"${name}"}',
                    },
                },
                {"type": "variable_set", "option": {"key": "after", "value": "1"}},
            ],
            variables={"name": "Ann"},
        )
    seen = server.requests[0]
    # sync: delivered before the next action ran
    next_ran = datetime.strptime(af.executed_actions[1]["tm_execute"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert next_ran.replace(tzinfo=UTC).timestamp() >= seen.at
    assert json.loads(seen.body) == {"call": str(call.call_id), "who": "Ann"}
    assert seen.headers["content-type"] == "application/json"
    expected = "sha256=" + hmac.new(b"s3cret", seen.body, hashlib.sha256).hexdigest()
    assert seen.headers["x-voipbin-signature"] == expected


async def test_webhook_send_async_unsigned_and_errors_are_not_fatal(env: Env) -> None:
    async with local_server() as server:
        server.routes["/hook"] = lambda _: Response(status_code=500)
        call, af = await env.run(
            [
                {
                    "type": "webhook_send",
                    "option": {"uri": server.url("/hook"), "method": "PUT", "data": "x"},
                },
                {"type": "variable_set", "option": {"key": "after", "value": "yes"}},
            ]
        )
        await env.platform.flows.services.drain()
        await server.wait_for(1)
    assert af.error == "" and af.variables["after"] == "yes" and call.hangup_reason == "normal"
    seen = server.requests[0]
    assert seen.method == "PUT" and seen.body == b"x" and "x-voipbin-signature" not in seen.headers
    # Unreachable receiver: logged, the flow carries on.
    call, af = await env.run(
        [
            {"type": "webhook_send", "option": {"sync": True, "uri": server.url("/hook"), "data": "x"}},
            {"type": "variable_set", "option": {"key": "after", "value": "yes"}},
        ]
    )
    assert af.error == "" and af.variables["after"] == "yes"
