"""VoIPBIN's AI tools: what each does with its arguments, refusals, run_llm, connect_call's allow-list."""

from __future__ import annotations

import json
import uuid
from typing import Any

from voipbin.ai.actions import describe_action
from voipbin.ai.llm.base import ToolCall
from voipbin.ai.session.tools import REFUSED, TOOLS, ToolContext, offered_tools, refused_tools, run_tool

VOIPBIN_TOOLS = {
    "connect_call", "create_call", "send_email", "send_message", "stop_media", "stop_service", "stop_flow",
    "set_variables", "get_variables", "get_aicall_messages", "search_knowledge", "get_correlation",
    "get_resource", "describe_action", "case_create",
}  # fmt: skip
AICALL = uuid.uuid4()
CUSTOMER = uuid.uuid4()


def ctx(**kw: Any) -> ToolContext:
    return ToolContext(CUSTOMER, AICALL, uuid.uuid4(), uuid.uuid4(), {"a": "1"}, lambda: 7, **kw)


def call(name: str, **args: Any) -> ToolCall:
    return ToolCall("c1", name, json.dumps(args))


def result(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(r.content)
    assert out["tool_call_id"] == "c1"
    return out


def test_every_voipbin_tool_either_runs_or_is_refused_with_a_reason() -> None:
    assert set(TOOLS) | set(REFUSED) == VOIPBIN_TOOLS and not set(TOOLS) & set(REFUSED)
    assert refused_tools(["send_email", "stop_flow"]) == {"send_email": REFUSED["send_email"]}
    assert "SMTP" in REFUSED["send_email"] and "SMS" in REFUSED["send_message"]
    assert {t.name for t in offered_tools(["all"])} == set(TOOLS)
    assert [t.name for t in offered_tools(["stop_flow", "send_email"])] == ["stop_flow"]


async def test_connect_call_ends_the_session_with_the_destination() -> None:
    r = await run_tool(call("connect_call", destinations=[{"type": "tel", "target": "+15551111111"}]), ctx())
    assert r.end == "connect_call" and r.run_llm is False
    assert r.connect is not None and r.connect["destinations"][0]["target"] == "+15551111111"
    assert result(r)["result"] == "success"


async def test_connect_call_honours_the_allow_list_and_bad_arguments() -> None:
    allowed = ctx(connect_allowed=("+15551111111",))
    r = await run_tool(
        call("connect_call", destinations=[{"type": "tel", "target": "+19005550000"}]), allowed
    )
    assert r.end is None and result(r)["result"] == "failed" and "+19005550000" in result(r)["message"]
    r = await run_tool(call("connect_call", destinations="nowhere"), ctx())
    assert r.end is None and result(r)["result"] == "failed"


async def test_variables_media_and_correlation() -> None:
    c = ctx()
    r = await run_tool(call("set_variables", variables={"order": "42", "voipbin.call.id": "x"}), c)
    assert result(r)["result"] == "success" and c.variables == {"a": "1", "order": "42"}
    r = await run_tool(call("get_variables"), c)
    assert json.loads(result(r)["message"]) == {"a": "1", "order": "42"} and r.run_llm is True
    r = await run_tool(call("get_variables", run_llm=False), c)
    assert r.run_llm is False
    assert result(await run_tool(call("stop_media"), c))["message"] == "7 frames dropped"
    corr = json.loads(result(await run_tool(call("get_correlation"), c))["message"])
    assert corr["aicall_id"] == str(AICALL)
    assert (await run_tool(call("stop_flow"), c)).end == "stop_flow"


async def test_messages_resources_and_actions_through_their_ports() -> None:
    async def messages(customer: uuid.UUID, aicall: uuid.UUID) -> list[dict[str, Any]] | None:
        return [{"role": "user", "content": "hi"}] if (customer, aicall) == (CUSTOMER, AICALL) else None

    async def get_resource(customer: uuid.UUID, kind: str, rid: uuid.UUID) -> dict[str, Any] | None:
        return {"id": str(rid), "type": kind} if kind == "call" else None

    c = ctx(messages=messages, get_resource=get_resource, describe_action=describe_action)
    r = await run_tool(call("get_aicall_messages", aicall_id=""), c)
    assert json.loads(result(r)["message"]) == [{"role": "user", "content": "hi"}]
    assert (
        result(await run_tool(call("get_aicall_messages", aicall_id=str(uuid.uuid4())), c))["result"]
        == "failed"
    )
    rid = uuid.uuid4()
    r = await run_tool(call("get_resource", resource_type="call", resource_id=str(rid)), c)
    assert result(r)["resource_id"] == str(rid) and json.loads(result(r)["message"])["id"] == str(rid)
    r = await run_tool(call("get_resource", resource_type="recording", resource_id=str(rid)), c)
    assert result(r)["result"] == "failed"
    r = await run_tool(call("describe_action", action_type="talk"), c)
    assert "text" in json.loads(result(r)["message"])["option_schema"]["properties"]
    assert result(await run_tool(call("describe_action", action_type="fly"), c))["result"] == "failed"


async def test_create_call_and_refused_tools_fail_softly() -> None:
    made: list[Any] = []

    async def create_call(customer: uuid.UUID, source: Any, destinations: list, options: dict) -> list[str]:
        made.append((source, destinations, options))
        return ["11111111-1111-1111-1111-111111111111"]

    c = ctx(create_call=create_call)
    r = await run_tool(call("create_call", destinations=[{"type": "tel", "target": "+15552222222"}]), c)
    assert result(r)["resource_id"] == "11111111-1111-1111-1111-111111111111" and r.run_llm is True
    assert made[0][1][0]["target"] == "+15552222222"

    async def broken(*_: Any) -> list[str]:
        raise ValueError("the balance cannot cover the call")

    r = await run_tool(
        call("create_call", destinations=[{"type": "tel", "target": "+1555"}]), ctx(create_call=broken)
    )
    assert result(r)["result"] == "failed" and "balance" in result(r)["message"]
    r = await run_tool(call("send_email", subject="x"), c)
    assert result(r)["result"] == "failed" and "SMTP" in result(r)["message"]
