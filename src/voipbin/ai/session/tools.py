"""The AI tools a conversation on a call can use (VoIPBIN's names and ``run_llm`` defaults).

Implemented here: ``stop_service`` (end the AI session; the flow continues), ``stop_flow`` (end the
flow; the call is hung up), ``stop_media`` (cut the current playback), ``set_variables`` and
``get_variables`` (the activeflow's variables). Other VoIPBIN tool names in ``tool_names`` are not
offered to the model (logged once per session) rather than offered and failing mid-call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass

from voipbin.ai.llm.base import Tool, ToolCall

log = logging.getLogger(__name__)

_RUN_LLM = {"run_llm": {"type": "boolean", "description": "Speak again after the tool ran."}}


def _schema(props: dict | None = None, required: Iterable[str] = ()) -> dict:
    return {"type": "object", "properties": {**(props or {}), **_RUN_LLM}, "required": list(required)}


TOOLS: dict[str, tuple[Tool, bool]] = {  # name -> (definition, run_llm default)
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
    "get_variables": (Tool("get_variables", "Read the call flow's variables.", _schema()), True),
}


def offered_tools(names: Iterable[str]) -> list[Tool]:
    """Definitions for ``tool_names`` (``["all"]`` = every tool this server implements)."""
    wanted = list(dict.fromkeys(names))
    if "all" in wanted:
        return [tool for tool, _ in TOOLS.values()]
    unknown = [n for n in wanted if n not in TOOLS]
    if unknown:
        log.warning("AI tools not available on this server, not offered: %s", ", ".join(unknown))
    return [TOOLS[n][0] for n in wanted if n in TOOLS]


@dataclass(frozen=True)
class ToolResult:
    content: str  # JSON for the tool message (VoIPBIN shape)
    run_llm: bool
    end: str | None = None  # "stop_service" | "stop_flow": the session ends after this turn


def run_tool(call: ToolCall, variables: MutableMapping[str, str], flush: Callable[[], int]) -> ToolResult:
    """Execute one tool call. Never raises: a bad call becomes a ``failed`` result the model sees."""
    args = call.parsed_arguments()
    spec = TOOLS.get(call.name)
    run_llm = bool(args.get("run_llm", spec[1] if spec else True))
    end: str | None = None
    message = ""
    result = "success"
    if spec is None:
        result, message = "failed", f"unknown tool {call.name!r}"
    elif call.name in ("stop_service", "stop_flow"):
        end = call.name
    elif call.name == "stop_media":
        message = f"{flush()} frames dropped"
    elif call.name == "set_variables":
        values = args.get("variables")
        if isinstance(values, dict):
            variables.update({str(k): str(v) for k, v in values.items() if not str(k).startswith("voipbin.")})
            message = "variables set"
        else:
            result, message = "failed", "variables must be an object of strings"
    elif call.name == "get_variables":
        message = json.dumps(dict(variables), ensure_ascii=False)
    content = json.dumps({"tool_call_id": call.id, "result": result, "message": message})
    return ToolResult(content, run_llm, end)
