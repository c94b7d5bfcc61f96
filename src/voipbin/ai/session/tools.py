"""The AI tools a conversation on a call can use (VoIPBIN's 15 names, schemas and ``run_llm`` defaults).

Each of VoIPBIN's tool names either runs here or is refused when an AI is written (``POST/PUT
/v1.0/ais`` answer 400 naming the tool and why, :func:`refused_tools`):

* ``connect_call`` — the caller leaves the AI and is bridged to the destination the model chose (any
  destination the customer may dial, or only those in the AI's ``parameter.connect_call_destinations``);
  the flow continues after the bridge (the handler pushes a ``connect`` action, as VoIPBIN does);
* ``create_call`` — a new outbound call (through the port the composition root hands in);
* ``stop_service`` / ``stop_flow`` / ``stop_media``, ``set_variables`` / ``get_variables``;
* ``get_aicall_messages``, ``get_resource`` (aicall, call, recording, transcribe, summary),
  ``get_correlation`` (the ids this conversation belongs to), ``describe_action`` (an action's options).

Refused: ``send_email`` (no email provider), ``send_message`` (no SMS trunk), ``search_knowledge``
(no knowledge base / RAG) and ``case_create`` (no CRM) — offered nowhere, refused at write time.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from voipbin.ai.llm.base import Tool, ToolCall

log = logging.getLogger(__name__)

_RUN_LLM = {"run_llm": {"type": "boolean", "description": "Speak again after the tool ran."}}
_ADDRESS = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["tel", "sip", "extension", "agent"]},
        "target": {"type": "string"},
        "target_name": {"type": "string"},
    },
    "required": ["type", "target"],
}
RESOURCE_TYPES = ("aicall", "call", "recording", "transcribe", "summary")
REFUSED = {
    "send_email": "no email provider (SMTP server) is configured on this server",
    "send_message": "no SMS trunk is configured on this server",
    "search_knowledge": "knowledge bases (RAG) are not available on this server",
    "case_create": "no case management (CRM) is available on this server",
}


def _schema(props: dict | None = None, required: Iterable[str] = ()) -> dict:
    return {"type": "object", "properties": {**(props or {}), **_RUN_LLM}, "required": list(required)}


TOOLS: dict[str, tuple[Tool, bool]] = {  # name -> (definition, run_llm default)
    "connect_call": (
        Tool(
            "connect_call",
            "Transfer the caller to a person or number; the conversation with you ends.",
            _schema(
                {"destinations": {"type": "array", "items": _ADDRESS}, "source": _ADDRESS}, ["destinations"]
            ),
        ),
        False,
    ),
    "create_call": (
        Tool(
            "create_call",
            "Place a new, separate outbound call (the caller stays with you).",
            _schema(
                {
                    "destinations": {"type": "array", "items": _ADDRESS},
                    "source": _ADDRESS,
                    "flow_id": {"type": "string"},
                    "actions": {"type": "array", "items": {"type": "object"}},
                },
                ["destinations"],
            ),
        ),
        True,
    ),
    "stop_service": (
        Tool(
            "stop_service",
            "End the AI conversation (after saying goodbye); the call flow continues.",
            _schema(),
        ),
        False,
    ),
    "stop_flow": (Tool("stop_flow", "End the call flow; the call is hung up.", _schema()), False),
    "stop_media": (Tool("stop_media", "Stop the audio currently playing to the caller.", _schema()), False),
    "set_variables": (
        Tool(
            "set_variables",
            "Save values as flow variables (strings).",
            _schema(
                {"variables": {"type": "object", "additionalProperties": {"type": "string"}}}, ["variables"]
            ),
        ),
        False,
    ),
    # VoIPBIN's default is false; the model then never hears the values, so we answer with them.
    "get_variables": (Tool("get_variables", "Read the call flow's variables.", _schema()), True),
    "get_aicall_messages": (
        Tool(
            "get_aicall_messages",
            "Read the messages of an AI call (this one when aicall_id is empty).",
            _schema({"aicall_id": {"type": "string"}}, ["aicall_id"]),
        ),
        False,
    ),
    "get_resource": (
        Tool(
            "get_resource",
            "Read a resource of this account by type and id.",
            _schema(
                {
                    "resource_type": {"type": "string", "enum": list(RESOURCE_TYPES)},
                    "resource_id": {"type": "string"},
                },
                ["resource_type", "resource_id"],
            ),
        ),
        True,
    ),
    "get_correlation": (
        Tool(
            "get_correlation", "The ids this conversation belongs to (call, activeflow, aicall).", _schema()
        ),
        True,
    ),
    "describe_action": (
        Tool(
            "describe_action",
            "Describe the options of a flow action type.",
            _schema({"action_type": {"type": "string"}}, ["action_type"]),
        ),
        True,
    ),
}


def refused_tools(names: Iterable[str]) -> dict[str, str]:
    """The tool names of ``names`` this server cannot run, with why (empty: all fine)."""
    return {n: REFUSED[n] for n in names if n in REFUSED}


def offered_tools(names: Iterable[str]) -> list[Tool]:
    """Definitions for ``tool_names`` (``["all"]`` = every tool this server implements)."""
    wanted = list(dict.fromkeys(names))
    if "all" in wanted:
        return [tool for tool, _ in TOOLS.values()]
    unknown = [n for n in wanted if n not in TOOLS]
    if unknown:
        log.warning("AI tools not available on this server, not offered: %s", ", ".join(unknown))
    return [TOOLS[n][0] for n in wanted if n in TOOLS]


GetResource = Callable[[uuid.UUID, str, uuid.UUID], Awaitable[dict[str, Any] | None]]
CreateCall = Callable[
    [uuid.UUID, dict[str, Any] | None, list[dict[str, Any]], dict[str, Any]], Awaitable[list[str]]
]
GetMessages = Callable[[uuid.UUID, uuid.UUID], Awaitable[list[dict[str, Any]] | None]]
DescribeAction = Callable[[str], dict[str, Any] | None]


@dataclass
class ToolContext:
    """What the tools may touch; the ports come from the composition root (``AIDeps``)."""

    customer_id: uuid.UUID
    aicall_id: uuid.UUID
    activeflow_id: uuid.UUID
    call_id: uuid.UUID
    variables: MutableMapping[str, str]
    flush: Callable[[], int]
    messages: GetMessages | None = None
    get_resource: GetResource | None = None
    create_call: CreateCall | None = None
    describe_action: DescribeAction | None = None
    connect_allowed: tuple[str, ...] = ()  # targets connect_call may dial; empty: any


@dataclass(frozen=True)
class ToolResult:
    content: str  # JSON for the tool message (VoIPBIN shape)
    run_llm: bool
    end: str | None = None  # "stop_service" | "stop_flow" | "connect_call": the session ends after this turn
    connect: dict[str, Any] | None = None  # connect_call: {"source": ..., "destinations": [...]}


def _addresses(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list) or not value:
        return None
    out = []
    for item in value:
        if not isinstance(item, dict) or not str(item.get("target", "")).strip():
            return None
        out.append(
            {
                "type": str(item.get("type") or "tel"),
                "target": str(item["target"]).strip(),
                "target_name": str(item.get("target_name", "")),
                "name": "",
                "detail": "",
            }
        )
    return out


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def run_tool(call: ToolCall, ctx: ToolContext) -> ToolResult:
    """Execute one tool call. Never raises: a bad call becomes a ``failed`` result the model sees."""
    try:
        return await _run(call, ctx)
    except Exception as exc:  # a tool's port failed: the model hears it, the caller is not stranded
        log.exception("AI tool %s failed", call.name)
        spec = TOOLS.get(call.name)
        return ToolResult(_content(call, "failed", f"{call.name} failed: {exc}"), spec[1] if spec else True)


def _content(call: ToolCall, result: str, message: str, **extra: str) -> str:
    return json.dumps(
        {"tool_call_id": call.id, "result": result, "message": message, **extra}, ensure_ascii=False
    )


async def _run(call: ToolCall, ctx: ToolContext) -> ToolResult:
    args = call.parsed_arguments()
    spec = TOOLS.get(call.name)
    run_llm = bool(args.get("run_llm", spec[1] if spec else True))
    end: str | None = None
    connect: dict[str, Any] | None = None
    message = ""
    result = "success"
    extra: dict[str, str] = {}
    name = call.name
    if spec is None:
        result, message = "failed", REFUSED.get(name, f"unknown tool {name!r}")
    elif name in ("stop_service", "stop_flow"):
        end = name
    elif name == "stop_media":
        message = f"{ctx.flush()} frames dropped"
    elif name == "set_variables":
        values = args.get("variables")
        if isinstance(values, dict):
            ctx.variables.update(
                {str(k): str(v) for k, v in values.items() if not str(k).startswith("voipbin.")}
            )
            message = "variables set"
        else:
            result, message = "failed", "variables must be an object of strings"
    elif name == "get_variables":
        message = json.dumps(dict(ctx.variables), ensure_ascii=False)
    elif name == "connect_call":
        destinations = _addresses(args.get("destinations"))
        source = _addresses([args["source"]]) if isinstance(args.get("source"), dict) else None
        if destinations is None:
            result, message = "failed", "destinations must be a list of {type, target}"
        elif ctx.connect_allowed and (
            bad := [d["target"] for d in destinations if d["target"] not in ctx.connect_allowed]
        ):
            result, message = "failed", f"not an allowed destination: {', '.join(bad)}"
        else:
            end = "connect_call"
            connect = {"destinations": destinations, "source": source[0] if source else None}
            message = "connecting to " + ", ".join(d["target"] for d in destinations)
    elif name == "create_call":
        destinations = _addresses(args.get("destinations"))
        source = _addresses([args["source"]]) if isinstance(args.get("source"), dict) else None
        if destinations is None:
            result, message = "failed", "destinations must be a list of {type, target}"
        elif ctx.create_call is None:
            result, message = "failed", "calls cannot be created on this node"
        else:
            options: dict[str, Any] = {k: args[k] for k in ("flow_id", "actions") if k in args}
            ids = await ctx.create_call(ctx.customer_id, source[0] if source else None, destinations, options)
            message = "created calls " + ", ".join(ids)
            extra = {"resource_type": "call", "resource_id": ids[0] if ids else ""}
    elif name == "get_aicall_messages":
        target = _uuid(args.get("aicall_id")) or ctx.aicall_id
        found = await ctx.messages(ctx.customer_id, target) if ctx.messages else None
        if found is None:
            result, message = "failed", f"aicall {target} not found"
        else:
            message = json.dumps(
                [{"role": m["role"], "content": m["content"]} for m in found], ensure_ascii=False
            )
    elif name == "get_resource":
        kind, rid = str(args.get("resource_type", "")), _uuid(args.get("resource_id"))
        if kind not in RESOURCE_TYPES or rid is None:
            result, message = (
                "failed",
                f"resource_type must be one of {', '.join(RESOURCE_TYPES)} with a resource_id",
            )
        else:
            found_resource = await ctx.get_resource(ctx.customer_id, kind, rid) if ctx.get_resource else None
            if found_resource is None:
                result, message = "failed", f"{kind} {rid} not found"
            else:
                message = json.dumps(found_resource, ensure_ascii=False, default=str)
                extra = {"resource_type": kind, "resource_id": str(rid)}
    elif name == "get_correlation":
        message = json.dumps(
            {
                "aicall_id": str(ctx.aicall_id),
                "activeflow_id": str(ctx.activeflow_id),
                "call_id": str(ctx.call_id),
            }
        )
    elif name == "describe_action":
        described = ctx.describe_action(str(args.get("action_type", ""))) if ctx.describe_action else None
        if described is None:
            result, message = "failed", f"unknown action type {args.get('action_type')!r}"
        else:
            message = json.dumps(described, ensure_ascii=False)
    return ToolResult(_content(call, result, message, **extra), run_llm, end, connect)
