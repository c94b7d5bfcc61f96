"""repair_wav: a WAV whose writer died mid-recording (kill -9) plays again, with every sample written."""

from __future__ import annotations

import asyncio
import shutil
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from media_helpers import sine

from voipbin.media.errors import MediaParseError
from voipbin.media.recorder import HEADER_SYNC_FRAMES, WRITE_BATCH, Recorder
from voipbin.media.taps import Frame, Tap
from voipbin.media.wav import FRAME_SAMPLES, repair_wav, wav_header, write_wav


def read(path: Path) -> tuple[np.ndarray, int, int, int]:
    """Samples (frames x channels), channels, rate, sample width, read by the strict stdlib reader."""
    with wave.open(str(path), "rb") as wf:
        ch, rate, width = wf.getnchannels(), wf.getframerate(), wf.getsampwidth()
        raw = wf.readframes(wf.getnframes())
        assert len(raw) == wf.getnframes() * ch * width  # the header's size matches the bytes there
    return np.frombuffer(raw, dtype="<i2").reshape(-1, ch), ch, rate, width


def cut_file(path: Path, pcm: bytes, channels: int = 1, declared: int = 0) -> None:
    """A header whose sizes were never finalised (``declared`` data bytes), followed by ``pcm``."""
    header = bytearray(wav_header(channels, 8000, 2, declared))
    path.write_bytes(bytes(header) + pcm)


