"""``AISession``: one AI voice conversation on a call — the one place its processors are wired.

    call audio ──> Listener ──(VAD start/stop, STT finals)──> TurnTaker ──> Responder
                   (VAD + STT)                                 (turns,       (LLM -> TTS clauses
                                                                barge-in)     -> play_stream)

Every part runs as its own task and is cancellable; the session loop reads one event queue and
decides. ``barge_in=True`` (``ai_talk``): the caller's voice onset while the assistant answers
(the listener's fast path, 40 ms of voice, echo-guarded) *pauses* our audio at once; words that are
not a backchannel, or voice lasting ``CONFIRM_SECS``, confirm the interruption (playout flushed,
LLM/TTS cancelled, the heard part kept); a backchannel or a noise with no words resumes the reply
where it stopped. ``barge_in=False`` (``ai``): request/response; what the caller says meanwhile is
answered afterwards. In both, backchannels and our own echo heard while we answer make no turn, and
while the AI holds the turn in silence (slow model, tools) a short filler is said.

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
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voipbin.ai.calls import AICallRecord, Inject, Terminate
from voipbin.ai.llm.base import LLM, Message
from voipbin.ai.llm.sent import call_once
from voipbin.flow.interfaces import CallAudio, CallHungUp
from voipbin.speech.backchannel import is_acknowledgement, is_echo
from voipbin.speech.registry import create_stt, create_tts
from voipbin.speech.stt import STT
from voipbin.speech.tts import TTS

from .config import SessionConfig
from .fillers import FILLER_AFTER, FILLER_BY, MAX_FILLERS, filler
from .listener import (
    InputEnded,
    Listener,
    SpeechStarted,
    SpeechStopped,
    Transcript,
    VoiceOnset,
    VoiceQuiet,
)
from .playback import Playback
from .prompts import system_messages
from .responder import FRAME_BYTES, Reply, Responder, TtsChoice
from .tools import ToolContext, offered_tools, run_tool
from .turns import TurnTaker, turn_config

log = logging.getLogger(__name__)

SPEECH_CHARS_PER_SECOND = 15.0  # typical TTS speaking rate, for what was heard before a barge-in
APOLOGY_LIMIT = 20.0  # seconds the apology / notice may take (a bound against hangs only)
# A tentative interruption (our audio paused on the caller's voice onset) is confirmed by words that
# are not a backchannel, or by voice lasting this long; else it is undone (the reply resumes) once the
# voice ended and the STT has nothing more to say (an STT that can tell: at the latest RESUME_CAP
# after the voice ended; one that cannot: RESUME_WAIT after it).
CONFIRM_SECS = 1.5
RESUME_WAIT = 0.8
RESUME_CAP = 2.0
CHECK_EVERY = 0.05
ECHO_WINDOW = 1.0  # an echo arrives within this long after our audio played (line + jitter buffers)


@dataclass(frozen=True)
class _Check:
    """Timer tick of a tentative interruption."""


@dataclass
class _Tentative:
    speech_at: float  # the caller's voice onset
    detected_at: float
    paused_at: float | None  # our audio went silent (None: nothing was playing)
    quiet_at: float | None = None  # the voice ended


@dataclass(frozen=True)
class _ReplyDone:
    reply: Reply
    error: BaseException | None = None


@dataclass
class BargeIn:
    speech_at: float  # when the caller's voice began
    detected_at: float  # when the session learnt of it (the fast onset path, or the words)
    silenced_at: float  # our audio was silenced (paused on the onset, or flushed)
    done_at: float  # the interruption confirmed: playout flushed and generation cancelled
    dropped_frames: int


@dataclass
class FalseInterruption:
    speech_at: float
    paused_at: float
    resumed_at: float
    reason: str  # "backchannel" | "echo" | "no_words"


@dataclass
class SessionMetrics:
    turn_latencies: list[float] = field(default_factory=list)  # caller quiet -> first AI audio (s)
    barge_ins: list[BargeIn] = field(default_factory=list)
    false_interruptions: list[FalseInterruption] = field(default_factory=list)
    fillers: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # backchannels / echo heard while we spoke

    def to_metadata(self) -> dict[str, object]:
        return {
            "turn_latency_ms": [round(t * 1000) for t in self.turn_latencies],
            "barge_ins": [
                {
                    "detect_ms": round((b.detected_at - b.speech_at) * 1000),
                    "reaction_ms": round((b.silenced_at - b.detected_at) * 1000),
                    "confirm_ms": round((b.done_at - b.silenced_at) * 1000),
                    "dropped_frames": b.dropped_frames,
                }
                for b in self.barge_ins
            ],
            "false_interruptions": [
                {
                    "detect_ms": round((f.paused_at - f.speech_at) * 1000),
                    "paused_ms": round((f.resumed_at - f.paused_at) * 1000),
                    "reason": f.reason,
                }
                for f in self.false_interruptions
            ],
            "fillers": list(self.fillers),
            "ignored_speech": list(self.ignored),
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
        # All our audio goes through the playback, which can pause on a tentative interruption.
        self.playback = Playback(audio)
        self.tool_ctx = tools or ToolContext(
            record.customer_id, record.id, record.row.activeflow_id, record.row.reference_id,
            variables, self.playback.flush,
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
            self.playback,
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
        self._tentative: _Tentative | None = None
        self._check: asyncio.TimerHandle | None = None
        self._trust_settled = False  # the STT says when it has transcribed everything (settled())
        self._filler_task: asyncio.Task[None] | None = None
        self._filler_pcm: dict[str, bytes] = {}
        self._spans: deque[tuple[float, float]] = deque(maxlen=3)  # (from, to) our recent replies played
        # What we said lately and when it stopped playing: what an echo of us may say (fillers too).
        self._said: deque[tuple[str, float]] = deque(maxlen=4)

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
            echo_floor=self.playback.echo_floor,
        )
        self._trust_settled = type(stt).settled is not STT.settled
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
            self._stop_filler()
            if self._check is not None:
                self._check.cancel()
            try:
                await self._end_reply()
                await self.playback.close()
            finally:
                # Even if the clean-up is cancelled again (the flow stopping while the call ends):
                # the aicall is always terminated, never left progressing.
                for t in tasks:
                    t.cancel()
                stt.cancel()
                try:
                    await asyncio.gather(*tasks, return_exceptions=True)
                finally:
                    self.record.add_stt_seconds(stt_type, loop.time() - listen_started)
                    self.record.metadata.update(self.metrics.to_metadata())
                    self.record.end(ended)
                    self.record.set_status("terminated")

    async def _handle(self, event: object) -> str | None:
        turns = self.turns
        if isinstance(event, VoiceOnset):
            self._onset(event.at)
        elif isinstance(event, VoiceQuiet):
            self._voice_quiet(event.at)
        elif isinstance(event, _Check):
            await self._check_tentative()
        elif isinstance(event, SpeechStarted):
            turns.speech_started()  # interruptions are decided on the fast onset path and the words
        elif isinstance(event, SpeechStopped):
            self._last_quiet = event.at
            self._start_turn(turns.speech_stopped())
        elif isinstance(event, Transcript):
            self._last_final = asyncio.get_running_loop().time()
            self._heard_language = event.language or self._heard_language
            if await self._while_speaking(event):
                return None
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

        def record() -> None:
            self.record.add_message("user", text)

        # The caller's aimessage (serialised, its event, its outbox row) is recorded once the model's
        # request is out: nothing but the request stands between the turn's end and the model.
        self._start_reply(turn=_Turn(self._last_quiet, self._last_final), hold=True, on_sent=record)

    def _start_reply(
        self,
        *,
        text: str | None = None,
        turn: _Turn | None = None,
        injected: bool = False,
        hold: bool = False,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        """``hold``: the AI holds the caller's turn (an answer, a tool's follow-up): fillers if slow.
        ``on_sent``: see :meth:`Responder.run`."""
        self.turns.bot_started()
        filler_origin = (turn or self._reply_turn).speech_end_at
        asked_at = asyncio.get_running_loop().time()  # the filler waits for a reply started from now
        self._reply_turn = turn or _Turn()
        self._reply_injected = injected
        quiet_at = self._reply_turn.speech_end_at
        sent = call_once(on_sent) if on_sent is not None else None

        async def respond() -> None:
            try:
                reply = await self._responder.run(list(self.history), self.tools, text=text, on_sent=sent)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # reported to the loop, which fails the session
                self._events.put_nowait(_ReplyDone(self._responder.reply, exc))
                return
            if quiet_at is not None and reply.first_audio_at is not None:
                self.metrics.turn_latencies.append(reply.first_audio_at - quiet_at)
            self._events.put_nowait(_ReplyDone(reply))

        self._reply_task = asyncio.create_task(respond(), name="ai-respond")
        if sent is not None:  # a task cancelled before its first step never ran it (its callbacks
            self._reply_task.add_done_callback(lambda _task: sent())  # run before its awaiters)
        if hold:  # after the reply's task, whose first step (the model's request) runs first
            self._start_filler(filler_origin, asked_at)

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
        self._said.append((turn["spoken_text"], self.playback.audible_until))
        # The model's history keeps what the caller actually heard (VoIPBIN/Pipecat do the same).
        said = turn["spoken_text"] if reply.interrupted else reply.text
        self.history.append(Message.assistant(said, reply.tool_calls))
        if self._reply_injected:
            return  # its message was stored when it was posted
        self.record.add_message("assistant", reply.text, tool_calls=tuple(reply.tool_calls), turn=turn)

    async def _finish_reply(self, done: _ReplyDone) -> str | None:
        self._reply_task = None
        self._spoke(done.reply)
        self._stop_filler()
        self._resume("reply_ended")  # a reply that ended under a tentative interruption had played out
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
        if reply.tool_calls:  # the caller waits for the tools: fillers keep the line alive
            self._start_filler(self._reply_turn.speech_end_at)
        for call in reply.tool_calls:
            result = await run_tool(call, self.tool_ctx)
            self.history.append(Message.tool(call.id, result.content))
            self.record.add_message("tool", result.content, tool_call_id=call.id)
            if result.connect is not None and self.connect is None:
                self.connect = result.connect
            end = end or result.end
            follow_up = follow_up or result.run_llm
        self._stop_filler()
        if end:
            return end
        if self.credit_left is not None and not await self.credit_left():
            return await self._say_and_end(self.balance_notice, "insufficient_balance")
        if self._spoken_queue:
            self._start_reply(text=self._spoken_queue.pop(0), injected=True)
            return None
        if follow_up:
            self._start_reply(hold=True)
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

    # -- interruptions -----------------------------------------------------------------------------
    @property
    def _replying(self) -> bool:
        task = self._reply_task
        return task is not None and not task.done()

    def _onset(self, at: float) -> None:
        """The caller's voice began while we answer: silence our audio at once, tentatively."""
        t = self._tentative
        if t is not None:
            t.quiet_at = None  # the voice is back
            return
        if not self.turns.barge_in or not self._replying:
            return
        loop = asyncio.get_running_loop()
        detected = loop.time()
        paused = self.playback.pause()
        self._tentative = _Tentative(at, detected, loop.time() if paused else None)
        self._schedule_check()

    def _voice_quiet(self, at: float) -> None:
        t = self._tentative
        if t is None or t.quiet_at is not None:
            return
        t.quiet_at = at
        if self._listener is not None:
            self._listener.words_now()  # a batch STT transcribes the voice now, not after its silence

    def _schedule_check(self) -> None:
        if self._check is None:
            self._check = asyncio.get_running_loop().call_later(CHECK_EVERY, self._post_check)

    def _post_check(self) -> None:
        self._check = None
        self._events.put_nowait(_Check())

    async def _check_tentative(self) -> None:
        t = self._tentative
        if t is None:
            return
        now = asyncio.get_running_loop().time()
        if t.quiet_at is None:
            if now - t.speech_at >= CONFIRM_SECS:  # too long for a backchannel: the caller takes the turn
                await self._barge_in()
                return
        else:
            listener = self._listener
            waited = now - t.quiet_at
            if self._trust_settled:
                done = (listener is None or listener.stt.settled()) and waited >= CHECK_EVERY
                done = done or waited >= RESUME_CAP
            else:
                done = waited >= RESUME_WAIT
            if done:
                self._resume("no_words")  # a noise, a cough: nothing was said
                return
        self._schedule_check()

    async def _while_speaking(self, heard: Transcript) -> bool:
        """Words heard while we answer: a backchannel or our own echo is ignored (True; a paused
        reply resumes), other words interrupt the reply (``ai_talk``) and make the caller's turn."""
        t = self._tentative
        if t is None and not self._replying and not self._during_ours(heard.spoken_at):
            return False
        text = heard.text
        language = self.cfg.stt_language or self.cfg.language or self._heard_language
        now = asyncio.get_running_loop().time()
        # How long the voice lasted (unknown without an onset, e.g. while nothing played: no guess).
        voiced = ((t.quiet_at or now) - t.speech_at) if t is not None else float("inf")
        # Our echo is of what played just before the speech: the current reply, or one that stopped
        # playing less than ECHO_WINDOW before (not older replies whose words the caller may repeat).
        began = heard.spoken_at if heard.spoken_at is not None else now
        ours = (
            *(said for said, until in self._said if until > began - ECHO_WINDOW),
            self._responder.reply.text,
        )
        if is_echo(text, " ".join(ours)):
            reason = "echo"
        elif is_acknowledgement(text, confidence=heard.confidence, voiced_secs=voiced, language=language):
            reason = "backchannel"
        else:
            if self.turns.barge_in and self._replying:
                await self._barge_in()
            return False
        self.metrics.ignored.append(text)
        if t is not None and t.quiet_at is not None:
            self._resume(reason)
        return True

    def _during_ours(self, at: float | None) -> bool:
        """Whether speech that began at ``at`` was said over a recent reply of ours (a backchannel
        whose transcript comes after the reply ended). Speech begun in the reply's last half second
        answers it ("...a window seat?" "Yes.") and is a turn."""
        return at is not None and any(start - 0.2 <= at <= end - 0.5 for start, end in self._spans)

    def _spoke(self, reply: Reply) -> None:
        if reply.first_out_at is not None:
            self._spans.append((reply.first_out_at, asyncio.get_running_loop().time()))

    def _resume(self, reason: str) -> None:
        """Not an interruption after all: the paused reply goes on where the caller stopped hearing it."""
        t, self._tentative = self._tentative, None
        if t is None:
            return
        self.playback.resume()
        if t.paused_at is not None and reason != "reply_ended":
            now = asyncio.get_running_loop().time()
            self.metrics.false_interruptions.append(FalseInterruption(t.speech_at, t.paused_at, now, reason))

    async def _barge_in(self) -> None:
        """The caller interrupts: drop our audio for good, cancel the reply, keep what was heard."""
        loop = asyncio.get_running_loop()
        t, self._tentative = self._tentative, None
        self._stop_filler()
        task = self._reply_task
        if task is None or task.done():
            self.playback.resume()
            return  # the answer is complete; its result is already queued and handled next
        now = loop.time()
        dropped = self.playback.flush()  # silence from the next frame on, before anything else
        speech_at, detected = (t.speech_at, t.detected_at) if t is not None else (now, now)
        silenced = t.paused_at if t is not None and t.paused_at is not None else loop.time()
        reply = self._responder.reply
        await self._cancel_reply()
        self._spoke(reply)
        reply.interrupted = True
        reply.interrupted_at = silenced
        self._remember(reply, dropped_frames=dropped)
        self.metrics.barge_ins.append(BargeIn(speech_at, detected, silenced, loop.time(), dropped))
        self.turns.bot_stopped()  # the caller is speaking, so this commits nothing

    # -- fillers -----------------------------------------------------------------------------------
    def _start_filler(self, origin: float | None, since: float | None = None) -> None:
        self._stop_filler()
        self._filler_task = asyncio.create_task(self._fill(origin, since), name="ai-filler")

    def _stop_filler(self) -> None:
        task, self._filler_task = self._filler_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _fill(self, origin: float | None, since: float | None = None) -> None:
        """While we hold the turn and say nothing: a short filler after FILLER_AFTER of silence (at
        the latest FILLER_BY after the caller went quiet), up to MAX_FILLERS; ends with our audio."""
        loop = asyncio.get_running_loop()
        started = loop.time() if since is None else since  # a reply started after this answers
        due = started + FILLER_AFTER
        if origin is not None:
            due = max(started + 0.3, min(due, origin + FILLER_BY))
        language = self.cfg.language or self._heard_language
        playback = self.playback

        def answered() -> bool:
            r = self._responder.reply
            return r.started_at >= started and r.first_out_at is not None

        for index in range(MAX_FILLERS):
            text = filler(language, index)
            # Synthesised a little before it is due (then cached): only a slow turn pays for it.
            await asyncio.sleep(max(0.0, due - 0.4 - loop.time()))
            if answered():
                return
            pcm = await self._filler_audio(text)
            while True:
                await asyncio.sleep(max(0.0, due - loop.time()))
                if answered():
                    return
                if playback.audible() or playback.paused or self._tentative is not None:
                    due = max(loop.time(), playback.audible_until) + FILLER_AFTER
                    continue
                break
            if not pcm:
                return
            playback.say(pcm)
            self._said.append((text, loop.time() + len(pcm) / (2 * 8000)))
            self.metrics.fillers.append(text)
            due = loop.time() + len(pcm) / (2 * 8000) + FILLER_AFTER

    async def _filler_audio(self, text: str) -> bytes:
        if text not in self._filler_pcm:
            try:
                tts = self.make_tts()
                try:
                    self._filler_pcm[text] = await tts.read_all_of(text)
                finally:
                    await tts.aclose()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a filler is a courtesy: never fail the turn over it
                log.warning("filler %r could not be synthesised: %s", text, exc)
                self._filler_pcm[text] = b""
        return self._filler_pcm[text]

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
