"""``AISession``: one AI voice conversation on a call — the one place its processors are wired.

    call audio ──> Listener ──(VAD start/stop, STT finals)──> TurnTaker ──> Responder
                   (VAD + STT)                                 (turns,       (LLM -> TTS clauses
                                                                barge-in)     -> play_stream)

Every part runs as its own task and is cancellable; the session loop reads one event queue and
decides. ``barge_in=True`` (``ai_talk``): when the caller starts speaking while the assistant
answers, playout is flushed and the LLM/TTS are cancelled at once. ``barge_in=False`` (``ai``):
request/response; what the caller says meanwhile is answered afterwards.

The same queue carries the operator's controls (:class:`~voipbin.ai.calls.Terminate` from ``POST
/aicalls/{id}/terminate``, :class:`~voipbin.ai.calls.Inject` from ``POST /aimessages``).

The session ends when the call hangs up (:class:`CallHungUp`), the model calls ``stop_service``
("stop_service": the flow continues), ``stop_flow`` ("stop_flow") or ``connect_call`` ("connect_call":
:attr:`AISession.connect` says where), after ``duration`` seconds ("duration"), on terminate
("terminated"), when no engine answers ("error": the caller hears the apology first) or when the
account runs dry ("insufficient_balance": a spoken notice first). Every turn is recorded on its
assistant message (:func:`turn_record`) and summed on the aicall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voipbin.ai.calls import AICallRecord, Inject, Terminate
from voipbin.ai.llm.base import LLM, Message
from voipbin.flow.interfaces import CallAudio, CallHungUp
from voipbin.speech.registry import create_stt, create_tts
from voipbin.speech.stt import STT
from voipbin.speech.tts import TTS

from .config import SessionConfig
from .listener import InputEnded, Listener, SpeechStarted, SpeechStopped, Transcript
from .prompts import system_messages
from .responder import FRAME_BYTES, Reply, Responder, TtsChoice
from .tools import ToolContext, offered_tools, run_tool
from .turns import TurnTaker, turn_config

log = logging.getLogger(__name__)

SPEECH_CHARS_PER_SECOND = 15.0  # typical TTS speaking rate, for what was heard before a barge-in
APOLOGY_LIMIT = 20.0  # seconds the apology / notice may take (a bound against hangs only)


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


@dataclass
class _Turn:
    """What is known of the caller's side of the turn an answer responds to (loop times)."""

    speech_end_at: float | None = None
    stt_final_at: float | None = None


def _ms(at: float | None, origin: float | None) -> int | None:
    return None if at is None or origin is None else round((at - origin) * 1000)


def turn_record(reply: Reply, turn: _Turn, *, dropped_frames: int = 0) -> dict[str, Any]:
    """One assistant message's timings (ms from the caller's speech end, or from the reply's start when
    the caller said nothing, e.g. a greeting), what was heard, and the turn's usage. This is the one
    place turn latency per stage and provider errors are kept (a metrics histogram reads them here)."""
    origin = turn.speech_end_at if turn.speech_end_at is not None else reply.started_at
    spoken = reply.text
    if reply.interrupted:
        out = max(0, reply.out_bytes - dropped_frames * FRAME_BYTES)
        heard_seconds = out / (2 * 8000)
        share = out / reply.produced_bytes if reply.produced_bytes else 0.0
        chars = min(round(len(reply.text) * share), round(heard_seconds * SPEECH_CHARS_PER_SECOND))
        spoken = reply.text[:chars]
        if chars < len(reply.text) and " " in spoken:
            spoken = spoken.rsplit(" ", 1)[0]
    usage = reply.usage
    record: dict[str, Any] = {
        "origin": "caller_speech_end" if turn.speech_end_at is not None else "reply_start",
        "stt_final_ms": _ms(turn.stt_final_at, origin),
        "reply_start_ms": _ms(reply.started_at, origin),
        "llm_first_token_ms": _ms(reply.first_token_at, origin),
        "tts_first_audio_ms": _ms(reply.first_audio_at, origin),
        "first_audio_out_ms": _ms(reply.first_out_at, origin),
        "interrupted": reply.interrupted,
        "interrupted_ms": _ms(reply.interrupted_at, origin) if reply.interrupted else None,
        "spoken_text": spoken,
        "llm": reply.llm,
        "tts": reply.tts,
        "usage": {
            "input_tokens": usage.input_tokens if usage else 0,
            "cached_input_tokens": usage.cached_input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0,
            "tts_characters": len(spoken) if reply.interrupted else reply.tts_chars,
        },
    }
    if reply.errors:
        record["errors"] = list(reply.errors)
    if reply.warnings:
        record["warnings"] = list(reply.warnings)
    return record


