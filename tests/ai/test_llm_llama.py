"""llama.cpp engine: prompt rendering always; real generation only when the optional extra is installed."""

from __future__ import annotations

import importlib.util

import pytest

from voipbin.ai.llm.base import Message, TextDelta, Usage
from voipbin.ai.llm.llama_cpp import FEW_SHOT, build_prompt


def test_prompt_is_few_shot_completion():
    prompt = build_prompt(
        [
            Message.system("You work at a bakery."),
            Message.user("Are you open\non Sunday?"),
            Message.assistant("Yes."),
            Message.user("When?"),
        ]
    )
    assert prompt.startswith("You work at a bakery.\n" + FEW_SHOT)
    assert prompt.endswith("Caller: Are you open on Sunday?\nAgent: Yes.\nCaller: When?\nAgent:")


@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="optional llama extra not installed"
)
async def test_gemma_streams_one_line():
    from voipbin.ai.registry import ModelLocations, create_llm, parse_engine_model
    from voipbin.config import Settings

    models = ModelLocations.from_settings(Settings())
    try:
        parse_engine_model("offline.gemma3-270m", models)
    except ValueError as exc:
        pytest.skip(str(exc))
    llm = create_llm("offline.gemma3-270m", None, timeout=30.0, models=models)
    events = [e async for e in llm.stream([Message.user("Are you open on Sunday?")], max_tokens=32)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text and "\n" not in text
    assert isinstance(events[-1], Usage) and events[-1].output_tokens > 0
