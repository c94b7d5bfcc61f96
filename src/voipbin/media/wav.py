"""WAV sources: read common WAV files (8/16/24-bit... PCM, any rate, mono or stereo) as 8 kHz mono int16.

Uses stdlib ``wave`` plus :mod:`voipbin.media.resample`; files are streamed in blocks, never loaded whole,
so long prompts cost no memory. ``pcm_frames`` cuts any PCM into 20 ms frames for the playout queue.

``wav_header`` builds the canonical 44-byte PCM header the recorder writes; ``repair_wav`` fixes the
sizes of a WAV whose writer died before finalising it (``kill -9`` mid-recording), so the audio
written so far plays.
"""

from __future__ import annotations

import os
import struct
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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


# --- crash repair ------------------------------------------------------------------------------------

WAV_HEADER_BYTES = 44
_RIFF_MAX = 0xFFFFFFFF


def wav_header(channels: int = 1, rate: int = MEDIA_RATE, sampwidth: int = 2, data_bytes: int = 0) -> bytes:
    """The canonical 44-byte PCM header (RIFF, 16-byte ``fmt ``, ``data``), as stdlib ``wave`` writes it."""
    block = channels * sampwidth
    data_bytes = min(data_bytes, _RIFF_MAX - 36)
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, channels, rate, rate * block, block,
        sampwidth * 8, b"data", data_bytes,
    )  # fmt: skip


@dataclass(slots=True)
class _Fmt:
    channels: int = 1
    rate: int = MEDIA_RATE
    sampwidth: int = 2
    block_align: int = 2


def _parse_fmt(body: bytes) -> _Fmt:
    """Whatever a (possibly cut-off) ``fmt `` body says; absent fields keep the recorder's defaults."""
    fmt = _Fmt()
    if len(body) >= 4:
        fmt.channels = struct.unpack_from("<H", body, 2)[0] or 1
    if len(body) >= 8:
        fmt.rate = struct.unpack_from("<I", body, 4)[0] or MEDIA_RATE
    if len(body) >= 16:
        bits = struct.unpack_from("<H", body, 14)[0]
        fmt.sampwidth = (bits + 7) // 8 or 2
    fmt.block_align = fmt.channels * fmt.sampwidth
    if len(body) >= 14:
        fmt.block_align = struct.unpack_from("<H", body, 12)[0] or fmt.block_align
    return fmt


def _chunks_reach_end(fh: BinaryIO, pos: int, size: int) -> bool:
    """The bytes from ``pos`` to the end of the file are a chain of well-formed chunks ending exactly at
    the end (the way real trailing chunks such as LIST look; PCM audio practically never does)."""
    while pos < size:
        fh.seek(pos)
        hdr = fh.read(8)
        if len(hdr) < 8:
            return False
        cid, clen = struct.unpack("<4sI", hdr)
        if not all(32 <= c < 127 for c in cid):
            return False
        pos += 8 + clen
        if pos > size:
            return False
        pos += clen & 1
    return True


def repair_wav(path: str | Path) -> int:
    """Make a WAV cut off mid-write readable again; returns the sample frames it holds afterwards.

    Finds the ``data`` chunk and sets the RIFF and data sizes from the real file length, dropping a
    trailing partial sample frame (the file is truncated to whole frames). A file whose header itself
    is incomplete (no complete ``data`` chunk header, e.g. shorter than 44 bytes) is rewritten as a
    valid empty WAV of the format its ``fmt `` chunk gives (8 kHz 16-bit mono where it says nothing).
    A good file is left untouched, so repairing twice is harmless. Synchronous file I/O: async
    callers run it in a thread. Raises :class:`MediaParseError` for a file that is not RIFF/WAVE.
    """
    path = Path(path)
    with open(path, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(12)
        if head[:4] != b"RIFF"[: len(head[:4])] or head[8:12] != b"WAVE"[: len(head[8:12])]:
            raise MediaParseError(f"{path.name} is not a RIFF/WAVE file")
        fmt = _Fmt()
        pos, data_at, declared = 12, -1, 0
        while pos + 8 <= size:
            fh.seek(pos)
            cid, clen = struct.unpack("<4sI", fh.read(8))
            if cid == b"data":
                data_at, declared = pos + 8, clen
                break
            if cid == b"fmt ":
                fmt = _parse_fmt(fh.read(min(clen, 64)))
            pos += 8 + clen + (clen & 1)
        if data_at < 0:  # no complete data chunk header: there is no audio to recover
            fh.seek(0)
            fh.write(wav_header(fmt.channels, fmt.rate, fmt.sampwidth, 0))
            fh.truncate()
            return 0
        block = max(1, fmt.block_align)
        riff_declared = struct.unpack("<I", head[4:8])[0]
        avail = size - data_at
        if 0 < declared < avail and _chunks_reach_end(fh, data_at + declared + (declared & 1), size):
            # Real chunks follow the data: the data size is right, only the RIFF size may be off.
            if riff_declared != size - 8:
                fh.seek(4)
                fh.write(struct.pack("<I", min(size - 8, _RIFF_MAX)))
            return declared // block
        # The data chunk runs to the end of the file (how every recorder writes it).
        data_len = min(avail - avail % block, _RIFF_MAX - data_at)
        if data_len != avail:
            fh.truncate(data_at + data_len)
        riff = data_at + data_len - 8
        if riff_declared != riff:
            fh.seek(4)
            fh.write(struct.pack("<I", riff))
        if declared != data_len:
            fh.seek(data_at - 4)
            fh.write(struct.pack("<I", data_len))
        return data_len // block
