"""Smart Turn's log-mel features: the streamlined computation equals Whisper's direct formulation."""

from __future__ import annotations

import numpy as np
import pytest

from voipbin.speech.turn_model import HOP, N_FFT, RATE, WINDOW_SECS, _hann, _mel_filters, log_mel_features


def _reference(audio16k: np.ndarray) -> np.ndarray:
    """The textbook steps: normalise, centred reflect-padded STFT (801 frames), |X|^2, mel, log10,
    drop the last frame, clamp 8 decades below the peak, scale."""
    n = RATE * WINDOW_SECS
    x = np.asarray(audio16k, dtype=np.float32)[-n:]
    if x.size < n:
        x = np.concatenate([np.zeros(n - x.size, dtype=np.float32), x])
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _hann(), axis=-1)) ** 2
    mel = np.log10(np.maximum(power @ _mel_filters().T, 1e-10)).T[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    return np.asarray((mel + 4.0) / 4.0, dtype=np.float32)


@pytest.mark.parametrize("secs", [0.7, 3.0, 8.0, 11.0])
def test_features_match_the_direct_formulation(secs: float) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(int(secs * RATE)) / RATE
    audio = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(
        t.size
    )
    got = log_mel_features(audio.astype(np.float32))
    assert got.shape == (80, 800) and got.dtype == np.float32
    assert np.allclose(got, _reference(audio), atol=1e-5)
