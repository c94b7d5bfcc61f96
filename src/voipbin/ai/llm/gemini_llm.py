"""Gemini adapter on the official ``google-genai`` SDK (``client.aio.models.generate_content_stream``).

Conversation mapping: system messages become ``system_instruction``; assistant turns are role
``model`` with ``function_call`` parts; tool results are ``function_response`` parts in a user
turn, keyed by function *name* (Gemini's rule), which we recover from the earlier call's id.
Gemini sends each function call whole (no argument fragments) and may omit its id; we then
synthesise a stable one. Usage comes from the last chunk's ``usage_metadata``
(``prompt_token_count`` includes ``cached_content_token_count``; thinking tokens count as output).
SDK retries are off (``HttpRetryOptions(attempts=1)``, which also disables its implicit retry).
Known gap: Gemini 3 "thought signatures" on function calls are not carried across turns.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from voipbin.tls import client_ssl_context

from .base import (
    DEFAULT_TIMEOUT,
    LLM,
    LLMError,
    LLMEvent,
    LLMServerError,
    Message,
    Progress,
    TextDelta,
    Tool,
    ToolCallEvent,
    Usage,
    error_for_status,
    pump_in_task,
    tool_names_by_call_id,
    transport_error,
)


def map_gemini_error(exc: BaseException) -> LLMError | None:
    provider = "gemini"
    if isinstance(exc, genai_errors.APIError):
        code = int(exc.code or 0)
        message = exc.message or str(exc)
        if code >= 400:
            return error_for_status(provider, code, message, retry_after=_retry_delay(exc.details))
        return LLMServerError(f"{provider}: {message}", provider=provider)
    return transport_error(provider, exc)


def _retry_delay(details: Any) -> float | None:
    """``google.rpc.RetryInfo.retryDelay`` (e.g. ``"7s"``) from an error body, if present."""
    error = details.get("error", details) if isinstance(details, dict) else None
    for item in (error or {}).get("details") or ():
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"([0-9.]+)s", str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def to_gemini(messages: list[Message]) -> tuple[str | None, list[types.Content]]:
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content) or None
    names = tool_names_by_call_id(messages)
    contents: list[types.Content] = []
    for m in messages:
        if m.role == "system":
            continue
        parts: list[types.Part] = []
        if m.role == "tool":
            role = "user"
            try:
                result: Any = json.loads(m.content)
            except ValueError:
                result = m.content
            response = result if isinstance(result, dict) else {"result": result}
            name = names.get(m.tool_call_id or "", "tool")
            parts.append(
                types.Part(
                    function_response=types.FunctionResponse(id=m.tool_call_id, name=name, response=response)
                )
            )
        else:
            role = "model" if m.role == "assistant" else "user"
            if m.content:
                parts.append(types.Part(text=m.content))
            for call in m.tool_calls:
                parts.append(
                    types.Part(
                        function_call=types.FunctionCall(
                            id=call.id, name=call.name, args=call.parsed_arguments()
                        )
                    )
                )
        if not parts:
            continue
        if contents and contents[-1].role == role:
            contents[-1].parts = [*(contents[-1].parts or []), *parts]
        else:
            contents.append(types.Content(role=role, parts=parts))
    return system, contents


class GeminiLLM(LLM):
    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        idle_timeout: float | None = None,
    ) -> None:
        super().__init__("gemini", model, timeout=timeout, idle_timeout=idle_timeout)
        options = types.HttpOptions(
            base_url=base_url or "https://generativelanguage.googleapis.com/",
            # Milliseconds; a backstop only: LLM.stream enforces the first-token and stall limits.
            timeout=int(max(self.timeout, self.idle_timeout) * 1000) + 1000,
            retry_options=types.HttpRetryOptions(attempts=1),
            # The process-wide TLS context instead of one built per client (per session).
            client_args={"verify": client_ssl_context()},
            async_client_args={"verify": client_ssl_context(), "ssl": client_ssl_context()},
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    async def _stream(
        self,
        messages: list[Message],
        tools: list[Tool],
        *,
        temperature: float | None,
        max_tokens: int | None,
    ) -> AsyncGenerator[LLMEvent | Progress, None]:
        system, contents = to_gemini(messages)
        config = types.GenerateContentConfig(
            system_instruction=system,
            temperature=temperature,
            max_output_tokens=max_tokens,
            tools=[
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(
                            name=t.name, description=t.description, parameters_json_schema=dict(t.parameters)
                        )
                        for t in tools
                    ]
                )
            ]
            if tools
            else None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )

        async def chunks() -> AsyncIterator[types.GenerateContentResponse]:
            stream = await self._client.aio.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
            async for chunk in stream:
                yield chunk

        try:
            usage = Usage()
            stop_reason: str | None = None
            calls = 0
            # The SDK's stream nests generators that aclose() would not reach: see pump_in_task.
            async for chunk in pump_in_task(chunks()):
                if chunk.usage_metadata is not None:
                    u = chunk.usage_metadata
                    usage = Usage(
                        int(u.prompt_token_count or 0),
                        int(u.cached_content_token_count or 0),
                        int(u.candidates_token_count or 0) + int(u.thoughts_token_count or 0),
                    )
                for candidate in chunk.candidates or ():
                    if candidate.finish_reason is not None:
                        stop_reason = str(getattr(candidate.finish_reason, "value", candidate.finish_reason))
                    for part in (candidate.content.parts if candidate.content else None) or ():
                        if part.thought:
                            continue
                        if part.text:
                            yield TextDelta(part.text)
                        if part.function_call is not None:
                            fc = part.function_call
                            calls += 1
                            args = json.dumps(fc.args or {}, separators=(",", ":"))
                            yield ToolCallEvent(fc.id or f"call_{fc.name}_{calls}", fc.name or "", args)
            yield Usage(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, stop_reason)
        except LLMError:
            raise
        except Exception as exc:
            mapped = map_gemini_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
