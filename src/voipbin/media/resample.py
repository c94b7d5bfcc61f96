"""int16 sample-rate conversion (8k / 16k / 22.05k / 24k / 48k and any other rate) on top of soxr.

``resample`` converts a whole buffer; ``StreamResampler`` keeps filter state across chunks so a
stream cut into arbitrary pieces (TTS chunks, STT feeds) converts without clicks at the seams.
"""

from __future__ import annotations

import numpy as np
import soxr

COMMON_RATES = (8000, 16000, 22050, 24000, 48000)


def _as_int16(pcm: bytes | np.ndarray) -> np.ndarray:
    if isinstance(pcm, np.ndarray):
        return pcm.astype(np.int16, copy=False)
    return np.frombuffer(pcm, dtype=np.int16)


def resample(pcm: bytes | np.ndarray, in_rate: int, out_rate: int, quality: str = "HQ") -> np.ndarray:
    """Convert a complete mono int16 buffer; returns an int16 array."""
    x = _as_int16(pcm)
    if in_rate == out_rate or x.size == 0:
        return x.copy()
    return soxr.resample(x, in_rate, out_rate, quality=quality)


class StreamResampler:
    """Chunked mono int16 resampler; call ``process`` per chunk and ``flush`` once at the end."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._passthrough = in_rate == out_rate
        self._stream = (
            None
            if self._passthrough
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)
        )

    def process(self, pcm: bytes | np.ndarray) -> np.ndarray:
        x = _as_int16(pcm)
        if self._stream is None:
            return x.copy()
        return self._stream.resample_chunk(x, last=False)

    def flush(self) -> np.ndarray:
        """Drain the filter's delay line (the tail of the stream)."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        return self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
