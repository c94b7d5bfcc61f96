"""The one LLM interface every adapter implements, plus its messages, events and typed errors.

An AI session talks to a language model only through :class:`LLM.stream`: it hands over the
conversation and the tool definitions and consumes an async stream of events (text deltas,
assembled tool calls, one final usage record). Provider SDKs never leak past the adapters.

Time limits are enforced here, once, for every adapter, because an SDK's own HTTP timeouts do
not express what a phone call needs: the caller is waiting for the *first token*, and a stream
that goes quiet half-way must fail fast instead of leaving dead air. So :meth:`LLM.stream`
wraps the adapter's raw generator with

* a first-token deadline (connect + request + first content chunk) of ``timeout`` seconds, and
* an idle (stall) limit of ``idle_timeout`` seconds between two chunks after that,

and raises :class:`LLMTimeout` when either is exceeded, closing the HTTP stream. Cancelling the
consuming task, or calling ``aclose()`` on the stream, closes the HTTP stream at once as well:
adapters release their SDK stream in ``finally`` blocks.
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .sent import call_once, notify_sent_during

Role = Literal["system", "user", "assistant", "tool"]

DEFAULT_TIMEOUT = 15.0
"""Seconds allowed for connect + first token. Cloud models usually answer in well under 2 s."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call requested by the model. ``arguments`` is the JSON text the model produced."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; ``{}`` when the model produced invalid or non-object JSON."""
        try:
            value = json.loads(self.arguments or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation turn, provider-neutral (OpenAI-like roles)."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # set on role="tool": the call this message answers

    @classmethod
    def system(cls, content: str) -> Message:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: Iterable[ToolCall] = ()) -> Message:
        return cls("assistant", content, tuple(tool_calls))

    @classmethod
    def tool(cls, tool_call_id: str, content: str) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is a JSON schema (an ``object`` schema)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    """A complete tool call, emitted once its streamed argument fragments are assembled."""

    id: str
    name: str
    arguments: str

    @property
    def tool_call(self) -> ToolCall:
        return ToolCall(self.id, self.name, self.arguments)


@dataclass(frozen=True, slots=True)
class Usage:
    """Always the last event of a successful stream.

    ``input_tokens`` is the whole prompt, *including* the part served from the provider's prompt
    cache, which ``cached_input_tokens`` reports separately. Zeros mean the provider reported nothing.
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None


LLMEvent = TextDelta | ToolCallEvent | Usage


class Progress:
    """Internal marker an adapter yields for chunks that carry content but no event yet
    (e.g. a tool-call argument fragment). It resets the stall timer and is never passed on."""

    __slots__ = ()


PROGRESS = Progress()


# --- errors ---------------------------------------------------------------------------------


class LLMError(Exception):
    """Base of every error an LLM stream raises."""

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class LLMTimeout(LLMError):
    """No first token within ``timeout`` or no chunk within ``idle_timeout`` (stall)."""


class LLMAuthError(LLMError):
    """401/403: missing, wrong or unauthorised API key."""


class LLMRateLimited(LLMError):
    """429 (or the provider's equivalent). ``retry_after`` in seconds when the provider said."""

    def __init__(
        self, message: str, *, provider: str = "", status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class LLMServerError(LLMError):
    """5xx or an error event inside the stream: the provider failed."""


class LLMConnectionError(LLMError):
    """Connection refused, reset, or dropped in the middle of the stream."""


class LLMBadRequest(LLMError):
    """4xx other than auth/rate limit: unknown model, invalid tools, context too long..."""


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (delta-seconds or HTTP date)."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(
    provider: str, status: int, message: str, *, retry_after: float | None = None
) -> LLMError:
    """Map an HTTP status to the typed error; shared by every adapter."""
    text = f"{provider}: HTTP {status}: {message}"
    if status in (401, 403):
        return LLMAuthError(text, provider=provider, status=status)
    if status == 429:
        return LLMRateLimited(text, provider=provider, status=status, retry_after=retry_after)
    if status >= 500:
        return LLMServerError(text, provider=provider, status=status)
    return LLMBadRequest(text, provider=provider, status=status)


