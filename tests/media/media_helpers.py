"""Shared helpers for the media tests (imported by test modules; conftest puts this dir on sys.path)."""

from __future__ import annotations

import asyncio

import numpy as np

from voipbin.media import MediaSession
from voipbin.media.jitter import JitterBuffer
from voipbin.media.taps import Tap


def sine(freq: float, seconds: float, amp: int = 8000, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_hz(x: np.ndarray, rate: int = 8000) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


async def collect(tap: Tap, seconds: float) -> list:
    """Frames delivered to ``tap`` during ``seconds``."""
    frames = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            async with asyncio.timeout(left):
                frames.append(await tap.get())
        except TimeoutError:
            break
    return frames


def pcm_of(frames: list) -> np.ndarray:
    return np.frombuffer(b"".join(f.pcm for f in frames), dtype=np.int16)


async def make_pair(
    pt_a: int = 0, pt_b: int = 0, dtmf: int | None = 101
) -> tuple[MediaSession, MediaSession]:
    """Two sessions talking to each other. Their jitter buffers may hold 1 s, so a scheduler stall on
    this shared test machine never forces an overflow drop: bit-exactness assertions then test the
    codec and transport, not the machine's load."""
    a = await MediaSession.create(host="127.0.0.1", jitter=JitterBuffer(target=2, max_depth=50))
    b = await MediaSession.create(host="127.0.0.1", jitter=JitterBuffer(target=2, max_depth=50))
    a.negotiate("127.0.0.1", b.local_port, pt_a, dtmf)
    b.negotiate("127.0.0.1", a.local_port, pt_b, dtmf)
    a.start()
    b.start()
    return a, b
