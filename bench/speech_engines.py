"""Speech engine costs, measured side by side in one run.

TTS (Piper, espeak-ng): time to first audio and real-time factor for a 10-word sentence at 8 kHz.
STT (Whisper tiny.en): real-time factor on that sentence after a G.711 µ-law round trip.
VAD: cost per 32 ms frame of Silero (onnxruntime) vs webrtcvad, and the gated segmenter on a
call-like mix (70 % silence). Run: ``.venv/bin/python bench/speech_engines.py``.
"""

from __future__ import annotations

import asyncio
import platform
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from voipbin.speech.registry import create_tts
from voipbin.speech.stt_whisper import transcribe_pcm, whisper_model
from voipbin.speech.vad import SileroVAD, VadSegmenter, WebRtcGate

SENTENCE = "Please transfer me to the billing department before five today."


async def tts_bench(engine: str, runs: int = 5) -> None:
    await create_tts(engine).read_all_of("Warm up.")
    ttfa, rtf = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        first, pcm = None, b""
        async for c in create_tts(engine).synthesize(SENTENCE):
            first = first or time.perf_counter() - t0
            pcm += c
        total = time.perf_counter() - t0
        ttfa.append(first)
        rtf.append(total / (len(pcm) / 16000))
    print(
        f"TTS {engine:7s} TTFA median {sorted(ttfa)[runs // 2] * 1000:7.1f} ms",
        f"  RTF {sorted(rtf)[runs // 2]:.3f}",
    )


async def stt_bench(runs: int = 3) -> bytes:
    pcm = await create_tts("piper").read_all_of(SENTENCE)
    pcm = audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)
    whisper_model()
    await transcribe_pcm(pcm, 8000)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rec = await transcribe_pcm(pcm, 8000)
        times.append(time.perf_counter() - t0)
    dur = len(pcm) / 16000
    print(
        f"STT whisper tiny.en  RTF {sorted(times)[runs // 2] / dur:.3f} ({dur:.1f} s audio) -> {rec.text!r}"
    )
    return pcm


def vad_bench(speech: bytes) -> None:
    frame = speech[4000:4512]
    silero, gate = SileroVAD(8000), WebRtcGate(8000)
    n = 3000
    t0 = time.perf_counter()
    for _ in range(n):
        silero.probability(frame)
    s = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        gate.is_speech(frame)
    w = (time.perf_counter() - t0) / n
    print(
        f"VAD per 32 ms frame @8k: silero {s * 1e6:7.1f} µs",
        f"  webrtcvad(3x10 ms) {w * 1e6:6.1f} µs   ratio {s / w:.0f}x",
    )
    call = (b"\0\0" * 8000 * 7 + speech[: 16000 * 3]) * 3  # 30 s, ~70 % silence
    for use_gate in (False, True):
        seg = VadSegmenter(8000, use_gate=use_gate)
        t0 = time.perf_counter()
        seg.feed(call)
        el = time.perf_counter() - t0
        frames = len(call) // 512
        print(
            f"VAD segmenter gate={use_gate!s:5s}: {el / frames * 1e6:6.1f} µs/frame, "
            f"silero ran on {seg.silero_frames}/{frames} frames, "
            f"{el / (len(call) / 16000) * 100:.3f} % of real time"
        )


async def main() -> None:
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()},",
        f"python {platform.python_version()}",
    )
    await tts_bench("piper")
    await tts_bench("espeak")
    speech = await stt_bench()
    vad_bench(speech)


if __name__ == "__main__":
    asyncio.run(main())
