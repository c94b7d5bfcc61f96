"""OpenAI Chat Completions adapter, shared by OpenAI and every OpenAI-compatible provider.

Grok, Groq, DeepSeek, Mistral, Together, Fireworks, OpenRouter, Perplexity, Cerebras, SambaNova,
NVIDIA, Qwen (DashScope compatible mode), Ollama and Azure OpenAI (v1 API) all accept the same
``/chat/completions`` streaming protocol, so one adapter built on the official ``openai`` SDK
(``AsyncOpenAI`` with a ``base_url``) serves them; the registry supplies the base URL.

SDK retries are off (``max_retries=0``): on a live call a silent retry doubles the caller's wait;
the AI session sees a typed error at once and decides (say a filler line, retry, or give up).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

from voipbin.tls import client_ssl_context

from .base import (
    DEFAULT_TIMEOUT,
    LLM,
    PROGRESS,
    LLMConnectionError,
    LLMError,
    LLMEvent,
    LLMServerError,
    LLMTimeout,
    Message,
    Progress,
    TextDelta,
    Tool,
    ToolCallEvent,
    Usage,
    error_for_status,
    parse_retry_after,
    transport_error,
)
from .sent import notifying_hooks

# Providers whose newest models reject ``max_tokens`` in favour of ``max_completion_tokens``.
_MAX_COMPLETION_TOKENS = frozenset({"openai", "azure"})


def map_openai_error(provider: str, exc: BaseException) -> LLMError | None:
    """Translate an ``openai`` SDK exception into our typed errors (None: not an SDK error)."""
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeout(f"{provider}: request timed out", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return LLMConnectionError(f"{provider}: connection failed: {cause!r}", provider=provider)
    if isinstance(exc, openai.APIStatusError):
        retry_after = parse_retry_after(exc.response.headers) if exc.response is not None else None
        return error_for_status(provider, exc.status_code, _message(exc), retry_after=retry_after)
    if isinstance(exc, openai.APIError):
        # An ``error`` object inside the event stream (the SDK raises APIError for it).
        return LLMServerError(f"{provider}: error in stream: {exc.message}", provider=provider)
    return transport_error(provider, exc)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return exc.message


def to_openai_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content})
        elif m.role == "assistant" and m.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": m.content or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in m.tool_calls
                    ],
                }
            )
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def to_openai_tools(tools: list[Tool]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
        }
        for t in tools
    ]


class OpenAICompatLLM(LLM):
    def __init__(
        self,
        provider: str,
        model: str,
        *,
        api_key: str | None,
        base_url: str,
        timeout: float = DEFAULT_TIMEOUT,
        idle_timeout: float | None = None,
        stream_usage: bool = True,
        max_retries: int = 0,
    ) -> None:
        super().__init__(provider, model, timeout=timeout, idle_timeout=idle_timeout)
        self.base_url = base_url
        self.stream_usage = stream_usage
        # api_key and base_url are always explicit so the SDK never falls back to OPENAI_API_KEY /
        # OPENAI_BASE_URL from the environment. Keyless local servers (ollama) get a placeholder.
        self._client = AsyncOpenAI(
            api_key=api_key or "no-key",
            base_url=base_url,
            max_retries=max_retries,
            timeout=httpx2.Timeout(self.timeout, read=self.idle_timeout),
            # The process-wide TLS context: the SDK's default client would build one per session
            # (~17 ms on the loop, even for http:// URLs).
            # The request hook tells stream(on_sent=) when the request is out (sent.py).
            http_client=DefaultAsyncHttpxClient(verify=client_ssl_context(), event_hooks=notifying_hooks()),
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def _stream(
        self,
        messages: list[Message],
        tools: list[Tool],
        *,
        temperature: float | None,
        max_tokens: int | None,
    ) -> AsyncGenerator[LLMEvent | Progress, None]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages),
            "stream": True,
        }
        if self.stream_usage:
            params["stream_options"] = {"include_usage": True}
        if tools:
            params["tools"] = to_openai_tools(tools)
        if temperature is not None:
            params["temperature"] = temperature
        if max_tokens is not None:
            key = "max_completion_tokens" if self.provider in _MAX_COMPLETION_TOKENS else "max_tokens"
            params[key] = max_tokens

        stream = None
        try:
            # The body goes in ``extra_body``: the SDK's typed transform of its arguments walks every
            # message and tool recursively with typing introspection (~0.4 ms per message on this
            # machine, 25 ms for a 30-turn call) on the loop before the request is sent, and does
            # nothing to plain JSON like ours. ``extra_body`` is sent as it is, merged over the rest.
            stream = await self._client.chat.completions.create(
                model=self.model, messages=[], stream=True, extra_body=params
            )
            calls: dict[int, dict[str, Any]] = {}
            usage = Usage()
            stop_reason: str | None = None
            emitted = False
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        yield TextDelta(delta.content)
                    for fragment in (delta.tool_calls if delta is not None else None) or ():
                        slot = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": []})
                        if fragment.id:
                            slot["id"] = fragment.id
                        if fragment.function is not None:
                            if fragment.function.name:
                                slot["name"] += fragment.function.name
                            if fragment.function.arguments:
                                slot["arguments"].append(fragment.function.arguments)
                        yield PROGRESS
                    if choice.finish_reason:
                        stop_reason = choice.finish_reason
                        if not emitted:
                            emitted = True
                            for event in _tool_events(calls):
                                yield event
            if not emitted:
                for event in _tool_events(calls):
                    yield event
            yield Usage(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, stop_reason)
        except LLMError:
            raise
        except Exception as exc:
            mapped = map_openai_error(self.provider, exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if stream is not None:
                await stream.close()


def _tool_events(calls: dict[int, dict[str, Any]]) -> list[ToolCallEvent]:
    events = []
    for index in sorted(calls):
        slot = calls[index]
        arguments = "".join(slot["arguments"]) or "{}"
        events.append(ToolCallEvent(slot["id"] or f"call_{index}", slot["name"], arguments))
    return events


def _usage(raw: Any) -> Usage:
    cached = 0
    details = getattr(raw, "prompt_tokens_details", None)
    if details is not None and getattr(details, "cached_tokens", None):
        cached = int(details.cached_tokens)
    else:
        # DeepSeek reports its prompt cache as a top-level extra field.
        extra = getattr(raw, "model_extra", None) or {}
        cached = int(extra.get("prompt_cache_hit_tokens") or 0)
    return Usage(
        input_tokens=int(raw.prompt_tokens or 0),
        cached_input_tokens=cached,
        output_tokens=int(raw.completion_tokens or 0),
    )


__all__ = ["OpenAICompatLLM", "map_openai_error", "to_openai_messages", "to_openai_tools"]
