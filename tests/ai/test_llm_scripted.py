"""offline.scripted: deterministic answers through the same streaming interface."""

from __future__ import annotations

import asyncio

from voipbin.ai.llm.base import Message, TextDelta, Tool, ToolCallEvent, Usage
from voipbin.ai.llm.scripted import GREETING, Rule, ScriptedLLM

STOP = Tool("stop_service", "End the AI conversation")


async def run(llm, messages, tools=None, **kw):
    return [e async for e in llm.stream(messages, tools, **kw)]


def text_of(events):
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_greets_first():
    events = await run(ScriptedLLM(), [Message.system("You are a bakery assistant.")])
    assert text_of(events) == GREETING
    assert isinstance(events[-1], Usage) and events[-1].output_tokens == len(GREETING.split())


async def test_same_input_same_output():
    messages = [Message.system("x"), Message.user("What are your opening hours?")]
    first = await run(ScriptedLLM(), messages)
    second = await run(ScriptedLLM(), messages)
    assert first == second
    assert text_of(first) == "We are open from nine to five, Monday to Friday."
    assert len([e for e in first if isinstance(e, TextDelta)]) > 3  # streamed word by word


async def test_echoes_unknown_input():
    events = await run(ScriptedLLM(), [Message.user("I need a blue umbrella!")])
    assert text_of(events) == "You said: I need a blue umbrella."


async def test_goodbye_calls_stop_service_only_when_offered():
    messages = [Message.user("Hello"), Message.assistant(GREETING), Message.user("OK, goodbye")]
    with_tool = await run(ScriptedLLM(), messages, [STOP])
    calls = [e for e in with_tool if isinstance(e, ToolCallEvent)]
    assert [(c.id, c.name, c.arguments) for c in calls] == [("call_scripted_1", "stop_service", "{}")]
    assert with_tool[-1].stop_reason == "tool_calls"
    without = await run(ScriptedLLM(), messages)
    assert not [e for e in without if isinstance(e, ToolCallEvent)]
    assert text_of(without) == "Goodbye! Have a nice day."


async def test_after_tool_result():
    messages = [
        Message.user("bye"),
        Message.assistant("", [ToolCallEvent("c", "stop_service", "{}").tool_call]),
    ]
    events = await run(ScriptedLLM(), [*messages, Message.tool("c", '{"result": "success"}')])
    assert text_of(events) == "Okay, that's done."


async def test_summary_is_extractive():
    messages = [
        Message.system("Summarize the conversation in one paragraph."),
        Message.user("Caller: I want to book a table for two at seven."),
    ]
    text = text_of(await run(ScriptedLLM(), messages))
    assert text.startswith("Summary: ") and "table for two at seven" in text


async def test_custom_rules_and_max_tokens():
    llm = ScriptedLLM([Rule(r"pizza", "One pizza coming right up for you")])
    events = await run(llm, [Message.user("pizza please")], max_tokens=3)
    assert text_of(events) == "One pizza coming"
    assert events[-1].stop_reason == "length"


async def test_cancellation_stops_stream():
    llm = ScriptedLLM([Rule(".", " ".join(["word"] * 200))], token_delay=0.01)
    seen = []

    async def consume():
        async for event in llm.stream([Message.user("talk")]):
            seen.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    count = len(seen)
    await asyncio.sleep(0.05)
    assert 0 < count < 200 and len(seen) == count
