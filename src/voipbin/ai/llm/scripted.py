"""``offline.scripted``: a deterministic rule-table responder for tests and demos.

It is not a language model. It answers the last caller utterance from a small table of
regular expressions (greeting, opening hours, thanks, goodbye...), echoes anything else back
("You said: ..."), calls ``stop_service`` when the caller says goodbye and that tool is offered,
and produces an extractive "summary" when asked to summarise. Same input, same output, always:
which is what unit tests, end-to-end call tests and an offline ``make serve`` demo need.
It streams word by word through the same :class:`LLM` interface as the real adapters, so
everything downstream (TTS, barge-in, cancellation) is exercised for real.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from .base import DEFAULT_TIMEOUT, LLM, LLMEvent, Message, Progress, TextDelta, Tool, ToolCallEvent, Usage

GREETING = "Hello! How can I help you today?"


@dataclass(frozen=True)
class Rule:
    pattern: str  # case-insensitive regex searched in the caller's last utterance
    reply: str
    tool: str | None = None  # tool to call as well, when the conversation offers it


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(r"\b(good ?bye|bye|hang up|that'?s all)\b", "Goodbye! Have a nice day.", tool="stop_service"),
    Rule(r"\b(thank you|thanks)\b", "You're welcome! Is there anything else I can help with?"),
    Rule(r"\b(open|opening hours|hours)\b", "We are open from nine to five, Monday to Friday."),
    Rule(r"\b(agent|human|operator|person)\b", "I will connect you to a person now."),
    Rule(r"\b(who are you|your name)\b", "I am the voipbin assistant."),
    Rule(r"^\W*(hello|hi|hey|good (morning|afternoon|evening))\b", GREETING),
)


class ScriptedLLM(LLM):
    def __init__(
        self,
        rules: Sequence[Rule] = DEFAULT_RULES,
        *,
        token_delay: float = 0.0,
        timeout: float = DEFAULT_TIMEOUT,
        idle_timeout: float | None = None,
    ) -> None:
        super().__init__("offline", "scripted", timeout=timeout, idle_timeout=idle_timeout)
        self.rules = tuple(rules)
        self.token_delay = token_delay

    def respond(self, messages: Sequence[Message], tools: Sequence[Tool] = ()) -> tuple[str, str | None]:
        """The (text, tool name or None) the engine answers with. Pure function of its input."""
        users = [m.content for m in messages if m.role == "user" and m.content.strip()]
        systems = " ".join(m.content for m in messages if m.role == "system")
        last = messages[-1] if messages else None
        if _wants_summary(systems, users[-1] if users else ""):
            return _summary(messages), None
        if last is not None and last.role == "tool":
            return "Okay, that's done.", None
        if not users:
            return GREETING, None
        said = users[-1].strip()
        offered = {t.name for t in tools}
        for rule in self.rules:
            if re.search(rule.pattern, said, re.IGNORECASE):
                return rule.reply, rule.tool if rule.tool in offered else None
        return f"You said: {said.rstrip('.!?')}.", None

    async def _stream(
        self,
        messages: list[Message],
        tools: list[Tool],
        *,
        temperature: float | None,
        max_tokens: int | None,
    ) -> AsyncGenerator[LLMEvent | Progress, None]:
        text, tool = self.respond(messages, tools)
        words = re.findall(r"\S+\s*", text)
        if max_tokens is not None:
            words = words[:max_tokens]
        for index, word in enumerate(words):
            # Yield to the loop between tokens so cancellation and barge-in behave as with a real model.
            await asyncio.sleep(self.token_delay if index else 0)
            yield TextDelta(word if index < len(words) - 1 else word.rstrip())
        turn = sum(1 for m in messages if m.role == "assistant")
        if tool is not None:
            yield ToolCallEvent(f"call_scripted_{turn}", tool, "{}")
        prompt_words = sum(len(m.content.split()) for m in messages)
        stop = (
            "tool_calls"
            if tool
            else ("length" if max_tokens is not None and len(words) < len(text.split()) else "stop")
        )
        yield Usage(
            input_tokens=prompt_words, cached_input_tokens=0, output_tokens=len(words), stop_reason=stop
        )


def _wants_summary(system: str, last_user: str) -> bool:
    return bool(re.search(r"summari[sz]", system, re.I) or re.search(r"summari[sz]", last_user, re.I))


def _summary(messages: Sequence[Message], limit: int = 400) -> str:
    """Extractive: the conversation's user/assistant lines, in order, trimmed to ``limit`` characters."""
    lines = [m.content.strip() for m in messages if m.role in ("user", "assistant") and m.content.strip()]
    lines = [line for line in lines if not re.search(r"summari[sz]e", line, re.I) or len(lines) == 1]
    body = " ".join(lines)
    if len(body) > limit:
        body = body[: limit - 3].rstrip() + "..."
    return f"Summary: {body}" if body else "Summary: nothing was said."
