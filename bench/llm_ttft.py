"""LLM time-to-first-token and tokens/s: our overhead, measured side by side in one run.

For each cloud adapter (openai / anthropic / gemini) it streams the same scripted reply from the
local fake provider server (tests/fakeproviders, 127.0.0.1, no artificial delay) twice: through
the raw official SDK, and through our adapter (LLM.stream: message mapping, event assembly, the
first-token/stall timers). The ratio adapter/raw is our overhead; absolute numbers are dominated
by loopback HTTP + SDK parsing, and the fake server shares the event loop, so its rendering
cost is in every number (equally for raw and adapter). Also measures the offline scripted
engine and, when the optional llama extra is installed, llama.cpp gemma3-270m.

    .venv/bin/python bench/llm_ttft.py [--runs 40] [--tokens 200]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from anthropic import AsyncAnthropic  # noqa: E402
from google import genai  # noqa: E402
from google.genai import types  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402

from fakeproviders.llm_anthropic import FakeAnthropic  # noqa: E402
from fakeproviders.llm_gemini import FakeGemini  # noqa: E402
from fakeproviders.llm_openai import FakeOpenAI  # noqa: E402
from fakeproviders.llm_server import Reply  # noqa: E402
from voipbin.ai.llm.anthropic_llm import AnthropicLLM  # noqa: E402
from voipbin.ai.llm.base import LLM, Message, TextDelta  # noqa: E402
from voipbin.ai.llm.gemini_llm import GeminiLLM  # noqa: E402
from voipbin.ai.llm.openai_compat import OpenAICompatLLM  # noqa: E402
from voipbin.ai.llm.scripted import Rule, ScriptedLLM  # noqa: E402

MESSAGES = [
    Message.system("You are a helpful phone agent."),
    Message.user("Tell me about your opening hours."),
]


async def measure(run: Callable[[], AsyncIterator[str]], runs: int) -> tuple[float, float, int]:
    """Median TTFT (ms), median tokens/s after the first token, tokens per run."""
    ttfts, rates, count = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        first = None
        count = 0
        async for _text in run():
            count += 1
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        assert first is not None
        ttfts.append((first - start) * 1000)
        rates.append((count - 1) / (end - first) if end > first else float("inf"))
    return statistics.median(ttfts), statistics.median(rates), count


def via_adapter(llm: LLM) -> Callable[[], AsyncIterator[str]]:
    async def run() -> AsyncIterator[str]:
        async for event in llm.stream(MESSAGES):
            if isinstance(event, TextDelta):
                yield event.text

    return run


async def bench_cloud(runs: int, tokens: int) -> list[tuple[str, float, float, int]]:
    rows: list[tuple[str, float, float, int]] = []
    reply = Reply(text=[f" tok{i}" for i in range(tokens)])
    oai_msgs = [
        {"role": "system", "content": MESSAGES[0].content},
        {"role": "user", "content": MESSAGES[1].content},
    ]

    async with FakeOpenAI() as fake:
        fake.default = reply
        raw = AsyncOpenAI(api_key="k", base_url=fake.base_url + "/v1", max_retries=0)

        async def raw_openai() -> AsyncIterator[str]:
            stream = await raw.chat.completions.create(
                model="m", messages=oai_msgs, stream=True, stream_options={"include_usage": True}
            )
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content

        ours = OpenAICompatLLM("openai", "m", api_key="k", base_url=fake.base_url + "/v1")
        await measure(raw_openai, 3)  # warm up imports / first connection
        rows.append(("openai raw SDK", *await measure(raw_openai, runs)))
        rows.append(("openai adapter", *await measure(via_adapter(ours), runs)))
        await raw.close()
        await ours.aclose()

    async with FakeAnthropic() as fake:
        fake.default = reply
        raw_a = AsyncAnthropic(api_key="k", base_url=fake.base_url, max_retries=0)

        async def raw_anthropic() -> AsyncIterator[str]:
            stream = await raw_a.messages.create(
                model="m", max_tokens=1024, system=MESSAGES[0].content, messages=oai_msgs[1:], stream=True
            )
            async for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield event.delta.text

        ours_a = AnthropicLLM("m", api_key="k", base_url=fake.base_url)
        await measure(raw_anthropic, 3)
        rows.append(("anthropic raw SDK", *await measure(raw_anthropic, runs)))
        rows.append(("anthropic adapter", *await measure(via_adapter(ours_a), runs)))
        await raw_a.close()
        await ours_a.aclose()

    async with FakeGemini() as fake:
        fake.default = reply
        raw_g = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url))

        async def raw_gemini() -> AsyncIterator[str]:
            stream = await raw_g.aio.models.generate_content_stream(
                model="m",
                contents=MESSAGES[1].content,
                config=types.GenerateContentConfig(system_instruction=MESSAGES[0].content),
            )
            async for chunk in stream:
                if chunk.text:
                    yield chunk.text

        ours_g = GeminiLLM("m", api_key="k", base_url=fake.base_url)
        await measure(raw_gemini, 3)
        rows.append(("gemini raw SDK", *await measure(raw_gemini, runs)))
        rows.append(("gemini adapter", *await measure(via_adapter(ours_g), runs)))
        await raw_g.aio.aclose()
        await ours_g.aclose()
    return rows


async def bench_offline(runs: int, tokens: int) -> list[tuple[str, float, float, int]]:
    rows = []
    scripted = ScriptedLLM([Rule(".", " ".join(f"tok{i}" for i in range(tokens)))])
    rows.append(("offline.scripted", *await measure(via_adapter(scripted), runs)))
    if importlib.util.find_spec("llama_cpp") is not None:
        from voipbin.ai.registry import create_llm

        try:
            llama = create_llm("offline.gemma3-270m", None, timeout=60.0)
        except ValueError as exc:
            print(f"llama.cpp skipped: {exc}")
        else:
            await measure(via_adapter(llama), 1)  # load the model
            rows.append(("offline.gemma3-270m (llama.cpp)", *await measure(via_adapter(llama), 5)))
    else:
        print("llama.cpp: not installed (optional 'llama' extra), skipped")
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, Python {platform.python_version()}, {platform.system()}")
    rows = await bench_cloud(args.runs, args.tokens) + await bench_offline(args.runs, args.tokens)
    print(f"{'engine':34} {'TTFT ms (median)':>17} {'tokens/s':>10} {'tokens':>7}")
    for name, ttft, rate, count in rows:
        print(f"{name:34} {ttft:17.2f} {rate:10.0f} {count:7d}")
    by_name = {name: (ttft, rate) for name, ttft, rate, _ in rows}
    for provider in ("openai", "anthropic", "gemini"):
        raw, ours = by_name[f"{provider} raw SDK"], by_name[f"{provider} adapter"]
        print(
            f"{provider}: adapter/raw TTFT ratio {ours[0] / raw[0]:.2f}, "
            f"adapter/raw throughput ratio {ours[1] / raw[1]:.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
