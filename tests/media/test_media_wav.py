"""WAV sources: common sample widths, rates and channel counts become 8 kHz mono int16."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from media_helpers import peak_hz, rms, sine

from voipbin.media.errors import MediaParseError
from voipbin.media.wav import iter_wav_pcm, pcm_frames, read_wav, write_wav


def _write(path: Path, x: np.ndarray, rate: int, channels: int, width: int) -> None:
    if channels == 2:
        x = np.column_stack((x, x)).reshape(-1)
    if width == 1:
        raw = ((x.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    elif width == 2:
        raw = x.astype("<i2").tobytes()
    elif width == 3:
        v = x.astype(np.int32) << 8
        raw = np.column_stack(((v & 0xFF), (v >> 8) & 0xFF, (v >> 16) & 0xFF)).astype(np.uint8).tobytes()
    else:
        raw = (x.astype(np.int32) << 16).astype("<i4").tobytes()
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(channels)
        wf.setsampwidth(width)
        wf.setframerate(rate)
        wf.writeframes(raw)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_read_wav_any_format(tmp_path: Path, rate: int, channels: int, width: int) -> None:
    src = sine(600, 0.5, 10000, rate)
    path = tmp_path / "x.wav"
    _write(path, src, rate, channels, width)
    out = read_wav(path)
    assert out.dtype == np.int16
    assert abs(len(out) - 4000) <= 2
    assert abs(peak_hz(out) - 600) < 10
    assert abs(rms(out) - rms(sine(600, 0.5, 10000))) < 0.05 * rms(sine(600, 0.5, 10000))


def test_streaming_read_is_chunked(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    write_wav(path, sine(300, 5.0, rate=48000), rate=48000)
    chunks = list(iter_wav_pcm(path, block_frames=4800))
    assert len(chunks) > 20 and max(len(c) for c in chunks) < 4000  # never the whole file at once
    assert abs(sum(len(c) for c in chunks) - 40000) <= 2


def test_not_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(MediaParseError):
        read_wav(path)


def test_pcm_frames_pads_last() -> None:
    frames = list(pcm_frames(np.ones(400, np.int16)))
    assert [len(f) for f in frames] == [320, 320, 320]
    assert np.frombuffer(frames[-1], np.int16)[80:].sum() == 0
