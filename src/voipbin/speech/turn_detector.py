"""End-of-turn decision: VAD silence + Smart Turn probability + the words + an adaptive wait (sans-I/O).

The caller's turn has ended when they have been silent for ``wait(p)`` seconds, where ``p`` is how
complete the turn looks:

* the audio model (:mod:`voipbin.speech.turn_model`) gives ``p_audio`` for the turn's audio; the
  driver asks for it at most once per pause (:meth:`TurnDetector.model_request`) and hands the
  result back (:meth:`audio_probability`), or says it could not have one (:meth:`model_declined`:
  overloaded), and then the rest decides alone. The model costs ~60 ms of a core, so it is asked
  only when its answer can change the wait — not when the words already say "unfinished" (its
  verdict is overruled anyway), nor once the streaming STT has endpointed a turn the words accept
  — and no earlier than ``model_lead`` before the soonest moment it could end the turn (never
  before ``model_after``): a short turn waits ``short_wait`` anyway, an answer that leans
  unfinished waits at least the middle band, and most inter-word gaps are over before that;
* the words (:func:`voipbin.speech.turn_words.words_completion`) of the transcript so far and the
  question the AI asked pull ``p`` down (a trailing "and", a short phone number) or up (a "yes" to
  a yes/no question);
* the adaptive wait maps ``p`` to a silence: a very confident "complete" ends the turn at once, an
  unsure one (p near 0.5) waits most of a mid-sentence pause, an "unfinished" one waits up to
  ``max_wait`` — stretched by the longest mid-turn pause this caller has already made (people who
  pause long keep pausing long);
* with a streaming STT (it sends interim words) a pause waits up to ``words_grace`` for the STT's
  final of the speech before it: its words trail the audio, and the late "... and" must still count.

A streaming STT's own end-of-turn signal (Deepgram ``speech_final``/``UtteranceEnd``) counts as
strong evidence of an end when the words do not object (:meth:`stt_endpoint`); with such an STT
(``stt_endpoints``) the model is not asked while its final is due (:meth:`model_matters`).

Each part can be switched off (:class:`TurnConfig`) so ``bench/turn_detection.py`` can measure what
each one contributes. Times are seconds on any monotonic clock the driver uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from voipbin.speech.turn_words import COMPLETE, INCOMPLETE, words_completion


@dataclass(frozen=True)
class TurnConfig:
    use_audio_model: bool = True
    use_words: bool = True
    adaptive: bool = True
    # Silence before the audio model is asked (it takes ~60-100 ms; asking early hides that).
    model_after: float = 0.064
    # How long before the soonest possible end of the turn the model is asked (its expected answer
    # time on an idle core): asking earlier only spends inference on pauses that are over by then.
    model_lead: float = 0.1
    # While a streaming STT's final is due the words may change at any moment, so the answer should
    # be there by ``words_grace``; asked this long before it (the 3rd silent 32 ms VAD frame, not the
    # 2nd: on the labelled set 198 runs instead of 272, 41 of them for pauses the caller ended before
    # the answer instead of 111, same EOT and cut-off; one frame later cut off 11 % with late words).
    words_lead: float = 0.16
    # Non-adaptive: end at ``stop_secs`` of silence when p >= 0.5, else at ``max_wait``.
    stop_secs: float = 0.2
    # Adaptive: (lowest completeness, silence that ends the turn), most confident band first; below
    # the last band, ``max_wait``. An unsure model (p near 0.5) waits long: mid-sentence pauses are
    # 0.3-1 s, and the model's "complete" there is wrong about as often as it is right.
    bands: tuple[tuple[float, float], ...] = ((0.9, 0.1), (0.6, 0.7), (0.35, 1.0))
    max_wait: float = 1.4
    max_stretch: float = 2.2  # the longest max_wait a slow caller's pauses can stretch it to
    # A turn shorter than ``short_turn`` ("Stop," "Yes,") waits at least ``short_wait``: the model hears
    # mostly padding in its 8 s window, and cutting the recogniser's clip that short garbles it.
    short_turn: float = 0.6
    short_wait: float = 0.3
    # Without the audio model, a turn the words say nothing about waits this long.
    unknown_wait: float = 0.6
    # A streaming STT's words trail the audio: until its final for the speech before the pause has
    # come, the words that would say "unfinished" ("... and") may be on their way (its interim words
    # lag too), so the turn waits up to this long for them.
    words_grace: float = 0.25
    words_fresh: float = 0.07  # words this close before the VAD's silence count as the latest

    def wait_for(self, p: float | None) -> float:
        """Silence (s) after which a turn of completeness ``p`` ends (adaptive mode)."""
        if p is None:
            return self.unknown_wait
        for lowest, wait in self.bands:
            if p >= lowest:
                return wait
        return self.max_wait


def combine(p_audio: float | None, p_words: float | None) -> float | None:
    """One completeness from the audio model's and the words' views (either may be missing)."""
    if p_words is None:
        return p_audio
    if p_audio is None:
        return p_words
    if p_words <= INCOMPLETE:  # the words say unfinished: the audio must be very sure to overrule
        return p_audio * 0.3
    if p_words >= COMPLETE:
        return 1.0 - (1.0 - p_audio) * 0.3
    return (p_audio + p_words) / 2  # a lean ("my number is"): pulls an unsure model across a band


class TurnDetector:
    """One caller's turns. Feed voice activity per frame, text and model results; ask :meth:`ended`."""

    def __init__(
        self, config: TurnConfig | None = None, *, language: str | None = None, stt_endpoints: bool = False
    ) -> None:
        self.config = config or TurnConfig()
        self.language = language
        # The streaming STT ends utterances itself (Deepgram ``speech_final``): see model_matters.
        self.stt_endpoints = stt_endpoints
        self.question: str | None = None
        self._in_turn = False
        self._speaking = False
        self._silent_since: float | None = None
        self._pause = 0  # pauses in this turn, so model results can be matched to theirs
        self._asked_pause = -1
        self._declined_pause = -1
        self._p_audio: float | None = None
        self._p_words: float | None = None  # words_completion of the transcript, kept current
        self._text = ""
        self._interim = ""
        self._stt_endpoint = False
        self._longest_resumed_pause = 0.0
        self._turn_start = 0.0
        self._now = 0.0  # the latest frame time: when text arrives, on the detector's clock
        self._streaming = False  # the STT sends interim words (so its words run alongside the audio)
        self._words_at: float | None = None  # when the latest final segment came

    # -- inputs ----------------------------------------------------------------------------------
    def voice(self, t: float, speech: bool) -> None:
        """One VAD frame: ``speech`` is whether it held the caller's voice; ``t`` its start time."""
        self._now = t
        if speech:
            if not self._in_turn:
                self._turn_start = t
            if self._silent_since is not None and self._in_turn:
                self._longest_resumed_pause = max(self._longest_resumed_pause, t - self._silent_since)
            self._in_turn = True
            self._speaking = True
            self._silent_since = None
            self._p_audio = None
            self._stt_endpoint = False
            self._pause += 1
        elif self._speaking:
            self._speaking = False
            self._silent_since = t

    def text(self, text: str, *, final: bool = True) -> None:
        """Transcript: a final segment is appended, an interim one replaces the previous interim."""
        if final:
            self._text = f"{self._text} {text}".strip()
            self._interim = ""
            self._words_at = self._now
        else:
            self._interim = text
            self._streaming = True
        self._update_words()

    def set_question(self, text: str | None) -> None:
        """What the AI said last (its question shapes what counts as a finished answer)."""
        self.question = text
        self._update_words()

    def _update_words(self) -> None:
        # Computed when the words change, not on every frame's decision.
        words = self.transcript
        self._p_words = (
            words_completion(words, question=self.question, language=self.language)
            if self.config.use_words and words
            else None
        )

    def stt_endpoint(self) -> None:
        """The streaming STT says the utterance ended (e.g. Deepgram ``speech_final``)."""
        if self._in_turn and not self._speaking:
            self._stt_endpoint = True

    def model_request(self, t: float) -> int | None:
        """If the audio model should run now, the pause id to hand back with its result, else None."""
        c = self.config
        if not (c.use_audio_model and self._silent_since is not None and self._asked_pause != self._pause):
            return None
        if not self.model_matters():
            return None  # asked later in this pause if new words make it matter
        if self._words_due():  # a late final may change the words: have the answer by words_grace
            ask_at = max(c.model_after, c.words_grace - c.words_lead)
        else:
            ask_at = max(c.model_after, self._silence(1.0, awaiting=False) - c.model_lead)
        if t - self._silent_since < ask_at:
            return None
        self._asked_pause = self._pause
        return self._pause

    def audio_probability(self, pause: int, p: float) -> None:
        if pause == self._pause:  # a result for an earlier pause (the caller spoke again) is stale
            self._p_audio = p

    def model_declined(self, pause: int) -> None:
        """No model answer will come for this pause (the inference queue was full or too slow)."""
        if pause == self._pause:
            self._declined_pause = pause

    def model_matters(self) -> bool:
        """Whether the model's answer could change when this pause ends the turn, given the rest.

        The wait falls as ``p_audio`` rises (``combine`` and the bands are monotone), so comparing the
        two extremes is exact. While a streaming STT's final for the speech before the pause is still
        due, the words may yet change, so the answer is wanted then (asking only once they came
        would make it late: 307 vs 189 ms EOT on the labelled set with words 200 ms behind) —
        unless that STT ends utterances itself: its final then comes with its endpoint, which makes
        any turn the words accept complete whatever the model says (:meth:`completeness`), and the
        turn waits for that final anyway (``words_grace``, then ``STT.settled``). An answer before it
        could only end the turn in a pause the STT would not have ended."""
        if not self.config.use_audio_model or self._declined_pause == self._pause:
            return False
        if self._words_due():
            return not self.stt_endpoints  # the final may change the words: have the answer ready
        return self._silence(0.0, awaiting=False) != self._silence(1.0, awaiting=False)

    def _words_due(self) -> bool:
        return self.words_behind() and not self._stt_endpoint

    # -- decision --------------------------------------------------------------------------------
    @property
    def current_pause(self) -> int:
        """The id a model answer must carry to count (read by the inference worker to skip stale work)."""
        return self._pause

    @property
    def in_turn(self) -> bool:
        return self._in_turn

    @property
    def transcript(self) -> str:
        return f"{self._text} {self._interim}".strip()

    def completeness(self) -> float | None:
        return self._completeness(self._p_audio if self.config.use_audio_model else None)

    def _completeness(self, p_audio: float | None) -> float | None:
        p_words = self._p_words
        p = combine(p_audio, p_words)
        if self._stt_endpoint and (p_words is None or p_words > INCOMPLETE):
            p = max(p or 0.0, 0.9)
        return p

    def words_behind(self) -> bool:
        """In a pause, with a streaming STT whose final for the speech before it has not come yet."""
        c = self.config
        if not (c.use_words and self._streaming and self._silent_since is not None):
            return False
        return self._words_at is None or self._words_at < self._silent_since - c.words_fresh

    def required_silence(self) -> float:
        c = self.config
        p_audio = self._p_audio if c.use_audio_model else None
        awaiting = p_audio is None and self.model_matters()
        return self._silence(p_audio, awaiting=awaiting)

    def _silence(self, p_audio: float | None, *, awaiting: bool) -> float:
        """The silence that ends the turn if the model says ``p_audio``; ``awaiting``: its answer is due."""
        c = self.config
        p = self._completeness(p_audio)
        if not c.adaptive:
            if p is not None and p < 0.5:
                return c.max_wait
            if awaiting:
                return c.max_wait  # decided when the model answers (or at the longest wait)
            return c.stop_secs
        # While the model's answer is on its way (late on a busy machine), nothing shorter applies.
        wait = c.max_wait if awaiting else c.wait_for(p)
        if wait >= c.max_wait:
            wait = min(max(c.max_wait, self._longest_resumed_pause * 1.25), c.max_stretch)
        if self._silent_since is not None and self._silent_since - self._turn_start < c.short_turn:
            wait = max(wait, c.short_wait)
        if self.words_behind():
            wait = max(wait, c.words_grace)
        return wait

    def due_at(self) -> float | None:
        """When the turn will end if the caller stays silent and nothing changes (None: not in a pause)."""
        if not self._in_turn or self._silent_since is None:
            return None
        return self._silent_since + self.required_silence()

    def ended(self, t: float) -> bool:
        """True once (then the detector resets for the next turn) when the caller's turn is over."""
        due = self.due_at()
        if due is None or t < due:
            return False
        self.reset()
        return True

    def reset(self) -> None:
        self._in_turn = False
        self._speaking = False
        self._silent_since = None
        self._p_audio = None
        self._text = ""
        self._interim = ""
        self._p_words = None
        self._stt_endpoint = False
        self._words_at = None
        self._pause += 1

    @property
    def speech_end(self) -> float | None:
        """Start of the current pause (when the caller went quiet)."""
        return self._silent_since
