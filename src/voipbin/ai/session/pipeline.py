"""``AISession``: one AI voice conversation on a call — the one place its processors are wired.

    call audio ──> Listener ──(VAD start/stop, STT finals)──> TurnTaker ──> Responder
                   (VAD + STT)                                 (turns,       (LLM -> TTS clauses
                                                                barge-in)     -> play_stream)

Every part runs as its own task and is cancellable; the session loop reads one event queue and
decides. ``barge_in=True`` (``ai_talk``): when the caller starts speaking while the assistant
answers, playout is flushed and the LLM/TTS are cancelled at once. ``barge_in=False`` (``ai``):
request/response; what the caller says meanwhile is answered afterwards.

The session ends when the call hangs up (:class:`CallHungUp`), the model calls ``stop_service``
("stop_service": the flow continues) or ``stop_flow`` ("stop_flow"), or after ``duration`` seconds
("duration"). LLM and speech failures propagate (the action fails loudly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field

from voipbin.ai.llm.base import LLM, Message
from voipbin.flow.interfaces import CallAudio, CallHungUp
from voipbin.speech.registry import create_stt, create_tts
from voipbin.speech.stt import STT
from voipbin.speech.tts import TTS

from .config import SessionConfig
from .listener import InputEnded, Listener, SpeechStarted, SpeechStopped, Transcript
from .prompts import system_messages
from .record import AICallRecord
from .responder import Reply, Responder
from .tools import offered_tools, run_tool
from .turns import TurnTaker, turn_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _ReplyDone:
    reply: Reply
    error: BaseException | None = None


@dataclass
class BargeIn:
    speech_at: float  # when the caller's voice began
    detected_at: float  # when the VAD said so (start_secs later)
    done_at: float  # playout flushed and generation cancelled
    dropped_frames: int


@dataclass
class SessionMetrics:
    turn_latencies: list[float] = field(default_factory=list)  # caller quiet -> first AI audio (s)
    barge_ins: list[BargeIn] = field(default_factory=list)

    def to_metadata(self) -> dict[str, object]:
        return {
            "turn_latency_ms": [round(t * 1000) for t in self.turn_latencies],
            "barge_ins": [
                {
                    "detect_ms": round((b.detected_at - b.speech_at) * 1000),
                    "reaction_ms": round((b.done_at - b.detected_at) * 1000),
                    "dropped_frames": b.dropped_frames,
                }
                for b in self.barge_ins
            ],
        }


class AISession:
    def __init__(
        self,
        audio: CallAudio,
        cfg: SessionConfig,
        llm: LLM,
        record: AICallRecord,
        variables: MutableMapping[str, str],
        *,
        barge_in: bool,
        duration: float = 0.0,
    ) -> None:
        self.audio = audio
        self.cfg = cfg
        self.llm = llm
        self.record = record
        self.variables = variables
        self.duration = duration
        self.turns = TurnTaker(barge_in=barge_in)
        self.tools = offered_tools(cfg.tool_names)
        self.history: list[Message] = system_messages(cfg)
        self.metrics = SessionMetrics()
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._responder = Responder(llm, self.make_tts, audio)
        self._reply_task: asyncio.Task[None] | None = None
        self._last_quiet: float | None = None
        self._listener: Listener | None = None
        self._heard_language: str | None = None

    # -- parts -------------------------------------------------------------------------------------
    def make_tts(self) -> TTS:
        c = self.cfg
        return create_tts(
            c.tts_type,
            voice_id=c.tts_voice_id or None,
            language=c.language or self._heard_language or None,  # none configured: answer in the caller's
            sample_rate=8000,
            voice_type=c.voice_type or None,
            variables=self.variables,
        )

    def make_stt(self) -> STT:
        return create_stt(self.cfg.stt_type, language=self.cfg.stt_language or None, sample_rate=8000)

    # -- the loop ----------------------------------------------------------------------------------
    async def run(self) -> str:
        """Converse until the session ends; returns why ("stop_service", "stop_flow", "duration")."""
        loop = asyncio.get_running_loop()
        stt = self.make_stt()
        listener = self._listener = Listener(
            self.audio,
            stt,
            self.cfg.vad,
            self._events,
            turn=turn_config(smart_turn=self.cfg.smart_turn, vad=self.cfg.vad),
            language=self.cfg.stt_language or self.cfg.language,
        )
        tasks = [
            asyncio.create_task(listener.listen(), name="ai-listen"),
            asyncio.create_task(listener.transcripts(), name="ai-stt"),
        ]
        for message in self.history:
            self.record.add_message("system", message.content)
        self.record.set_status("progressing")
        deadline = loop.time() + self.duration if self.duration > 0 else None
        try:
            if self.cfg.greeting:
                text = self.cfg.greeting if isinstance(self.cfg.greeting, str) else None
                self._start_reply(text=text)
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await self._events.get()
                except TimeoutError:
                    return "duration"
                ended = await self._handle(event)
                if ended:
                    return ended
        finally:
            await self._cancel_reply()
            for t in tasks:
                t.cancel()
            stt.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.record.metadata.update(self.metrics.to_metadata())
            self.record.set_status("terminated")

    async def _handle(self, event: object) -> str | None:
        turns = self.turns
        if isinstance(event, SpeechStarted):
            if turns.speech_started():
                await self._barge_in(event.at)
        elif isinstance(event, SpeechStopped):
            self._last_quiet = event.at
            self._start_turn(turns.speech_stopped())
        elif isinstance(event, Transcript):
            self._heard_language = event.language or self._heard_language
            self._start_turn(turns.transcript(event.text))
        elif isinstance(event, _ReplyDone):
            return self._finish_reply(event)
        elif isinstance(event, InputEnded):
            if event.error is None or isinstance(event.error, CallHungUp):
                raise event.error or CallHungUp("call audio ended")
            raise event.error
        return None

    # -- turns -------------------------------------------------------------------------------------
    def _start_turn(self, text: str | None) -> None:
        if not text:
            return
        self.history.append(Message.user(text))
        self.record.add_message("user", text)
        self._start_reply()

    def _start_reply(self, *, text: str | None = None) -> None:
        self.turns.bot_started()
        quiet_at = self._last_quiet

        async def respond() -> None:
            try:
                reply = await self._responder.run(list(self.history), self.tools, text=text)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # reported to the loop, which fails the session
                self._events.put_nowait(_ReplyDone(self._responder.reply, exc))
                return
            if quiet_at is not None and reply.first_audio_at is not None:
                self.metrics.turn_latencies.append(reply.first_audio_at - quiet_at)
            self._events.put_nowait(_ReplyDone(reply))

        self._reply_task = asyncio.create_task(respond(), name="ai-respond")

    def _remember(self, reply: Reply) -> None:
        if self._listener is not None and reply.text:  # the turn detector weighs answers by the question
            self._listener.set_question(reply.text)
        if reply.text or reply.tool_calls:
            self.history.append(Message.assistant(reply.text, reply.tool_calls))
            self.record.add_message("assistant", reply.text, tool_calls=tuple(reply.tool_calls))

    def _finish_reply(self, done: _ReplyDone) -> str | None:
        self._reply_task = None
        if done.error is not None:
            raise done.error
        reply = done.reply
        self._remember(reply)
        end: str | None = None
        follow_up = False
        for call in reply.tool_calls:
            result = run_tool(call, self.variables, self.audio.flush_playout)
            self.history.append(Message.tool(call.id, result.content))
            self.record.add_message("tool", result.content, tool_call_id=call.id)
            end = end or result.end
            follow_up = follow_up or result.run_llm
        if end:
            return end
        if follow_up:
            self._start_reply()
            return None
        self._start_turn(self.turns.bot_stopped())
        return None

    async def _barge_in(self, speech_at: float) -> None:
        task = self._reply_task
        if task is None or task.done():
            return  # the answer is complete; its result is already queued and handled next
        loop = asyncio.get_running_loop()
        detected = loop.time()
        dropped = self.audio.flush_playout()  # silence from the next frame on, before anything else
        reply = self._responder.reply
        await self._cancel_reply()
        reply.interrupted = True
        self._remember(reply)
        self.metrics.barge_ins.append(BargeIn(speech_at, detected, loop.time(), dropped))
        self.turns.bot_stopped()  # the caller is speaking, so this commits nothing

    async def _cancel_reply(self) -> None:
        task, self._reply_task = self._reply_task, None
        if task is not None and not task.done():
            task.cancel()  # a cancelled reply posts nothing to the queue
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
