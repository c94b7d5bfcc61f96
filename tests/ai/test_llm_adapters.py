"""Every cloud adapter, through its real SDK, against a local server speaking the provider's
wire protocol: streaming text, tool-call assembly, usage, every fault as the right typed error
within a bounded time, and cancellation that closes the HTTP stream (the server sees it)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from fakeproviders.llm_anthropic import FakeAnthropic
from fakeproviders.llm_gemini import FakeGemini
from fakeproviders.llm_openai import FakeOpenAI
from fakeproviders.llm_server import FakeLLMServer, FakeToolCall, Fault, Reply
from voipbin.ai.llm.anthropic_llm import AnthropicLLM
from voipbin.ai.llm.base import (
    LLM,
    LLMAuthError,
    LLMBadRequest,
    LLMConnectionError,
    LLMError,
    LLMRateLimited,
    LLMServerError,
    LLMTimeout,
    Message,
    TextDelta,
    Tool,
    ToolCallEvent,
    Usage,
)
from voipbin.ai.llm.gemini_llm import GeminiLLM
from voipbin.ai.llm.openai_compat import OpenAICompatLLM

KEY = "sk-test-123"
WEATHER = Tool(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@dataclass
class Case:
    name: str
    server: type[FakeLLMServer]
    make: Callable[[str, float, float], LLM]  # (base_url, timeout, idle_timeout)


CASES = [
    Case(
        "openai",
        FakeOpenAI,
        lambda url, t, i: OpenAICompatLLM(
            "openai", "gpt-5-mini", api_key=KEY, base_url=url + "/v1", timeout=t, idle_timeout=i
        ),
    ),
    Case(
        "anthropic",
        FakeAnthropic,
        lambda url, t, i: AnthropicLLM(
            "claude-haiku-4-5", api_key=KEY, base_url=url, timeout=t, idle_timeout=i
        ),
    ),
    Case(
        "gemini",
        FakeGemini,
        lambda url, t, i: GeminiLLM("gemini-2.5-flash", api_key=KEY, base_url=url, timeout=t, idle_timeout=i),
    ),
]


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
async def env(request) -> AsyncIterator[tuple[FakeLLMServer, Callable[..., LLM]]]:
    case: Case = request.param
    async with case.server() as server:
        server.expected_key = KEY
        made: list[LLM] = []

        def make(timeout: float = 3.0, idle_timeout: float = 0.5) -> LLM:
            llm = case.make(server.base_url, timeout, idle_timeout)
            made.append(llm)
            return llm

        yield server, make
        for llm in made:
            await llm.aclose()


async def collect(llm: LLM, messages=None, tools=None, **kw):
    events = []
    async for event in llm.stream(messages or [Message.system("Be brief."), Message.user("Hi")], tools, **kw):
        events.append(event)
    return events


async def test_streams_text_then_usage(env):
    server, make = env
    server.push(Reply(text=["Hel", "lo", " there"], input_tokens=30, cached_input_tokens=12, output_tokens=3))
    events = await collect(make())
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo", " there"]
    usage = events[-1]
    assert isinstance(usage, Usage)
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens) == (30, 12, 3)
    assert usage.stop_reason
    assert len(server.requests) == 1
    assert server.request_key(server.requests[0]) == KEY


async def test_assembles_tool_calls_from_fragments(env):
    server, make = env
    server.push(
        Reply(
            text=["Checking."],
            tool_calls=[
                FakeToolCall("call_a", "get_weather", ['{"ci', 'ty": "Pa', 'ris"}']),
                FakeToolCall("call_b", "get_weather", ['{"city": ', '"Rome"}']),
            ],
        )
    )
    events = await collect(make(), tools=[WEATHER])
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    assert [c.name for c in calls] == ["get_weather", "get_weather"]
    assert [c.tool_call.parsed_arguments() for c in calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert len({c.id for c in calls}) == 2
    assert isinstance(events[-1], Usage)
    body = str(server.requests[0].json())
    assert "get_weather" in body and "Weather for a city" in body


async def test_tool_round_trip_is_sent(env):
    server, make = env
    call = ToolCallEvent("call_1", "get_weather", '{"city": "Oslo"}').tool_call
    messages = [
        Message.system("Be brief."),
        Message.user("Weather in Oslo?"),
        Message.assistant("", [call]),
        Message.tool("call_1", '{"temp_c": 3}'),
    ]
    events = await collect(make(), messages, [WEATHER])
    assert isinstance(events[-1], Usage)
    body = str(server.requests[0].json())
    assert "Oslo" in body and "temp_c" in body and "Be brief." in body


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.http(401, "bad key"), LLMAuthError),
        (Fault.http(403, "forbidden"), LLMAuthError),
        (Fault.http(400, "bad request"), LLMBadRequest),
        (Fault.http(404, "no such model"), LLMBadRequest),
        (Fault.http(500, "boom"), LLMServerError),
        (Fault.http(503, "unavailable"), LLMServerError),
    ],
    ids=["401", "403", "400", "404", "500", "503"],
)
async def test_http_errors_are_typed_and_not_retried(env, fault, error):
    server, make = env
    server.push(Reply(fault=fault))
    started = time.monotonic()
    with pytest.raises(error) as info:
        await collect(make())
    assert time.monotonic() - started < 2.0
    assert info.value.status == fault.status
    assert len(server.requests) == 1  # max_retries=0: no silent retry on a live call


async def test_rate_limit_carries_retry_after(env):
    server, make = env
    server.push(Reply(fault=Fault.http(429, "slow down", retry_after="7")))
    with pytest.raises(LLMRateLimited) as info:
        await collect(make())
    assert info.value.retry_after == pytest.approx(7.0)
    assert len(server.requests) == 1


async def test_wrong_key_is_auth_error(env):
    server, make = env
    server.expected_key = "another-key"
    with pytest.raises(LLMAuthError):
        await collect(make())


async def test_stall_mid_stream_times_out(env):
    server, make = env
    server.push(Reply(text=["one", "two", "three", "four", "five"], fault=Fault.stall(after=5)))
    llm = make(timeout=3.0, idle_timeout=0.4)
    got: list[str] = []
    started = time.monotonic()
    with pytest.raises(LLMTimeout):
        async for event in llm.stream([Message.user("Hi")]):
            if isinstance(event, TextDelta):
                got.append(event.text)
    assert 0.35 < time.monotonic() - started < 2.0
    assert got  # the stall came after some text
    await asyncio.wait_for(server.requests[0].client_gone.wait(), 2.0)  # we hung up


async def test_no_first_token_times_out(env):
    server, make = env
    server.push(Reply(fault=Fault.stall(after=0)))
    llm = make(timeout=0.5, idle_timeout=5.0)
    started = time.monotonic()
    with pytest.raises(LLMTimeout):
        await collect(llm)
    assert time.monotonic() - started < 1.5
    await asyncio.wait_for(server.requests[0].client_gone.wait(), 2.0)


async def test_dropped_connection_mid_stream(env):
    server, make = env
    server.push(Reply(text=["one", "two", "three", "four"], fault=Fault.drop(after=2)))
    started = time.monotonic()
    with pytest.raises(LLMConnectionError):
        await collect(make())
    assert time.monotonic() - started < 2.0


async def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` now.
    for case in CASES:
        llm = case.make(f"http://127.0.0.1:{port}", 2.0, 1.0)
        started = time.monotonic()
        with pytest.raises(LLMConnectionError):
            await collect(llm)
        assert time.monotonic() - started < 2.0, case.name
        await llm.aclose()


async def test_cancelling_consumer_closes_http_stream(env):
    server, make = env
    server.push(Reply(text=[f"w{i} " for i in range(100)], delay=0.05))
    llm = make(timeout=3.0, idle_timeout=3.0)
    first = asyncio.Event()

    async def consume() -> None:
        async for event in llm.stream([Message.user("Tell me a long story")]):
            if isinstance(event, TextDelta):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 3.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.monotonic()
    await asyncio.wait_for(server.requests[0].client_gone.wait(), 1.0)
    assert time.monotonic() - started < 1.0
    assert not server.requests[0].completed  # 100 words x 50 ms were never all sent


async def test_aclose_on_stream_closes_http_stream(env):
    server, make = env
    server.push(Reply(text=[f"w{i} " for i in range(100)], delay=0.05))
    stream = make(timeout=3.0, idle_timeout=3.0).stream([Message.user("Tell me a long story")])
    event = await anext(stream)
    assert isinstance(event, TextDelta)
    await stream.aclose()
    await asyncio.wait_for(server.requests[0].client_gone.wait(), 1.0)
    assert not server.requests[0].completed


async def test_llm_errors_share_a_base(env):
    server, make = env
    server.push(Reply(fault=Fault.http(500)))
    with pytest.raises(LLMError):
        await collect(make())


@pytest.mark.parametrize("fake", [FakeOpenAI, FakeAnthropic], ids=["openai", "anthropic"])
async def test_error_event_inside_stream(fake):
    async with fake() as server:
        server.push(Reply(text=["a", "b", "c"], fault=Fault.stream_error(after=3, message="overloaded")))
        case = next(c for c in CASES if c.server is fake)
        llm = case.make(server.base_url, 2.0, 1.0)
        with pytest.raises(LLMServerError, match="overloaded"):
            await collect(llm)
        await llm.aclose()


async def test_openai_body_is_sent_as_built_without_the_sdk_transform(monkeypatch):
    """The conversation reaches the wire exactly as :func:`to_openai_messages` builds it, and the
    SDK's typed argument transform (which walks every message on the loop) never sees it."""
    import openai.resources.chat.completions.completions as sdk

    from voipbin.ai.llm.openai_compat import to_openai_messages, to_openai_tools

    seen: list[dict] = []
    transform = sdk.async_maybe_transform

    async def spy(data, expected_type):
        seen.append(dict(data))
        return await transform(data, expected_type)

    monkeypatch.setattr(sdk, "async_maybe_transform", spy)
    call = ToolCallEvent("call_1", "get_weather", '{"city": "Oslo"}').tool_call
    messages = [Message.system("Be brief.")]
    for i in range(20):
        messages += [Message.user(f"question {i}"), Message.assistant(f"answer {i}")]
    messages += [Message.assistant("", [call]), Message.tool("call_1", '{"temp_c": 3}')]
    async with FakeOpenAI() as server:
        server.push(Reply(text=["Cold."]))
        llm = OpenAICompatLLM("openai", "gpt-5-mini", api_key=KEY, base_url=server.base_url + "/v1")
        events = await collect(llm, messages, [WEATHER], temperature=0.2, max_tokens=50)
        await llm.aclose()
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Cold."]
    body = server.requests[0].json()
    assert body["messages"] == to_openai_messages(messages)
    assert body["tools"] == to_openai_tools([WEATHER])
    assert (body["model"], body["stream"], body["temperature"]) == ("gpt-5-mini", True, 0.2)
    assert body["max_completion_tokens"] == 50 and body["stream_options"] == {"include_usage": True}
    assert seen and all(not s.get("messages") and not s.get("tools") for s in seen)


