"""Anthropic Messages API adapter on the official ``anthropic`` SDK (``AsyncAnthropic``).

Uses ``messages.create(stream=True)`` and reads the raw SSE events itself (rather than the SDK's
``messages.stream`` helper) so that tool-use argument fragments (``input_json_delta``) reset the
stall timer and the HTTP stream is closed the moment the consumer stops.

Conversation mapping: system messages become the ``system`` parameter; assistant tool calls
become ``tool_use`` blocks; tool results become ``tool_result`` blocks in a user turn; consecutive
turns of one role are merged because the API wants user/assistant alternation.
Usage: Anthropic's ``input_tokens`` excludes cache reads and writes; we report the whole prompt
(``input + cache_read + cache_creation``) and ``cache_read_input_tokens`` as the cached part.
SDK retries are off (``max_retries=0``), as for every adapter: the AI session decides.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import httpx2
from anthropic import AsyncAnthropic, DefaultAsyncHttpxClient

from voipbin.tls import client_ssl_context

from .base import (
    DEFAULT_TIMEOUT,
    LLM,
    PROGRESS,
    LLMAuthError,
    LLMConnectionError,
    LLMError,
    LLMEvent,
    LLMRateLimited,
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

DEFAULT_MAX_TOKENS = 1024  # required by the Messages API; a spoken turn is far shorter


def map_anthropic_error(exc: BaseException) -> LLMError | None:
    provider = "anthropic"
    if isinstance(exc, anthropic.APITimeoutError):
        return LLMTimeout(f"{provider}: request timed out", provider=provider)
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__ or exc
        return LLMConnectionError(f"{provider}: connection failed: {cause!r}", provider=provider)
    if isinstance(exc, anthropic.APIStatusError):
        kind, message = _error_detail(exc.body, exc.message)
        if exc.status_code < 400:
            # An ``event: error`` inside a 200 stream (e.g. overloaded_error mid-answer).
            text = f"{provider}: {kind or 'error'} in stream: {message}"
            if kind == "rate_limit_error":
                return LLMRateLimited(text, provider=provider, status=None)
            if kind in ("authentication_error", "permission_error"):
                return LLMAuthError(text, provider=provider)
            return LLMServerError(text, provider=provider)
        retry_after = parse_retry_after(exc.response.headers) if exc.response is not None else None
        return error_for_status(provider, exc.status_code, message, retry_after=retry_after)
    if isinstance(exc, anthropic.APIError):
        return LLMServerError(f"{provider}: {exc.message}", provider=provider)
    return transport_error(provider, exc)


def _error_detail(body: object, fallback: str) -> tuple[str | None, str]:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return error.get("type"), str(error.get("message") or fallback)
    return None, fallback


def to_anthropic(messages: list[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content) or None
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        blocks: list[dict[str, Any]] = []
        if m.role == "tool":
            role = "user"
            blocks.append({"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content})
        else:
            role = m.role
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            for call in m.tool_calls:
                blocks.append(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.parsed_arguments()}
                )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def to_anthropic_tools(tools: list[Tool]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": dict(t.parameters)} for t in tools]


class AnthropicLLM(LLM):
    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        idle_timeout: float | None = None,
        max_retries: int = 0,
    ) -> None:
        super().__init__("anthropic", model, timeout=timeout, idle_timeout=idle_timeout)
        # base_url always explicit so ANTHROPIC_BASE_URL in the environment never redirects us.
        self._client = AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or "https://api.anthropic.com",
            max_retries=max_retries,
            timeout=httpx2.Timeout(self.timeout, read=self.idle_timeout),
            # No per-session SSL context; the request hook tells stream(on_sent=) when it is out.
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
        system, turns = to_anthropic(messages)
        params: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if system:
            params["system"] = system
        if tools:
            params["tools"] = to_anthropic_tools(tools)
        if temperature is not None:
            params["temperature"] = temperature

        stream = None
        try:
            stream = await self._client.messages.create(**params)
            blocks: dict[int, dict[str, Any]] = {}
            fresh = cache_read = cache_write = output = 0
            stop_reason: str | None = None
            async for event in stream:
                kind = event.type
                if kind == "message_start":
                    u = event.message.usage
                    fresh = u.input_tokens or 0
                    cache_read = u.cache_read_input_tokens or 0
                    cache_write = u.cache_creation_input_tokens or 0
                    output = u.output_tokens or 0
                elif kind == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        blocks[event.index] = {"id": block.id, "name": block.name, "json": []}
                        yield PROGRESS
                    elif block.type == "text" and block.text:
                        yield TextDelta(block.text)
                elif kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta":
                        if event.index in blocks:
                            blocks[event.index]["json"].append(delta.partial_json)
                        yield PROGRESS
                elif kind == "content_block_stop":
                    slot = blocks.pop(event.index, None)
                    if slot is not None:
                        arguments = "".join(slot["json"]) or "{}"
                        yield ToolCallEvent(slot["id"], slot["name"], arguments)
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    u = event.usage
                    output = u.output_tokens or output
                    # Newer API versions repeat the (final) input counts here.
                    if getattr(u, "input_tokens", None):
                        fresh = u.input_tokens
                    if getattr(u, "cache_read_input_tokens", None):
                        cache_read = u.cache_read_input_tokens
                    if getattr(u, "cache_creation_input_tokens", None):
                        cache_write = u.cache_creation_input_tokens
            yield Usage(fresh + cache_read + cache_write, cache_read, output, stop_reason)
        except LLMError:
            raise
        except Exception as exc:
            mapped = map_anthropic_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if stream is not None:
                await stream.close()


__all__ = ["AnthropicLLM", "map_anthropic_error", "to_anthropic", "to_anthropic_tools"]
