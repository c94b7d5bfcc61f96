"""Fake Anthropic Messages endpoint (``POST /v1/messages`` with ``stream: true``).

Emits the real event sequence the ``anthropic`` SDK decodes: ``message_start`` (with usage
including ``cache_read_input_tokens``), per block ``content_block_start`` / ``content_block_delta``
(``text_delta``, or ``input_json_delta`` fragments for ``tool_use``) / ``content_block_stop``, a
``ping``, ``message_delta`` (stop_reason, output usage) and ``message_stop``. Errors use
Anthropic's ``{"type": "error", "error": {"type", "message"}}`` body; an in-stream failure is an
``event: error`` (``overloaded_error``).
"""

from __future__ import annotations

from typing import Any

from .llm_server import FakeLLMServer, Reply, Request, sse

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class FakeAnthropic(FakeLLMServer):
    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and path.endswith("/v1/messages")

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}

    def stream_error_event(self, message: str) -> bytes:
        return sse({"type": "error", "error": {"type": "overloaded_error", "message": message}}, "error")

    def render(self, request: Request, reply: Reply) -> list[bytes]:
        body = request.json() or {}
        usage = {
            "input_tokens": reply.input_tokens - reply.cached_input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": reply.cached_input_tokens,
            "output_tokens": 1,
        }
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": body.get("model", "unknown"),
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        events = [sse({"type": "message_start", "message": message}, "message_start")]
        index = 0
        if reply.text:
            start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            events.append(sse(start, "content_block_start"))
            events.append(sse({"type": "ping"}, "ping"))
            for text in reply.text:
                delta = {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                }
                events.append(sse(delta, "content_block_delta"))
            events.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
            index = 1
        for call in reply.tool_calls:
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            events.append(
                sse(
                    {"type": "content_block_start", "index": index, "content_block": block},
                    "content_block_start",
                )
            )
            for fragment in ["", *call.argument_chunks]:
                delta = {"type": "input_json_delta", "partial_json": fragment}
                events.append(
                    sse(
                        {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
                    )
                )
            events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
            index += 1
        stop = "tool_use" if reply.tool_calls else "end_turn"
        final = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": reply.output_tokens},
        }
        events.append(sse(final, "message_delta"))
        events.append(sse({"type": "message_stop"}, "message_stop"))
        return events
