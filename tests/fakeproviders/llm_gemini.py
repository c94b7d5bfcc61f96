"""Fake Gemini API endpoint (``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``).

Emits ``data: {GenerateContentResponse}`` SSE events in the camelCase JSON the ``google-genai``
SDK parses: text parts per chunk, whole ``functionCall`` parts (Gemini does not fragment
arguments), a final chunk with ``finishReason`` and ``usageMetadata`` (``promptTokenCount``,
``cachedContentTokenCount``, ``candidatesTokenCount``). Errors use Google's
``{"error": {"code", "message", "status", "details"}}`` body, with a ``RetryInfo`` detail on 429.
"""

from __future__ import annotations

import json
from typing import Any

from .llm_server import FakeLLMServer, Reply, Request, sse

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class FakeGemini(FakeLLMServer):
    retry_delay = "7s"

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and path.endswith(":streamGenerateContent")

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
        if status == 429:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": self.retry_delay}
            ]
        return {"error": error}

    def render(self, request: Request, reply: Reply) -> list[bytes]:
        model = request.path.rsplit("/", 1)[-1].split(":", 1)[0]
        prompt = {"promptTokenCount": reply.input_tokens, "totalTokenCount": reply.input_tokens}

        def chunk(
            parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, Any] = prompt
        ) -> bytes:
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            return sse(
                {
                    "candidates": [candidate],
                    "usageMetadata": usage,
                    "modelVersion": model,
                    "responseId": "resp_fake",
                }
            )

        events = [chunk([{"text": text}]) for text in reply.text]
        for call in reply.tool_calls:
            args = json.loads("".join(call.argument_chunks) or "{}")
            events.append(chunk([{"functionCall": {"name": call.name, "args": args}}]))
        final_usage = {
            "promptTokenCount": reply.input_tokens,
            "cachedContentTokenCount": reply.cached_input_tokens,
            "candidatesTokenCount": reply.output_tokens,
            "totalTokenCount": reply.input_tokens + reply.output_tokens,
        }
        events.append(chunk([{"text": ""}], "STOP", final_usage))
        return events