class AISession:
    def __init__(
        self,
        audio: CallAudio,
        cfg: SessionConfig,
        llm: LLM | Sequence[LLM],
        record: AICallRecord,
        variables: MutableMapping[str, str],
        *,
        barge_in: bool,
        duration: float = 0.0,
        tools: ToolContext | None = None,
        budget: float = 10.0,
        fallback_tts_type: str = "",
        fallback_stt_type: str = "",
        apology: str = "",
        balance_notice: str = "",
        credit_left: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.audio = audio
        self.cfg = cfg
        self.llms = [llm] if isinstance(llm, LLM) else list(llm)
        self.llm = self.llms[0]
        self.record = record
        self.variables = variables
        self.duration = duration
        self.turns = TurnTaker(barge_in=barge_in)
        self.tools = offered_tools(cfg.tool_names)
        self.tool_ctx = tools or ToolContext(
            record.customer_id, record.id, record.row.activeflow_id, record.row.reference_id,
            variables, audio.flush_playout,
        )  # fmt: skip
        self.history: list[Message] = system_messages(cfg)
        self.metrics = SessionMetrics()
        self.fallback_stt_type = fallback_stt_type
        self.apology = apology
        self.balance_notice = balance_notice
        self.credit_left = credit_left
        self.connect: dict[str, Any] | None = None  # set when the session ends with connect_call
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._responder = Responder(
            self.llms,
            self._tts_chain(fallback_tts_type),
            audio,
            budget=budget,
            on_delta=lambda d: record.intermediate("assistant", d),
        )
        self._reply_task: asyncio.Task[None] | None = None
        self._reply_turn = _Turn()
        self._reply_injected = False
        self._last_quiet: float | None = None
        self._last_final: float | None = None
        self._spoken_queue: list[str] = []  # injected assistant messages waiting for the current reply
        self._listener: Listener | None = None
        self._heard_language: str | None = None

    # -- parts -------------------------------------------------------------------------------------
    def make_tts(self, tts_type: str | None = None, voice_id: str | None = "") -> TTS:
        c = self.cfg
        return create_tts(
            tts_type or c.tts_type,
            voice_id=(c.tts_voice_id if voice_id == "" else voice_id) or None,
            language=c.language or self._heard_language or None,  # none configured: answer in the caller's
            sample_rate=8000,
            voice_type=c.voice_type or None,
            variables=self.variables,
        )

    def _tts_chain(self, fallback_tts_type: str) -> list[TtsChoice]:
        c = self.cfg
        chain = [TtsChoice(c.tts_type, self.make_tts)]
        if c.tts_voice_id:
            warning = (
                f"tts_voice_id {c.tts_voice_id!r} was rejected by {c.tts_type}; its default voice was used"
            )
            chain.append(TtsChoice(c.tts_type, lambda: self.make_tts(voice_id=None), warning))
        if fallback_tts_type and fallback_tts_type != c.tts_type:
            warning = f"tts {c.tts_type} failed; the fallback {fallback_tts_type} was used"
            chain.append(
                TtsChoice(fallback_tts_type, lambda: self.make_tts(fallback_tts_type, None), warning)
            )
        return chain

    def make_stt(self, stt_type: str | None = None) -> STT:
        return create_stt(
            stt_type or self.cfg.stt_type, language=self.cfg.stt_language or None, sample_rate=8000
        )

    # -- the loop ----------------------------------------------------------------------------------
    async def run(self) -> str:
        """Converse until the session ends; returns why (see the module docstring)."""
        loop = asyncio.get_running_loop()
        stt_type = self.cfg.stt_type
        try:
            stt = self.make_stt()
        except Exception as exc:
            if not self.fallback_stt_type:
                raise
            self.record.note(
                "warning", f"stt {stt_type} failed ({exc}); the fallback {self.fallback_stt_type} was used"
            )
            stt_type = self.fallback_stt_type
            stt = self.make_stt(stt_type)
        listener = self._listener = Listener(
            self.audio,
            stt,
            self.cfg.vad,
            self._events,
            turn=turn_config(smart_turn=self.cfg.smart_turn, vad=self.cfg.vad),
            language=self.cfg.stt_language or self.cfg.language,
        )
        listen_started = loop.time()
        tasks = [
            asyncio.create_task(listener.listen(), name="ai-listen"),
            asyncio.create_task(listener.transcripts(), name="ai-stt"),
        ]
        self.record.post = self._events.put_nowait
        for message in self.history:
            self.record.add_message("system", message.content)
        self.record.set_status("progressing")
        deadline = loop.time() + self.duration if self.duration > 0 else None
        ended = "hangup"
        try:
            if self.cfg.greeting:
                text = self.cfg.greeting if isinstance(self.cfg.greeting, str) else None
                self._start_reply(text=text)
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await self._events.get()
                except TimeoutError:
                    ended = "duration"
                    return ended
                result = await self._handle(event)
                if result:
                    ended = result
                    return ended
        finally:
            self.record.post = None
            await self._end_reply()
            for t in tasks:
                t.cancel()
            stt.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.record.add_stt_seconds(stt_type, loop.time() - listen_started)
            self.record.metadata.update(self.metrics.to_metadata())
            self.record.end(ended)
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
            self._last_final = asyncio.get_running_loop().time()
            self._heard_language = event.language or self._heard_language
            self._start_turn(turns.transcript(event.text))
        elif isinstance(event, _ReplyDone):
            return await self._finish_reply(event)
        elif isinstance(event, Terminate):
            return event.reason
        elif isinstance(event, Inject):
            self._inject(event)
        elif isinstance(event, InputEnded):
            if event.error is None or isinstance(event.error, CallHungUp):
                raise event.error or CallHungUp("call audio ended")
            raise event.error
        return None

    def _inject(self, event: Inject) -> None:
        busy = self._reply_task is not None and not self._reply_task.done()
        if event.role == "assistant":
            if busy:
                self._spoken_queue.append(event.content)
            else:
                self._start_reply(text=event.content, injected=True)
            return
        self.history.append(
            Message.system(event.content) if event.role == "system" else Message.user(event.content)
        )
        if event.role == "user" and not busy:
            self._start_reply()

    # -- turns -------------------------------------------------------------------------------------
    def _start_turn(self, text: str | None) -> None:
        if not text:
            return
        self.history.append(Message.user(text))
        self.record.add_message("user", text)
        self._start_reply(turn=_Turn(self._last_quiet, self._last_final))

    def _start_reply(
        self, *, text: str | None = None, turn: _Turn | None = None, injected: bool = False
    ) -> None:
        self.turns.bot_started()
        self._reply_turn = turn or _Turn()
        self._reply_injected = injected
        quiet_at = self._reply_turn.speech_end_at

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

    def _remember(self, reply: Reply, *, dropped_frames: int = 0) -> None:
        if self._listener is not None and reply.text:  # the turn detector weighs answers by the question
            self._listener.set_question(reply.text)
        for warning in reply.warnings:
            self.record.note("warning", warning)
        for error in reply.errors:
            self.record.note("error", error)
        if not (reply.text or reply.tool_calls):
            return
        turn = turn_record(reply, self._reply_turn, dropped_frames=dropped_frames)
        # The model's history keeps what the caller actually heard (VoIPBIN/Pipecat do the same).
        said = turn["spoken_text"] if reply.interrupted else reply.text
        self.history.append(Message.assistant(said, reply.tool_calls))
        if self._reply_injected:
            return  # its message was stored when it was posted
        self.record.add_message("assistant", reply.text, tool_calls=tuple(reply.tool_calls), turn=turn)

    async def _finish_reply(self, done: _ReplyDone) -> str | None:
        self._reply_task = None
        if done.error is not None:
            if isinstance(done.error, CallHungUp):
                raise done.error
            self.record.note("error", f"{type(done.error).__name__}: {done.error}")
            return await self._say_and_end(self.apology, "error")
        reply = done.reply
        self._remember(reply)
        if reply.failed:
            return await self._say_and_end(self.apology, "error")
        end: str | None = None
        follow_up = False
        for call in reply.tool_calls:
            result = await run_tool(call, self.tool_ctx)
            self.history.append(Message.tool(call.id, result.content))
            self.record.add_message("tool", result.content, tool_call_id=call.id)
            if result.connect is not None and self.connect is None:
                self.connect = result.connect
            end = end or result.end
            follow_up = follow_up or result.run_llm
        if end:
            return end
        if self.credit_left is not None and not await self.credit_left():
            return await self._say_and_end(self.balance_notice, "insufficient_balance")
        if self._spoken_queue:
            self._start_reply(text=self._spoken_queue.pop(0), injected=True)
            return None
        if follow_up:
            self._start_reply()
            return None
        self._start_turn(self.turns.bot_stopped())
        return None

    async def _say_and_end(self, text: str, reason: str) -> str:
        """Say ``text`` (the apology, the balance notice) with whatever TTS still works, then end."""
        if text:
            responder = Responder(
                self.llms, self._responder.tts_chain[self._responder._tts_index :], self.audio
            )
            try:
                async with asyncio.timeout(APOLOGY_LIMIT):
                    reply = await responder.run([], [], text=text)
                self.record.add_message("assistant", text, turn=turn_record(reply, _Turn()))
            except CallHungUp:
                raise
            except Exception as exc:
                self.record.note("error", f"the closing notice could not be spoken: {exc!r}")
        return reason

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
        reply.interrupted_at = detected
        self._remember(reply, dropped_frames=dropped)
        self.metrics.barge_ins.append(BargeIn(speech_at, detected, loop.time(), dropped))
        self.turns.bot_stopped()  # the caller is speaking, so this commits nothing

    async def _end_reply(self) -> None:
        """The session ends while an answer is under way: keep what was said (and its usage)."""
        task = self._reply_task
        if task is None or task.done():
            return
        reply = self._responder.reply
        await self._cancel_reply()
        reply.interrupted = True
        reply.interrupted_at = asyncio.get_running_loop().time()
        with contextlib.suppress(Exception):
            self._remember(reply)

    async def _cancel_reply(self) -> None:
        task, self._reply_task = self._reply_task, None
        if task is not None and not task.done():
            task.cancel()  # a cancelled reply posts nothing to the queue
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
