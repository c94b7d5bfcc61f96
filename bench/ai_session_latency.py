"""AI conversation latency: caller stops speaking -> first AI audio, with the offline engines.

Runs the real ``AISession`` (VAD + Whisper tiny.en + ``offline.scripted`` + Piper or espeak-ng) on
the in-memory call of the engine tests (``tests/flow/memcall.py``: real-time 20 ms frames in and
out). The caller asks a few questions (Piper speech); for each turn the session records the time
from the caller going quiet to the first synthesised audio handed to playout. Measured side by side
in the same run, the parts it is made of:

* the end-of-turn wait: the turn detector (Smart Turn + words + adaptive wait, the default) and, as
  the old behaviour, a fixed 0.5 s of silence (``smart_turn`` off, ``vad_config.stop_secs`` 0.5),
* Whisper on the utterance alone,
* TTS time to first audio of the answer alone,

so "overhead" = end-to-end - (turn wait + STT + TTS) is what the pipeline itself adds. With the
detector the wait is not a constant; it is shown as end-to-end minus the fixed-wait run's figure.

    .venv/bin/python bench/ai_session_latency.py [--tts piper,espeak] [--turns 4]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.flow.memcall import MemoryCall  # noqa: E402
from voipbin.ai.llm.scripted import ScriptedLLM  # noqa: E402
from voipbin.ai.session import AICallRecord, AISession, SessionConfig  # noqa: E402
from voipbin.events.bus import EventBus  # noqa: E402
from voipbin.phone.speech import synthesize  # noqa: E402
from voipbin.speech.registry import create_tts  # noqa: E402
from voipbin.speech.stt_whisper import transcribe_pcm, whisper_model  # noqa: E402
from voipbin.speech.vad import VadConfig  # noqa: E402

QUESTIONS = ["What time do you open?", "Who are you?", "Thank you.", "I need a human."]


def med(xs: list[float]) -> float:
    return statistics.median(xs) * 1000 if xs else float("nan")


async def tts_first_audio(engine: str, text: str) -> float:
    t0 = time.perf_counter()
    tts = create_tts(engine)
    async for _ in tts.synthesize(text):
        break
    first = time.perf_counter() - t0
    await tts.aclose()
    return first


async def run(engine: str, turns: int, smart_turn: bool) -> float:
    call = MemoryCall(None, uuid.uuid4(), uuid.uuid4())  # type: ignore[arg-type]  # audio port only
    call.answered = True
    cfg = SessionConfig(
        engine_model="offline.scripted",
        tts_type=engine,
        stt_type="whisper",
        stt_language="en-US",
        smart_turn=smart_turn,
        vad=VadConfig() if smart_turn else VadConfig(stop_secs=0.5),
    )
    llm = ScriptedLLM()
    record = AICallRecord(EventBus(), uuid.uuid4(), uuid.uuid4(), call.call_id, cfg)
    session = AISession(call, cfg, llm, record, {}, barge_in=True)
    task = asyncio.create_task(session.run())
    await create_tts(engine).read_all_of("Warm up.")
    await asyncio.to_thread(whisper_model)
    stt_times, tts_times = [], []
    questions = (QUESTIONS * turns)[:turns]
    for q in questions:
        pcm = await synthesize(q, "piper")
        call.speak(pcm, q)
        answers = sum(1 for m in record.messages if m["role"] == "assistant")
        while sum(1 for m in record.messages if m["role"] == "assistant") == answers:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        answer = [m for m in record.messages if m["role"] == "assistant"][-1]["content"]
        t0 = time.perf_counter()
        await transcribe_pcm(pcm, 8000)
        stt_times.append(time.perf_counter() - t0)
        tts_times.append(await tts_first_audio(engine, answer))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    e2e = session.metrics.turn_latencies
    hang = 0.5 if not smart_turn else 0.0
    parts = hang + statistics.median(stt_times) + statistics.median(tts_times)
    e2e_ms, parts_ms = med(e2e), parts * 1000
    mode = "turn detector" if smart_turn else "fixed 0.5 s"
    print(
        f"tts={engine:6s} {mode:13s} turns={len(e2e)}  end-to-end median {e2e_ms:6.0f} ms "
        f"(min {min(e2e) * 1000:.0f}, max {max(e2e) * 1000:.0f})"
    )
    print(
        f"    parts: turn wait {'detector' if smart_turn else '500 ms'} + whisper {med(stt_times):.0f} ms"
        f" + TTS first audio {med(tts_times):.0f} ms = {parts_ms:.0f} ms (+ detector wait)"
    )
    print(f"    end-to-end - parts {e2e_ms - parts_ms:+.0f} ms")
    return e2e_ms


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tts", default="piper,espeak")
    ap.add_argument("--turns", type=int, default=4)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    for engine in args.tts.split(","):
        fixed = await run(engine, args.turns, smart_turn=False)
        detector = await run(engine, args.turns, smart_turn=True)
        print(f"    turn detector vs fixed 0.5 s wait: {detector - fixed:+.0f} ms ({detector / fixed:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
