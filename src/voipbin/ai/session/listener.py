"""The caller's side of the pipeline: inbound audio -> VAD, turn detection and STT, as events.

Each 20 ms frame from the call goes first to the fast onset detector (webrtcvad + loudness, with
the echo floor while we speak: :class:`VoiceOnset` after 40 ms of voice, :class:`VoiceQuiet` after
300 ms without, for barge-in), then to the VAD segmenter (webrtcvad-gated in silence; its Silero
runs are batched with the other calls' frames of the same loop turn,
:class:`voipbin.speech.vad.SileroBatch`) and to the STT stream. VAD gives the speech start
(turn-taking); the :class:`voipbin.speech.turn_detector.TurnDetector` decides when the caller's
*turn* is over — from the silence, the Smart Turn model's verdict on the turn's audio (run on the
speech pool while the silence goes on, when the detector says it can matter, admitted by the
process's :class:`voipbin.speech.turn_model.TurnModelQueue`), the words so far and the AI's last
question. Then the STT is told to deliver what it holds (:meth:`STT.endpoint`: the offline
recogniser transcribes at once instead of after a fixed 500 ms), and once it has
(:meth:`STT.settled`), :class:`SpeechStopped` is posted with the time the caller actually went
quiet, which is where turn latency is measured from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from voipbin.flow.interfaces import CallAudio, CallHungUp
from voipbin.speech.onset import OnsetDetector
from voipbin.speech.stt import STT, SttEventType
from voipbin.speech.turn_detector import TurnConfig, TurnDetector
from voipbin.speech.turn_model import (
    TurnModelUnavailable,
    completion_probability_blocking,
    turn_model_queue,
)
from voipbin.speech.vad import VadConfig, VadSegmenter, silero_batch

log = logging.getLogger(__name__)

RATE = 8000
MODEL_WINDOW_SECS = 8.5  # Smart Turn hears the last 8 s (+ a little pre-roll)
SETTLE_CAP_SECS = 10.0  # never hold a finished turn longer than this for a late transcript
CAUGHT_UP_SECS = 0.001  # a frame taken sooner than this after the previous one was already queued


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # loop time the caller's voice began (detected start_secs later)


@dataclass(frozen=True)
class VoiceOnset:
    at: float  # loop time the caller's voice began (40 ms of it heard: the fast barge-in path)


@dataclass(frozen=True)
class VoiceQuiet:
    at: float  # loop time that voice ended (300 ms of quiet heard)
    voiced_secs: float  # how much voice there was since its onset


@dataclass(frozen=True)
class SpeechStopped:
    at: float  # loop time the caller went quiet at the end of their turn


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None = None  # as the STT reports it (detected when none was configured)
    confidence: float | None = None  # as the STT reports it
    spoken_at: float | None = None  # loop time its speech began (None: the STT did not say)


@dataclass(frozen=True)
class InputEnded:
    error: BaseException | None = None  # None / CallHungUp: the call ended; else a failure


InputEvent = SpeechStarted | SpeechStopped | VoiceOnset | VoiceQuiet | Transcript | InputEnded


class SttFeeder:
    """Sends the call's audio to the STT from a task of its own; frames that queue meanwhile go together.

    Why: a send awaits the provider's socket (Deepgram: a ``wait_for`` task and a compressed
    websocket frame per send), at least one loop turn per 20 ms frame. A listener that awaited each
    send fell behind its audio once loop turns took longer than a frame: at 60 AI calls on the loaded
    machine its VAD and turn decisions ran a median 3.6 s behind the caller (the platform's own turn
    latency, measured from what the listener has heard, did not show it; the callers' did). Now the
    listener never waits for the STT, and one send carries every frame that came while the last was
    in flight. A failed send fails the next :meth:`feed`.
    """

    def __init__(self, stt: STT) -> None:
        self.stt = stt
        self._frames: list[bytes] = []
        self._ready = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def feed(self, pcm: bytes) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ai-stt-feed")
        elif self._task.done():
            self._task.result()  # raises the send's error (the task only ends by failing or closing)
        self._frames.append(pcm)
        self._ready.set()

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            if self._frames:
                pcm = b"".join(self._frames)
                self._frames.clear()
                await self.stt.feed(pcm)
            if self._closing and not self._frames:
                return

    async def drain(self) -> None:
        """Send what is queued and stop (the call's audio ended)."""
        if self._task is None:
            return
        self._closing = True
        self._ready.set()
        await self._task

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Listener:
    def __init__(
        self,
        audio: CallAudio,
        stt: STT,
        vad: VadConfig,
        out: asyncio.Queue[object],
        *,
        turn: TurnConfig | None = None,
        language: str | None = None,
        echo_floor: Callable[[], float] | None = None,
    ) -> None:
        self.audio = audio
        self.stt = stt
        self.vad = VadSegmenter(RATE, vad)
        # The fast onset path for barge-in; ``echo_floor`` raises its threshold while we speak.
        self.onset = OnsetDetector(RATE, min_volume=vad.min_volume)
        self.echo_floor = echo_floor or (lambda: -100.0)
        self.out = out
        self.detector = TurnDetector(
            turn or TurnConfig(), language=language, stt_endpoints=stt.ends_utterances
        )
        self._audio: deque[bytes] = deque(maxlen=int(MODEL_WINDOW_SECS * 50))  # 20 ms frames
        self._model_tasks: set[asyncio.Task[None]] = set()
        self._turn_over: float | None = None  # loop time the caller went quiet, turn decided
        self._turn_over_decided = 0.0
        self._model_broken = False
        self._heard = 0.0  # seconds of call audio seen (the detector's clock)
        self._heard_at = 0.0  # loop time the latest frame arrived

    def set_question(self, text: str | None) -> None:
        """What the AI said last (its question shapes what a finished answer is)."""
        self.detector.set_question(text)

    async def listen(self) -> None:
        """Feed VAD, the turn detector and STT until the call ends (then post :class:`InputEnded`)."""
        loop = asyncio.get_running_loop()
        batch = silero_batch()  # Silero runs joined with the other calls' frames of this loop turn
        feeder = SttFeeder(self.stt)
        done_at = 0.0  # when the previous frame was done (time.monotonic)
        try:
            async for pcm in self.audio.audio_in():
                now = loop.time()
                # A batched Silero frame costs two loop turns; a listener behind its audio (the frame
                # was already waiting) would never catch up at that pace under load, so it runs its
                # own frames at once until it has.
                behind = time.monotonic() - done_at < CAUGHT_UP_SECS
                self._audio.append(pcm)
                self._onset(pcm, now)
                events = self.vad.feed(pcm) if behind else await self.vad.feed_batched(pcm, batch)
                for ev in events:
                    if ev.kind == "start":
                        # The segmenter is behind "now" by the audio it has seen after the event.
                        self.out.put_nowait(SpeechStarted(now - (self.vad.time - ev.time)))
                # The detector runs on the audio's own clock: a loop that lagged delivers frames in a
                # burst, and wall-clock gaps between them would look like pauses that never were.
                self._heard += len(pcm) / (2 * RATE)
                self._heard_at = now
                self.detector.voice(self._heard, self.vad.last_frame_speech)
                self._ask_model(self._heard)
                self._decide()
                feeder.feed(pcm)
                done_at = time.monotonic()
            await feeder.drain()
            self.out.put_nowait(InputEnded())
        except CallHungUp as exc:
            self.out.put_nowait(InputEnded(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.out.put_nowait(InputEnded(exc))
        finally:
            feeder.cancel()
            for task in list(self._model_tasks):
                task.cancel()

    def _onset(self, pcm: bytes, now: float) -> None:
        floor = self.echo_floor()
        for i in range(0, len(pcm) - 319, 320):
            ev = self.onset.feed(pcm[i : i + 320], floor)
            if ev is not None:
                at = now - (self.onset.time - ev.time)
                self.out.put_nowait(VoiceOnset(at) if ev.kind == "onset" else VoiceQuiet(at, ev.voiced_secs))

    def words_now(self) -> None:
        """Ask the STT for what it holds now (a possible interruption's words), not at turn end."""
        self.stt.endpoint()

    async def transcripts(self) -> None:
        """Forward STT finals; interim text and the STT's own endpoints feed the turn detector."""
        try:
            async for ev in self.stt:
                text = ev.text.strip()
                if ev.type == SttEventType.FINAL and text:
                    self.detector.text(text)
                    spoken_at = None if ev.start is None else self._heard_at - (self._heard - ev.start)
                    self.out.put_nowait(Transcript(text, ev.language, ev.confidence, spoken_at))
                elif ev.type == SttEventType.INTERIM and text:
                    self.detector.text(text, final=False)
                elif ev.type == SttEventType.SPEECH_ENDED and self.stt.ends_utterances:
                    self.detector.stt_endpoint()
                self._decide()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.out.put_nowait(InputEnded(exc))

    # -- turn decision ---------------------------------------------------------------------------
    def _ask_model(self, now: float) -> None:
        if self._model_broken:
            return
        pause = self.detector.model_request(now)
        if pause is None:
            return
        frames = list(self._audio)  # joined on the worker, not on the loop
        task = asyncio.create_task(self._run_model(pause, frames), name="ai-turn-model")
        self._model_tasks.add(task)
        task.add_done_callback(self._model_tasks.discard)

    async def _run_model(self, pause: int, frames: list[bytes]) -> None:
        detector = self.detector

        def wanted() -> bool:
            # Queued behind other calls' work: skip it if the caller spoke again, or if the words or
            # the STT's endpoint have decided the pause meanwhile.
            return detector.current_pause == pause and detector.model_matters()

        try:
            p = await turn_model_queue().probability(
                lambda: completion_probability_blocking(b"".join(frames), RATE), wanted
            )
            if p is None:
                if detector.current_pause == pause:
                    detector.model_declined(pause)  # overloaded: words and silence decide this pause
                    self._decide()
                return
        except TurnModelUnavailable as exc:  # not installed: words and silence decide alone
            log.warning("Smart Turn unavailable, turn detection without it: %s", exc)
            self._model_broken = True
            p = 0.5
        except Exception:  # one failed inference must not stall the turn: "unsure" for this pause
            log.exception("Smart Turn inference failed")
            p = 0.5
        self.detector.audio_probability(pause, p)
        self._decide()

    def _decide(self) -> None:
        now = self._heard
        if self._turn_over is None:
            quiet = self.detector.speech_end
            if quiet is None or not self.detector.ended(now):
                return
            self._turn_over = self._heard_at - (now - quiet)  # loop time the caller went quiet
            self._turn_over_decided = now
            self.stt.endpoint()
        if self.stt.settled() or now - self._turn_over_decided > SETTLE_CAP_SECS:
            self.out.put_nowait(SpeechStopped(self._turn_over))
            self._turn_over = None