def transport_error(provider: str, exc: BaseException) -> LLMError | None:
    """Map an httpx/httpx2 transport exception (raised while iterating a stream) to a typed error.

    The SDKs wrap errors raised while *sending* the request, but an error while *reading* the
    body of a streamed response reaches us as the raw HTTP-library exception.
    """
    module = type(exc).__module__.split(".")[0]
    if module not in ("httpx", "httpx2", "httpcore", "h11", "anyio"):
        return None
    name = type(exc).__name__
    if "Timeout" in name:
        return LLMTimeout(f"{provider}: {name}: {exc}", provider=provider)
    return LLMConnectionError(f"{provider}: connection lost: {name}: {exc}", provider=provider)


# --- the interface --------------------------------------------------------------------------


class LLM(abc.ABC):
    """A streaming chat model. Subclasses implement :meth:`_stream`; callers use :meth:`stream`."""

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        idle_timeout: float | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.timeout = timeout
        self.idle_timeout = timeout if idle_timeout is None else idle_timeout

    @property
    def engine_model(self) -> str:
        return f"{self.provider}.{self.model}"

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool] | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> AsyncIterator[LLMEvent]:
        """Stream the model's reply: ``TextDelta``/``ToolCallEvent`` events, then one ``Usage``.

        ``on_sent`` is called once, as soon as the request has been sent (adapters whose HTTP client
        carries :func:`~voipbin.ai.llm.sent.notifying_hooks`), else when the first event came or
        the request failed. Raises a subclass of :class:`LLMError`; never blocks longer than the
        time limits.
        """
        raw = self._stream(list(messages), list(tools or ()), temperature=temperature, max_tokens=max_tokens)
        loop = asyncio.get_running_loop()
        first_deadline = loop.time() + self.timeout
        got_first = False
        notify = call_once(on_sent)
        try:
            while True:
                try:
                    if got_first:
                        async with asyncio.timeout(self.idle_timeout):
                            event = await anext(raw)
                    else:
                        try:
                            with notify_sent_during(notify):
                                async with asyncio.timeout_at(first_deadline):
                                    event = await anext(raw)
                        finally:
                            notify()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    what = f"stalled for {self.idle_timeout:g}s" if got_first else "no first token"
                    limit = self.idle_timeout if got_first else self.timeout
                    raise LLMTimeout(
                        f"{self.engine_model}: {what} (limit {limit:g}s)", provider=self.provider
                    ) from None
                got_first = True
                if isinstance(event, Progress):
                    continue
                yield event
        finally:
            await raw.aclose()

    @abc.abstractmethod
    def _stream(
        self,
        messages: list[Message],
        tools: list[Tool],
        *,
        temperature: float | None,
        max_tokens: int | None,
    ) -> AsyncGenerator[LLMEvent | Progress, None]:
        """The adapter's raw stream (an async generator). Must map SDK errors to ``LLMError``
        and close its HTTP stream in ``finally``."""

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[Tool] | None = None, **kw: Any
    ) -> str:
        """Convenience for non-interactive uses (summaries): the whole text of one reply."""
        parts: list[str] = []
        async for event in self.stream(messages, tools, **kw):
            if isinstance(event, TextDelta):
                parts.append(event.text)
        return "".join(parts)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default does nothing
        """Release the client (connection pool). Streams in flight are not affected."""

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def pump_in_task(source: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Iterate ``source`` in a helper task so that stopping us really stops it.

    Some SDK streams are chains of nested async generators; closing the outer one does not close
    the inner ones that hold the HTTP response, so the connection would stay open until garbage
    collection. Cancelling a task that is awaiting the network, on the other hand, unwinds every
    frame of the chain (each ``async with`` closes). The queue is unbounded on purpose: the pump
    must never wait on us, only on the network, so a cancel always lands there.
    """
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in source:
                queue.put_nowait((True, item))
        except Exception as exc:
            queue.put_nowait((False, exc))
        else:
            queue.put_nowait((False, None))

    task = asyncio.create_task(pump())
    try:
        while True:
            ok, value = await queue.get()
            if ok:
                yield value
            elif value is None:
                return
            else:
                raise value
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:
                pass


def tool_names_by_call_id(messages: Iterable[Message]) -> dict[str, str]:
    """Tool-call id -> function name, for providers whose tool results are keyed by name (Gemini)."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.tool_calls:
            names[call.id] = call.name
    return names
