"""WAV sources: read common WAV files (8/16/24-bit... PCM, any rate, mono or stereo) as 8 kHz mono int16.

Uses stdlib ``wave`` plus :mod:`voipbin.media.resample`; files are streamed in blocks, never loaded whole,
so long prompts cost no memory. ``pcm_frames`` cuts any PCM into 20 ms frames for the playout queue.
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np

from voipbin.media.errors import MediaParseError
from voipbin.media.resample import StreamResampler

MEDIA_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_BYTES = FRAME_SAMPLES * 2


def _to_int16_mono(raw: bytes, sampwidth: int, channels: int) -> np.ndarray:
    if sampwidth == 1:  # 8-bit WAV is unsigned
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8
    elif sampwidth == 2:
        x = np.frombuffer(raw, dtype="<i2")
    elif sampwidth == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        x = ((b[:, 2].astype(np.int8).astype(np.int32) << 8) | b[:, 1]).astype(np.int16)
    elif sampwidth == 4:
        x = (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    else:
        raise MediaParseError(f"unsupported WAV sample width {sampwidth}")
    if channels > 1:
        x = (
            x[: len(x) - len(x) % channels]
            .reshape(-1, channels)
            .astype(np.int32)
            .mean(axis=1)
            .astype(np.int16)
        )
    return x


def iter_wav_pcm(path: str | Path, rate: int = MEDIA_RATE, block_frames: int = 8192) -> Iterator[np.ndarray]:
    """Yield the file as mono int16 chunks at ``rate``."""
    try:
        wf = wave.open(str(path), "rb")  # noqa: SIM115 - used as a context manager below
    except (wave.Error, EOFError) as exc:
        raise MediaParseError(f"not a PCM WAV file: {exc}") from exc
    with wf:
        channels, width, in_rate = wf.getnchannels(), wf.getsampwidth(), wf.getframerate()
        rs = StreamResampler(in_rate, rate)
        while True:
            raw = wf.readframes(block_frames)
            if not raw:
                break
            out = rs.process(_to_int16_mono(raw, width, channels))
            if out.size:
                yield out
        tail = rs.flush()
        if tail.size:
            yield tail


def read_wav(path: str | Path, rate: int = MEDIA_RATE) -> np.ndarray:
    chunks = list(iter_wav_pcm(path, rate))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def pcm_frames(pcm: bytes | np.ndarray, frame_samples: int = FRAME_SAMPLES) -> Iterator[bytes]:
    """Cut PCM into frames of ``frame_samples``; the last one is zero-padded."""
    x = pcm if isinstance(pcm, np.ndarray) else np.frombuffer(pcm, dtype=np.int16)
    x = x.astype(np.int16, copy=False)
    for i in range(0, len(x), frame_samples):
        f = x[i : i + frame_samples]
        if len(f) < frame_samples:
            f = np.concatenate([f, np.zeros(frame_samples - len(f), dtype=np.int16)])
        yield f.tobytes()


async def wav_source(path: str | Path) -> AsyncIterator[np.ndarray]:
    """Async adapter so a WAV file can be handed to ``play``."""
    for chunk in iter_wav_pcm(path):
        yield chunk


def write_wav(path: str | Path, pcm: bytes | np.ndarray, rate: int = MEDIA_RATE, channels: int = 1) -> None:
    data = pcm.astype("<i2").tobytes() if isinstance(pcm, np.ndarray) else pcm
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(channels)
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(data)
