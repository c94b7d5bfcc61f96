"""PCM16 helpers: resampling (soxr, streaming so chunk borders leave no clicks), WAV parsing, levels."""

from __future__ import annotations

import math
import struct

import numpy as np
import soxr

SUPPORTED_RATES = (8000, 16000)


def check_rate(sample_rate: int) -> int:
    if sample_rate not in SUPPORTED_RATES:
        raise ValueError(f"sample_rate must be one of {SUPPORTED_RATES}, got {sample_rate}")
    return sample_rate


class StreamResampler:
    """Resample a stream of PCM16 mono chunks; identity when the rates match."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._rs = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16")
        self._odd = b""  # a chunk may split a sample in two

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        pcm = self._odd + pcm
        cut = len(pcm) - (len(pcm) % 2)
        pcm, self._odd = pcm[:cut], pcm[cut:]
        if self._rs is None:
            return pcm
        samples = np.frombuffer(pcm, dtype=np.int16)
        return self._rs.resample_chunk(samples, last=last).tobytes()


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """One-shot resample of a whole PCM16 mono buffer."""
    if in_rate == out_rate:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16)
    return soxr.resample(samples, in_rate, out_rate).astype(np.int16).tobytes()


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16).astype(np.float32) / 32768.0


def dbfs(pcm: bytes) -> float:
    """RMS level in dBFS (-inf-safe: silence gives -100)."""
    n = len(pcm) // 2
    if n == 0:
        return -100.0
    # The exact integer energy: a float32 np.dot goes to BLAS, which drops and retakes the GIL on
    # every call (2-3 per 20 ms frame and call: each a chance to wait for another thread's switch
    # interval); int64 dot stays in numpy's own loop. np.mean's Python wrapper costs ~5x either.
    x = np.frombuffer(pcm, dtype=np.int16, count=n).astype(np.int64)
    rms = math.sqrt(int(np.dot(x, x)) / n) / 32768.0
    return 20 * math.log10(rms) if rms > 1e-5 else -100.0


def volume(pcm: bytes) -> float:
    """Loudness on 0..1: -70 dBFS -> 0, -20 dBFS -> 1 (so VoIPBIN's default min_volume 0.6 is -40 dBFS)."""
    return min(1.0, max(0.0, (dbfs(pcm) + 70.0) / 50.0))


def parse_wav_header(buf: bytes) -> tuple[int, int, int, int] | None:
    """Find the PCM payload in a RIFF/WAVE prefix.

    Returns (sample_rate, channels, bits, data_offset) or None if more bytes are needed. Streaming
    producers (espeak-ng --stdout) write a placeholder data size, so the size field is ignored.
    """
    if len(buf) < 12:
        return None
    if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos = 12
    fmt: tuple[int, int, int] | None = None
    while pos + 8 <= len(buf):
        cid, size = buf[pos : pos + 4], struct.unpack("<I", buf[pos + 4 : pos + 8])[0]
        body = pos + 8
        if cid == b"data":
            if fmt is None:
                raise ValueError("WAV data chunk before fmt chunk")
            return fmt[0], fmt[1], fmt[2], body
        if body + size > len(buf):
            return None
        if cid == b"fmt ":
            audio_format, channels, rate = struct.unpack("<HHI", buf[body : body + 8])
            bits = struct.unpack("<H", buf[body + 14 : body + 16])[0]
            if audio_format != 1 or bits != 16:
                raise ValueError("only PCM16 WAV is supported")
            fmt = (rate, channels, bits)
        pos = body + size + (size & 1)
    return None


def chunked(pcm: bytes, size: int) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap PCM16 mono in a minimal RIFF/WAVE header (for batch recognisers that take files)."""
    pcm = pcm[: len(pcm) - len(pcm) % 2]
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16,
        b"data", len(pcm),
    )  # fmt: skip
    return header + pcm
