"""Replay a labelled item through :class:`TurnDetector` frame by frame, in simulated time.

The same VAD the call path uses (:class:`VadSegmenter`, 32 ms Silero frames) gives the per-frame
voice flags; the Smart Turn model runs for real on the turn's audio so far when the detector asks,
and its answer is delivered ``model_latency`` seconds later (``None``: the measured inference time).
The transcript plays the part of a streaming STT: interim words arrive during each part (spread
over its speech by length), the part's final at its end, each ``text_delay`` seconds late.
Used by ``tests/turns`` (behaviour) and ``bench/turn_detection.py`` (rates and delays).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tests.turns.labelled_set import LEAD_SECS as LEAD
from tests.turns.labelled_set import Item
from voipbin.speech.turn_detector import TurnConfig, TurnDetector
from voipbin.speech.turn_model import completion_probability_blocking
from voipbin.speech.vad import VadConfig, VadSegmenter, VadState

RATE = 8000
PRE_ROLL = 0.5  # audio before the turn's first voice that the model also hears
DETECTOR_VAD = VadConfig(confidence=0.6, start_secs=0.064, stop_secs=30.0, min_volume=0.45)


@dataclass
class Outcome:
    item_id: str
    ended_at: float | None  # when the detector ended the turn (None: never)
    cut_off: bool  # ended before the caller finished (in a mid-sentence pause, or at a comma)
    delay: float | None  # ended_at - true speech end, when it ended after the last part
    model_runs: int
    silence: float | None = None  # how long the caller had been quiet (by the VAD) when it ended
    stale_runs: int = 0  # model answers that came after the caller spoke again (wasted inference)


_TRAILING_MARKS = ".,;:!?…-"
INTERIM_LAG = 0.1  # a streaming STT's interim words trail the audio (~100-300 ms)


def _unmarked(text: str) -> str:
    """The words as far as they go, without the punctuation at their end: the sentence's own marks
    say where the labelled set cut it ("." on a complete turn, none or "," before a pause), and a
    real recogniser's punctuation at a pause is a guess, not the truth. Inner marks stay."""
    return text.rstrip().rstrip(_TRAILING_MARKS).rstrip()


def word_times(item: Item, delay: float) -> list[tuple[float, str, bool]]:
    """When a streaming STT would deliver each word: interim results spread over the part's speech
    in proportion to the words' lengths (no word timings from the synthesiser), ``INTERIM_LAG``
    behind so an estimate never runs ahead of the audio into the next pause, the final at its end.
    Each delivery is the text so far without its trailing punctuation (:func:`_unmarked`)."""
    out: list[tuple[float, str, bool]] = []
    begins = [LEAD] + [b for _, b in item.pauses]
    for begin, end, text in zip(begins, item.part_ends, item.spec.parts, strict=True):
        words = text.split()
        total = sum(len(w) for w in words)
        done = 0
        for k, w in enumerate(words[:-1]):
            done += len(w)
            at = min(begin + (end - begin) * done / total + INTERIM_LAG, end)
            out.append((at + delay, _unmarked(" ".join(words[: k + 1])), False))
        out.append((end + delay, _unmarked(text), True))
    return out


def replay(
    item: Item,
    config: TurnConfig,
    *,
    model_latency: float | None = 0.1,
    text_delay: float = 0.0,
    probability: dict[tuple[str, int], float] | None = None,
) -> Outcome:
    """``probability`` caches model answers by (item, audio length) across configs of one run."""
    seg = VadSegmenter(RATE, DETECTOR_VAD)
    det = TurnDetector(config, language="en")
    det.set_question(item.spec.question)
    frame = seg.frame_bytes
    frame_secs = seg.frame_secs
    texts = word_times(item, text_delay)
    pending_model: list[tuple[float, int, float]] = []  # (deliver at, pause id, p)
    first_voice: float | None = None
    runs = 0
    stale = 0
    ended_at: float | None = None
    silence: float | None = None
    n = len(item.pcm) // frame
    for i in range(n):
        t = (i + 1) * frame_secs  # the frame has been heard completely
        seg.feed(item.pcm[i * frame : (i + 1) * frame])
        speech = seg.state in (VadState.SPEAKING, VadState.STARTING)
        if speech and first_voice is None:
            first_voice = t - frame_secs
        det.voice(t - frame_secs, speech)
        while texts and texts[0][0] <= t:
            _, words, final = texts.pop(0)
            det.text(words, final=final)
        for entry in [p for p in pending_model if p[0] <= t]:
            pending_model.remove(entry)
            stale += entry[1] != det.current_pause
            det.audio_probability(entry[1], entry[2])
        pause = det.model_request(t)
        if pause is not None and first_voice is not None:
            start = max(0, int((first_voice - PRE_ROLL) * RATE) * 2)
            end = int(t * RATE) * 2
            key = (item.spec.id, end)
            began = time.perf_counter()
            if probability is not None and key in probability:
                p = probability[key]
            else:
                p = completion_probability_blocking(item.pcm[start:end], RATE)
                if probability is not None:
                    probability[key] = p
            runs += 1
            took = time.perf_counter() - began if model_latency is None else model_latency
            pending_model.append((t + took, pause, p))
        due = det.due_at()
        quiet = det.speech_end
        if due is not None and due <= t and det.ended(t):
            # The decision could not precede the frame that made it due; inside the frame, at ``due``.
            ended_at = max(due, t - frame_secs)
            silence = ended_at - quiet if quiet is not None else None
            break
    cut = ended_at is not None and ended_at < item.speech_end - 0.01
    delay = ended_at - item.speech_end if ended_at is not None and ended_at >= item.speech_end else None
    return Outcome(item.spec.id, ended_at, cut, delay, runs, silence, stale)


# The ablation the issue asks for: each part alone, each pair, all three. The fixed-wait configs end
# at ``stop_secs`` of silence unless what they use says "unfinished" (then at ``max_wait``).
DEFAULT = "combined (default)"
CONFIGS: dict[str, TurnConfig] = {
    "silence 0.5 s (old offline STT)": TurnConfig(
        use_audio_model=False, use_words=False, adaptive=False, stop_secs=0.5
    ),
    "audio model alone": TurnConfig(use_audio_model=True, use_words=False, adaptive=False),
    "words alone": TurnConfig(use_audio_model=False, use_words=True, adaptive=False),
    "audio model + words": TurnConfig(use_audio_model=True, use_words=True, adaptive=False),
    "audio model + adaptive wait": TurnConfig(use_audio_model=True, use_words=False, adaptive=True),
    "words + adaptive wait": TurnConfig(use_audio_model=False, use_words=True, adaptive=True),
    DEFAULT: TurnConfig(),
}