@pytest.mark.serial  # a real-time bound: run with nothing beside it (conftest)
async def test_on_sent_is_called_once_when_the_request_is_out(env):
    """OpenAI and Anthropic report the request the moment its body is written, so the fake's 300 ms
    to the first token lie between the two; others report it with their first event. Once always."""
    server, make = env
    server.push(Reply(text=["Hi", " there"], first_delay=0.3))
    loop = asyncio.get_running_loop()
    sent: list[float] = []
    texts: list[float] = []
    async for event in make(timeout=5.0).stream(
        [Message.user("Hi")], on_sent=lambda: sent.append(loop.time())
    ):
        if isinstance(event, TextDelta):
            texts.append(loop.time())
    assert len(sent) == 1 and len(texts) == 2
    if isinstance(server, FakeOpenAI | FakeAnthropic):
        assert texts[0] - sent[0] >= 0.29
    else:
        assert 0 <= texts[0] - sent[0] < 0.25


async def test_on_sent_is_called_when_the_request_fails(env):
    server, make = env
    server.push(Reply(fault=Fault.http(500)))
    sent: list[int] = []
    with pytest.raises(LLMServerError):
        async for _ in make().stream([Message.user("Hi")], on_sent=lambda: sent.append(1)):
            pass
    assert sent == [1]


async def test_a_failing_on_sent_does_not_fail_the_request(env, caplog):
    server, make = env
    server.push(Reply(text=["Fine."]))

    def broken() -> None:
        raise RuntimeError("bookkeeping bug")

    events = [e async for e in make().stream([Message.user("Hi")], on_sent=broken)]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Fine."]
    assert "request-sent callback failed" in caplog.text
