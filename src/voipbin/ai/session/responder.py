"""One assistant turn: LLM text stream -> TTS (which cuts it into clauses) -> playout, all streaming.

The model's request goes out first: the TTS connects, and the turn's bookkeeping (``on_sent``) runs,
once it is written. The first clause is being synthesised while the model is still writing (it goes
to the TTS as soon as it is speakable), and its audio is played while later clauses are synthesised.
Cancelling :meth:`Responder.run` (barge-in, hangup) closes the LLM stream (its HTTP request),
cancels synthesis and stops feeding playout; whatever was generated so far stays in
:attr:`Responder.reply` so the conversation history shows what was said.

Faults never leave the caller in silence: a failing model is retried (429 / 5xx / dropped / stalled
streams, honouring ``retry-after``) while the turn's budget lasts, then the next engine of ``llms``
(the configured fallback) is tried; when none answers, :attr:`Reply.failed` is set and the session
apologises and ends. A TTS that fails before its first audio is replaced by the next of ``tts_chain``
(the same engine with its default voice when the voice was rejected, then the fallback engine) and
the text so far is spoken again by it. Every failure is kept in :attr:`Reply.errors`.

The reply records its own timings (loop time): first token, first audio from TTS, first chunk taken
handed to the playout (the media clock sends it within one 20 ms frame), and the usage of the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from voipbin.ai.llm.base import (
    LLM,
    LLMConnectionError,
    LLMError,
    LLMRateLimited,
    LLMServerError,
    LLMTimeout,
    Message,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallEvent,
    Usage,
)
from voipbin.ai.llm.sent import call_once
from voipbin.flow.interfaces import CallAudio
from voipbin.speech.errors import SpeechConfigError, SpeechError
from voipbin.speech.tts import TTS

log = logging.getLogger(__name__)

RETRYABLE = (LLMRateLimited, LLMServerError, LLMConnectionError, LLMTimeout)
RETRY_BASE = 0.25  # seconds before the first retry; doubled each time
FRAME_BYTES = 320  # one 20 ms frame of 8 kHz PCM16


@dataclass(frozen=True)
class TtsChoice:
    """One way to speak: a factory and what to call it in the records (``piper``, ``elevenlabs``)."""

    name: str
    make: Callable[[], TTS]
    warning: str = ""  # recorded when this choice is taken over an earlier one (e.g. default voice)


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    started_at: float = 0.0
    first_token_at: float | None = None
    first_audio_at: float | None = None  # the TTS produced its first audio
    first_out_at: float | None = None  # the playout took the first chunk
    played: bool = False  # played to the end (not flushed)
    interrupted: bool = False
    interrupted_at: float | None = None
    usage: Usage | None = None
    llm: str = ""  # engine_model that answered
    tts: str = ""  # tts engine that spoke
    tts_chars: int = 0
    produced_bytes: int = 0  # audio the TTS produced
    out_bytes: int = 0  # audio handed to the playout
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: bool = False  # no engine could answer: the session apologises and ends


class Responder:
    def __init__(
        self,
        llm: LLM | Sequence[LLM],
        make_tts: Callable[[], TTS] | Sequence[TtsChoice],
        audio: CallAudio,
        *,
        budget: float = 10.0,
        on_delta: Callable[[str], None] | None = None,
    ) -> None:
        self.llms: list[LLM] = [llm] if isinstance(llm, LLM) else list(llm)
        self.tts_chain: list[TtsChoice] = [TtsChoice("", make_tts)] if callable(make_tts) else list(make_tts)
        self.audio = audio
        self.budget = budget
        self.on_delta = on_delta
        self.reply = Reply()
        self._tts_index = 0

    @property
    def llm(self) -> LLM:
        return self.llms[0]

    async def run(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        *,
        text: str | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Reply:
        """Answer ``messages`` (or just say ``text``); returns once the audio has been played.

        ``on_sent`` (the turn's bookkeeping) runs once the model's request is out, so nothing but
        the request itself stands between the caller's turn and the model; at the latest when
        this returns or fails."""
        loop = asyncio.get_running_loop()
        reply = self.reply = Reply(started_at=loop.time())
        speaker = _Speaker(self, reply)

        def request_out() -> None:
            speaker.start()
            if on_sent is not None:
                on_sent()

        sent = call_once(request_out)
        try:
            # The TTS is made now (a voice it refuses gives way to the next choice at once) but
            # connects once the model's request is out: its handshake never delays the request.
            speaker.open(start=False)
            try:
                if text is not None:
                    sent()
                    reply.text = text
                    await speaker.feed(text)
                else:
                    await self._generate(messages, tools, reply, speaker, sent)
                await speaker.finish()
                return reply
            finally:
                await speaker.close()
        finally:
            sent()

    async def _generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        reply: Reply,
        speaker: _Speaker,
        on_sent: Callable[[], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        share = self.budget / len(self.llms)  # each engine (primary, fallback) has its share of the budget
        for index, llm in enumerate(self.llms):
            deadline = max(reply.started_at + share * (index + 1), loop.time() + min(share, 2.0))
            attempt = 0
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        async for event in llm.stream(messages, tools, on_sent=on_sent):
                            if isinstance(event, TextDelta) and event.text:
                                if reply.first_token_at is None:
                                    reply.first_token_at = loop.time()
                                reply.text += event.text
                                await speaker.feed(event.text)  # the words to the TTS first
                                if self.on_delta is not None:
                                    self.on_delta(event.text)
                            elif isinstance(event, ToolCallEvent):
                                if reply.first_token_at is None:
                                    reply.first_token_at = loop.time()
                                reply.tool_calls.append(event.tool_call)
                            elif isinstance(event, Usage):
                                reply.usage = event
                            if speaker.hung_up:  # playout failed (hangup): stop generating
                                break
                    reply.llm = llm.engine_model
                    return
                except (LLMError, TimeoutError) as exc:
                    if isinstance(exc, TimeoutError):
                        exc = LLMTimeout(f"{llm.engine_model}: the turn's budget ({self.budget:g}s) ran out")
                    reply.errors.append(f"{llm.engine_model}: {exc}")
                    log.warning("AI engine %s failed (attempt %d): %s", llm.engine_model, attempt + 1, exc)
                    if reply.text or reply.tool_calls:  # part of the answer is out: keep it, no retry
                        reply.llm = llm.engine_model
                        return
                    wait = RETRY_BASE * 2**attempt
                    if isinstance(exc, LLMRateLimited) and exc.retry_after is not None:
                        wait = max(wait, exc.retry_after)
                    attempt += 1
                    # Retry while the budget leaves room for the wait and another first-token deadline.
                    if isinstance(exc, RETRYABLE) and loop.time() + wait + 1.0 < deadline:
                        await asyncio.sleep(wait)
                        continue
                    break  # next engine
        reply.failed = True


class _Speaker:
    """The TTS + playout of one reply, switching to the next TTS choice when one fails silently."""

    def __init__(self, responder: Responder, reply: Reply) -> None:
        self.r = responder
        self.reply = reply
        self.tts: TTS | None = None
        self.play: asyncio.Future[bool] | None = None
        self.fed = ""
        self.closed = False
        # A TTS failure is kept here, not passed through the playout: how an audio sink reports a
        # failing source is its business, the fallback decision is ours.
        self.tts_error: SpeechError | None = None

    @property
    def hung_up(self) -> bool:
        """The playout ended with an error (the call hung up): stop generating."""
        play = self.play
        return play is not None and play.done() and not play.cancelled() and play.exception() is not None

    def open(self, *, start: bool = True) -> None:
        """Make the current TTS choice and (``start``) its stream into the playout; one the engine
        refuses at once (an unknown voice) gives way to the next choice."""
        r = self.r
        self.closed = False
        while True:
            choice = r.tts_chain[min(r._tts_index, len(r.tts_chain) - 1)]
            try:
                self.tts = choice.make()
                break
            except (SpeechConfigError, SpeechError) as exc:
                if r._tts_index + 1 >= len(r.tts_chain):
                    raise
                r._tts_index += 1
                self.reply.warnings.append(f"{r.tts_chain[r._tts_index].warning}: {exc}")
        self.reply.tts = choice.name
        if start:
            self.start()

    def start(self) -> None:
        """Start synthesis (the engine connects) and its stream into the playout, once (never
        after :meth:`close`: a reply that ended before its request went out plays nothing)."""
        if self.play is None and self.tts is not None and not self.closed:
            self.play = asyncio.ensure_future(
                self.r.audio.play_stream(self._timed(self.tts), self.tts.sample_rate)
            )

    async def feed(self, text: str) -> None:
        self.start()
        self.fed += text
        self.reply.tts_chars += len(text)
        assert self.tts is not None
        try:
            await self.tts.feed(text)
        except SpeechError as exc:
            self.tts_error = exc
        if self.tts_error is not None:
            await self._switch(self.tts_error)

    async def finish(self) -> None:
        self.start()
        while True:
            assert self.tts is not None and self.play is not None
            try:
                await self.tts.end()
            except SpeechError as exc:
                self.tts_error = exc
            if self.tts_error is None:
                self.reply.played = await self.play
                if self.tts_error is None:
                    return
            await self._switch(self.tts_error)

    async def _switch(self, exc: SpeechError) -> None:
        """The TTS failed: if nothing was heard yet, speak everything so far with the next choice."""
        self.reply.errors.append(f"tts {self.reply.tts}: {exc}")
        r = self.r
        if self.reply.produced_bytes > 0 or r._tts_index + 1 >= len(r.tts_chain):
            raise exc
        await self.close()
        self.tts_error = None
        r._tts_index += 1  # later turns start with the choice that works
        choice = r.tts_chain[r._tts_index]
        if choice.warning:
            self.reply.warnings.append(choice.warning)
        self.open()
        assert self.tts is not None
        if self.fed:
            await self.tts.feed(self.fed)

    async def close(self) -> None:
        tts, play = self.tts, self.play
        self.play, self.closed = None, True  # a next choice (open) starts its own
        if tts is not None:
            tts.cancel()
        if play is not None:
            if not play.done():
                play.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await play
        if tts is not None:
            await tts.aclose()

    async def _timed(self, tts: TTS) -> AsyncIterator[bytes]:
        reply = self.reply
        loop = asyncio.get_running_loop()
        try:
            async for chunk in tts:
                if not chunk:
                    continue
                if reply.first_audio_at is None:
                    reply.first_audio_at = loop.time()
                reply.produced_bytes += len(chunk)
                reply.out_bytes += len(chunk)
                if reply.first_out_at is None:
                    reply.first_out_at = loop.time()  # handed to the playout: sent on its next frame
                yield chunk
        except SpeechError as exc:
            self.tts_error = exc  # ends this stream normally; finish() decides
