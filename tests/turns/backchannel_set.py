"""The labelled barge-in set: backchannels (must not interrupt) and interruptions (must), through G.711.

Each phrase is synthesised offline by Piper (``en_US-joe-medium``, the project's offline voice) at
three speaking rates (length_scale 0.85 / 1.0 / 1.25, noise inputs at 0 so synthesis is
deterministic), resampled to 8 kHz, a faint seeded noise floor added (-60 dBFS) and µ-law encoded
and decoded like a phone call. Cached under ``var/cache/bargeinset/<hash>``;
``python -m tests.turns.backchannel_set`` (re)builds it.

:func:`decide` replays one clip through the session's decision path offline: the fast onset
detector (does it pause our audio, and how long is the voice) and the offline recogniser (Whisper)
on the clip, then the session's rule (:mod:`voipbin.ai.session.pipeline`): words that are not a
backchannel, or voice lasting ``CONFIRM_SECS``, interrupt; anything else resumes the reply.
Used by ``tests/turns/test_barge_in_backchannels.py`` (behaviour) and ``bench/barge_in.py`` (rates).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sys
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RATE = 8000
LEAD_SECS = 0.2
TAIL_SECS = 0.6
SCALES = (0.85, 1.0, 1.25)

BACKCHANNELS: tuple[str, ...] = (
    "Mhm.", "Mm-hmm.", "Okay.", "Yeah.", "Uh-huh.", "Right.", "I see.", "Yes.", "Sure.",
    "Okay, okay.", "Yeah, right.", "Got it.", "Alright.", "Yep.", "Oh, okay.", "I see, yeah.",
)  # fmt: skip
INTERRUPTIONS: tuple[str, ...] = (
    "Stop.", "Wait, no.", "Hold on.", "No, that's wrong.", "Actually, I want to cancel.",
    "Can you repeat that?", "What about Tuesday?", "Sorry, I need a taxi.",
)  # fmt: skip


@dataclass
class Clip:
    id: str
    text: str
    backchannel: bool  # the label: True = must not interrupt
    pcm: bytes = field(repr=False)


def _digest() -> str:
    blob = json.dumps([BACKCHANNELS, INTERRUPTIONS, SCALES]).encode()
    return hashlib.sha256(blob + b"piper-noise0-v1").hexdigest()[:12]


def cache_dir() -> Path:
    return ROOT / "var" / "cache" / "bargeinset" / _digest()


def _synthesize(text: str, scale: float, seed: int) -> bytes:
    from piper import SynthesisConfig

    from voipbin.media.g711 import ulaw_decode, ulaw_encode
    from voipbin.speech.audio import resample
    from voipbin.speech.tts_piper import piper_voice

    voice = piper_voice()
    cfg = SynthesisConfig(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)
    pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize(text, cfg))
    speech = np.frombuffer(resample(pcm, voice.config.sample_rate, RATE), dtype=np.int16)
    audio = np.concatenate(
        [np.zeros(int(LEAD_SECS * RATE)), speech.astype(np.float64), np.zeros(int(TAIL_SECS * RATE))]
    )
    rng = np.random.default_rng(seed)
    audio += rng.normal(0.0, 32768 * 10 ** (-60 / 20), audio.size)  # -60 dBFS line noise
    pcm16 = np.clip(audio, -32768, 32767).astype(np.int16)
    return bytes(ulaw_decode(ulaw_encode(pcm16)))


def load_set() -> list[Clip]:
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers share the cache: one builds it, the others wait for it and then read it.
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _load(folder)


def _load(folder: Path) -> list[Clip]:
    clips = []
    phrases = [(t, True) for t in BACKCHANNELS] + [(t, False) for t in INTERRUPTIONS]
    n = 0
    for p, (text, label) in enumerate(phrases):
        for s, scale in enumerate(SCALES):
            clip_id = f"{'b' if label else 'x'}{p:02d}s{s}"
            wav = folder / f"{clip_id}.wav"
            if not wav.exists():
                tmp = wav.with_suffix(".tmp")
                with wave.open(str(tmp), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(RATE)
                    w.writeframes(_synthesize(text, scale, seed=n))
                tmp.replace(wav)
            with wave.open(str(wav), "rb") as w:
                clips.append(Clip(clip_id, text, label, w.readframes(w.getnframes())))
            n += 1
    return clips


@dataclass
class Decision:
    clip: Clip
    paused: bool  # the fast onset path fired (our audio would pause)
    voiced_secs: float  # the longest voiced run the onset detector heard
    heard: str  # what the recogniser wrote
    interrupted: bool  # the session's verdict: cancel the reply (else resume it)


async def decide(clip: Clip, *, min_volume: float = 0.6) -> Decision:
    from voipbin.ai.session.pipeline import CONFIRM_SECS
    from voipbin.speech.backchannel import is_acknowledgement
    from voipbin.speech.onset import OnsetDetector
    from voipbin.speech.stt_whisper import transcribe_pcm

    det = OnsetDetector(RATE, min_volume=min_volume)
    # As the session measures it: from the first onset to the end of the last voice.
    onset_at: float | None = None
    longest = 0.0
    for i in range(0, len(clip.pcm) - 319, 320):
        ev = det.feed(clip.pcm[i : i + 320])
        if ev is not None and ev.kind == "onset" and onset_at is None:
            onset_at = ev.time
        elif ev is not None and ev.kind == "quiet" and onset_at is not None:
            longest = ev.time - onset_at
    paused = onset_at is not None
    if det.voice and onset_at is not None:
        longest = det.time - onset_at
    result = await transcribe_pcm(clip.pcm, RATE, "en")
    heard = result.text.strip()
    ack = is_acknowledgement(heard, confidence=result.confidence, voiced_secs=longest, language="en")
    interrupted = paused and (longest >= CONFIRM_SECS or not ack)
    return Decision(clip, paused, longest, heard, interrupted)


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "src")]
    out = load_set()
    print(f"{len(out)} clips in {cache_dir()}")