async def _record_then_copy(
    tmp_path: Path, pcm: np.ndarray, direction: str = "in", stereo: bool = False
) -> tuple[Path, Recorder]:
    """Feed a live Recorder ``pcm`` as tapped frames and copy its file while it is still recording."""
    directions = frozenset({"in", "out"}) if direction == "both" else frozenset({direction})
    tap = Tap(directions, maxsize=1000)
    rec = Recorder(tmp_path / "live.wav", tap, direction, stereo)  # type: ignore[arg-type]
    rec.start()
    n = len(pcm) // FRAME_SAMPLES
    for tick in range(n):
        chunk = pcm[tick * FRAME_SAMPLES : (tick + 1) * FRAME_SAMPLES].astype("<i2").tobytes()
        for d in sorted(directions):
            tap.put(Frame(d, tick, chunk))  # type: ignore[arg-type]
        if tick % 10 == 9:
            await asyncio.sleep(0)
    # The recorder wakes per WRITE_BATCH tapped frames and holds the last tick it saw (its other
    # direction may come next), so this many ticks reach the file before stop().
    consumed = n * len(directions) // WRITE_BATCH * WRITE_BATCH
    expected = -(-consumed // len(directions)) - 1
    for _ in range(500):
        if rec.frames >= expected:
            break
        await asyncio.sleep(0.01)
    assert rec.frames == expected
    copy = tmp_path / "crashed.wav"
    shutil.copyfile(rec.path, copy)  # what kill -9 would leave: the recorder never reached stop()
    return copy, rec


async def test_recording_cut_off_mid_write_is_repaired(tmp_path: Path) -> None:
    pcm = sine(440, 1.7, 6000)  # 85 frames: one header sync (at 50), then 34 more frames unsynced
    copy, rec = await _record_then_copy(tmp_path, pcm)
    written = rec.frames
    try:
        # Mid-call the file is already a valid WAV: the periodic header update covers the first second.
        samples, *_ = read(copy)
        assert HEADER_SYNC_FRAMES * FRAME_SAMPLES <= len(samples) < written * FRAME_SAMPLES
        assert np.array_equal(samples[:, 0], pcm[: len(samples)])
        assert repair_wav(copy) == written * FRAME_SAMPLES
        samples, ch, rate, width = read(copy)
        assert (ch, rate, width) == (1, 8000, 2)
        assert np.array_equal(samples[:, 0], pcm[: written * FRAME_SAMPLES])
        before = copy.read_bytes()
        assert repair_wav(copy) == written * FRAME_SAMPLES  # idempotent
        assert copy.read_bytes() == before
    finally:
        info = await rec.stop()
    assert info.frames == 85
    samples, *_ = read(rec.path)
    assert np.array_equal(samples[:, 0], pcm[: 85 * FRAME_SAMPLES])
    assert repair_wav(rec.path) == 85 * FRAME_SAMPLES  # a finalised recording is left as it is


async def test_stereo_recording_cut_off_is_repaired(tmp_path: Path) -> None:
    pcm = sine(1000, 0.5, 5000)
    copy, rec = await _record_then_copy(tmp_path, pcm, "both", stereo=True)
    try:
        assert repair_wav(copy) == rec.frames * FRAME_SAMPLES
        samples, ch, *_ = read(copy)
        assert ch == 2
        assert np.array_equal(samples[:, 0], pcm[: rec.frames * FRAME_SAMPLES])
        assert np.array_equal(samples[:, 1], pcm[: rec.frames * FRAME_SAMPLES])
    finally:
        await rec.stop()


def test_header_with_zero_sizes(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    pcm = sine(300, 0.3, 7000)
    cut_file(path, pcm.tobytes())
    assert len(read(path)[0]) == 0  # as it is, a reader sees no audio at all
    assert repair_wav(path) == len(pcm)
    samples, *_ = read(path)
    assert np.array_equal(samples[:, 0], pcm)
    assert struct.unpack("<I", path.read_bytes()[4:8])[0] == path.stat().st_size - 8


def test_stdlib_wave_writer_killed_after_first_write(tmp_path: Path) -> None:
    """stdlib ``wave`` writes the header sized for its first chunk and fixes it only at close()."""
    path = tmp_path / "stdlib.wav"
    pcm = sine(500, 1.0, 7000)
    cut_file(path, pcm.tobytes(), declared=3200)  # first chunk 200 ms, then 800 ms more, no close()
    assert repair_wav(path) == len(pcm)
    samples, *_ = read(path)
    assert np.array_equal(samples[:, 0], pcm)


def test_odd_trailing_byte_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "odd.wav"
    pcm = sine(800, 0.2, 7000)
    cut_file(path, pcm.tobytes() + b"\x7f")  # killed half way through writing a sample
    assert repair_wav(path) == len(pcm)
    samples, *_ = read(path)
    assert np.array_equal(samples[:, 0], pcm)
    assert path.stat().st_size == 44 + 2 * len(pcm)


def test_partial_stereo_frame_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    pcm = np.column_stack((sine(400, 0.1), sine(900, 0.1))).astype("<i2")
    cut_file(path, pcm.tobytes() + b"\x01\x02", channels=2)  # left sample of a frame, no right one
    assert repair_wav(path) == len(pcm)
    samples, ch, *_ = read(path)
    assert ch == 2 and np.array_equal(samples, pcm)


@pytest.mark.parametrize("length", [0, 3, 4, 11, 12, 20, 30, 36, 40, 43])
def test_truncated_header_becomes_an_empty_wav(tmp_path: Path, length: int) -> None:
    path = tmp_path / "short.wav"
    path.write_bytes(wav_header(1, 8000, 2, 0)[:length])
    assert repair_wav(path) == 0
    samples, ch, rate, width = read(path)
    assert (len(samples), ch, rate, width) == (0, 1, 8000, 2)
    assert path.stat().st_size == 44


def test_truncated_header_keeps_the_format_it_gives(tmp_path: Path) -> None:
    path = tmp_path / "short16k.wav"
    path.write_bytes(wav_header(2, 16000, 2, 0)[:30])  # the fmt chunk is cut after its sample rate
    assert repair_wav(path) == 0
    samples, ch, rate, width = read(path)
    assert (len(samples), ch, rate, width) == (0, 2, 16000, 2)


def test_good_files_are_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "good.wav"
    pcm = sine(600, 0.5)
    write_wav(path, pcm)
    before = path.read_bytes()
    assert repair_wav(path) == len(pcm)
    assert path.read_bytes() == before
    # A chunk after the data (LIST metadata, as editors write it) is not taken for audio.
    tagged = tmp_path / "tagged.wav"
    info = b"INFOISFT" + struct.pack("<I", 5) + b"test\x00\x00"
    body = before[12:] + b"LIST" + struct.pack("<I", len(info)) + info
    tagged.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    before = tagged.read_bytes()
    assert repair_wav(tagged) == len(pcm)
    assert tagged.read_bytes() == before
    samples, *_ = read(tagged)
    assert np.array_equal(samples[:, 0], pcm)


def test_not_a_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, this is not audio at all" * 4)
    with pytest.raises(MediaParseError):
        repair_wav(path)
    assert path.read_bytes() == b"hello, this is not audio at all" * 4
