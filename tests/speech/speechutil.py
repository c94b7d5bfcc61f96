"""Helpers for speech tests: WER, G.711 round trip, silence padding, speech onset truth."""

from __future__ import annotations

import re
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # stdlib G.711 (deprecated in 3.11, fine for tests)

_NUMBERS = dict(
    enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"])
)


def normalize(text: str) -> list[str]:
    words = re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()
    return [_NUMBERS.get(int(w), w) if w.isdigit() and int(w) in _NUMBERS else w for w in words]


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference), normalize(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))


def ulaw_roundtrip(pcm: bytes) -> bytes:
    return audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)


def silence(secs: float, rate: int) -> bytes:
    return b"\0\0" * int(secs * rate)


def speech_bounds(pcm: bytes, rate: int, threshold_dbfs: float = -40.0) -> tuple[float, float]:
    """Ground truth: first and last 10 ms window louder than ``threshold_dbfs``."""
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64) / 32768
    win = rate // 100
    n = len(x) // win
    rms = np.sqrt((x[: n * win].reshape(n, win) ** 2).mean(axis=1))
    loud = np.nonzero(20 * np.log10(np.maximum(rms, 1e-9)) > threshold_dbfs)[0]
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def frames(pcm: bytes, rate: int, ms: int = 20) -> list[bytes]:
    size = rate * ms // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


SENTENCE = "Please transfer me to the billing department before five today."
