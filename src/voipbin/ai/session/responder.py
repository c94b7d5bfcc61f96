"""One assistant turn: LLM text stream -> TTS (which cuts it into clauses) -> playout, all streaming.

The first clause is being synthesised while the model is still writing, and its audio is played
while later clauses are synthesised. Cancelling :meth:`Responder.run` (barge-in, hangup) closes the
LLM stream (its HTTP request), cancels synthesis and stops feeding playout; whatever was generated
so far stays in :attr:`Responder.reply` so the conversation history shows what was said.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from voipbin.ai.llm.base import LLM, Message, TextDelta, Tool, ToolCall, ToolCallEvent
from voipbin.flow.interfaces import CallAudio
from voipbin.speech.tts import TTS


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    started_at: float = 0.0
    first_audio_at: float | None = None
    played: bool = False  # played to the end (not flushed)
    interrupted: bool = False


class Responder:
    def __init__(self, llm: LLM, make_tts: Callable[[], TTS], audio: CallAudio) -> None:
        self.llm = llm
        self.make_tts = make_tts
        self.audio = audio
        self.reply = Reply()

    async def run(
        self, messages: Sequence[Message], tools: Sequence[Tool], *, text: str | None = None
    ) -> Reply:
        """Answer ``messages`` (or just say ``text``); returns once the audio has been played."""
        loop = asyncio.get_running_loop()
        reply = self.reply = Reply(started_at=loop.time())
        tts = self.make_tts()
        play = asyncio.ensure_future(self.audio.play_stream(self._timed(tts, reply), tts.sample_rate))
        try:
            if text is not None:
                reply.text = text
                await tts.feed(text)
            else:
                async for event in self.llm.stream(messages, tools):
                    if isinstance(event, TextDelta) and event.text:
                        reply.text += event.text
                        await tts.feed(event.text)
                    elif isinstance(event, ToolCallEvent):
                        reply.tool_calls.append(event.tool_call)
                    if play.done():  # playout failed (hangup): stop generating
                        break
            await tts.end()
            reply.played = await play
            return reply
        finally:
            tts.cancel()
            if not play.done():
                play.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await play
            await tts.aclose()

    @staticmethod
    async def _timed(tts: TTS, reply: Reply) -> AsyncIterator[bytes]:
        async for chunk in tts:
            if reply.first_audio_at is None and chunk:
                reply.first_audio_at = asyncio.get_running_loop().time()
            yield chunk
