"""G.711 against the stdlib reference (audioop) over every input; soxr resampling lengths and pitch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from voipbin.media import g711
from voipbin.media.resample import COMMON_RATES, StreamResampler, resample

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def test_ulaw_encode_matches_audioop_for_all_int16() -> None:
    assert g711.ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES.tobytes(), 2)
    assert g711.ulaw_encode(ALL_SAMPLES.tobytes()) == audioop.lin2ulaw(ALL_SAMPLES.tobytes(), 2)


def test_alaw_encode_matches_audioop_for_all_int16() -> None:
    assert g711.alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES.tobytes(), 2)


def test_decode_matches_audioop_for_all_codes() -> None:
    assert g711.ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert g711.alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize("pt", [g711.PT_PCMU, g711.PT_PCMA])
def test_codec_round_trip_is_stable_and_silence_decodes_to_zero(pt: int) -> None:
    codec = g711.G711Codec(pt)
    once = codec.decode(codec.encode(ALL_SAMPLES))
    assert codec.decode(codec.encode(once)) == once  # quantised values are fixed points
    err = np.abs(np.frombuffer(once, np.int16).astype(np.int32) - ALL_SAMPLES)
    # companding error stays within half a segment step (largest step is 1024 for µ-law, 1024 A-law)
    assert err.max() <= 1024
    assert abs(int(np.frombuffer(codec.decode(bytes([codec.silence])), np.int16)[0])) <= 8
    with pytest.raises(ValueError):
        g711.G711Codec(18)


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


@pytest.mark.parametrize("src", COMMON_RATES)
@pytest.mark.parametrize("dst", COMMON_RATES)
def test_resample_length_and_frequency(src: int, dst: int) -> None:
    t = np.arange(src) / src  # 1 s
    sine = (10000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    out = resample(sine, src, dst)
    assert out.dtype == np.int16
    assert abs(len(out) - dst) <= 2
    assert abs(_peak_hz(out, dst) - 440) < 3


@pytest.mark.parametrize(("src", "dst"), [(48000, 8000), (24000, 8000), (22050, 8000), (8000, 16000)])
def test_stream_resampler_chunks_equal_whole(src: int, dst: int) -> None:
    t = np.arange(src * 2) / src
    sine = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    rs = StreamResampler(src, dst)
    sizes = [1, 7, 480, 333, 1000, 4096]
    parts, pos, i = [], 0, 0
    while pos < len(sine):
        n = sizes[i % len(sizes)]
        parts.append(rs.process(sine[pos : pos + n]))
        pos += n
        i += 1
    parts.append(rs.flush())
    streamed = np.concatenate(parts)
    assert abs(len(streamed) - 2 * dst) <= 2
    assert abs(_peak_hz(streamed, dst) - 300) < 2
    whole = resample(sine, src, dst)
    n = min(len(whole), len(streamed)) - 200
    # identical filter, so the steady-state middle matches to within rounding
    assert np.max(np.abs(whole[200:n].astype(int) - streamed[200:n])) <= 2


def test_stream_resampler_passthrough() -> None:
    rs = StreamResampler(8000, 8000)
    x = np.arange(100, dtype=np.int16)
    assert np.array_equal(rs.process(x.tobytes()), x)
    assert rs.flush().size == 0
