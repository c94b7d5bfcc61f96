"""Fake OpenAI Chat Completions endpoint (``POST .../chat/completions``, ``stream: true``).

Speaks the real wire format the ``openai`` SDK parses: ``data: {chat.completion.chunk}`` SSE
events (a role chunk, content deltas, ``tool_calls`` deltas keyed by ``index`` with the argument
JSON split into fragments, a finish chunk), a usage-only chunk with empty ``choices`` when the
request asked for ``stream_options.include_usage``, then ``data: [DONE]``. Errors use OpenAI's
``{"error": {"message", "type", "param", "code"}}`` body. The OpenAI-compatible providers
(grok, groq, deepseek, ollama...) speak the same protocol, so this one fake serves them all.
"""

from __future__ import annotations

from typing import Any

from .llm_server import FakeLLMServer, Reply, Request, sse

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class FakeOpenAI(FakeLLMServer):
    created = 1_700_000_000

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and path.endswith("/chat/completions")

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind, code = _ERROR_TYPES.get(status, ("server_error", None))
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def stream_error_event(self, message: str) -> bytes:
        return sse({"error": {"message": message, "type": "server_error", "param": None, "code": None}})

    def _chunk(self, model: str, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        choices = (
            [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }

    def render(self, request: Request, reply: Reply) -> list[bytes]:
        body = request.json() or {}
        model = body.get("model", "unknown")
        events = [sse(self._chunk(model, {"role": "assistant", "content": "", "refusal": None}))]
        for text in reply.text:
            events.append(sse(self._chunk(model, {"content": text})))
        for index, call in enumerate(reply.tool_calls):
            head = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(sse(self._chunk(model, {"tool_calls": [head]})))
            for fragment in call.argument_chunks:
                part = {"index": index, "function": {"arguments": fragment}}
                events.append(sse(self._chunk(model, {"tool_calls": [part]})))
        finish = "tool_calls" if reply.tool_calls else "stop"
        events.append(sse(self._chunk(model, {}, finish)))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage_chunk = self._chunk(model, None)
            usage_chunk["usage"] = {
                "prompt_tokens": reply.input_tokens,
                "completion_tokens": reply.output_tokens,
                "total_tokens": reply.input_tokens + reply.output_tokens,
                "prompt_tokens_details": {"cached_tokens": reply.cached_input_tokens, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            }
            events.append(sse(usage_chunk))
        events.append(sse("[DONE]"))
        return events
