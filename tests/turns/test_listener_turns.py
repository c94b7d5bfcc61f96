"""The call path: Listener + TurnDetector + Smart Turn + offline Whisper on a real-time in-memory call.

A caller pauses 0.8 s after "I'm calling because": the turn must not end there; it ends once, after
"my card was declined", with the whole sentence transcribed before :class:`SpeechStopped` is posted.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.flow.memcall import MemoryCall
from tests.turns.labelled_set import load_set
from voipbin.ai.session.listener import Listener, SpeechStopped, Transcript
from voipbin.ai.session.turns import turn_config
from voipbin.speech.registry import create_stt
from voipbin.speech.stt_whisper import whisper_model
from voipbin.speech.turn_model import model_available
from voipbin.speech.vad import VadConfig

pytestmark = [
    pytest.mark.skipif(not model_available(), reason="pipecat-ai wheel (Smart Turn) not installed"),
    pytest.mark.serial,  # a real-time call: run with nothing beside it (conftest)
]


async def test_a_mid_sentence_pause_does_not_end_the_turn() -> None:
    (item,) = [it for it in load_set() if it.spec.id == "i02"]
    await asyncio.to_thread(whisper_model)  # loaded before the clock starts
    call = MemoryCall(None, uuid.uuid4(), uuid.uuid4())  # type: ignore[arg-type]  # audio port only
    call.answered = True
    out: asyncio.Queue[object] = asyncio.Queue()
    stt = create_stt("whisper", language="en-US", sample_rate=8000)
    vad = VadConfig()
    listener = Listener(call, stt, vad, out, turn=turn_config(smart_turn=True, vad=vad), language="en-US")
    listener.set_question(item.spec.question)
    tasks = [asyncio.create_task(listener.listen()), asyncio.create_task(listener.transcripts())]
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        call.speak(item.pcm)
        texts: list[str] = []
        stops: list[float] = []
        async with asyncio.timeout(len(item.pcm) / 16000 + 15):
            while not stops:
                ev = await out.get()
                if isinstance(ev, Transcript):
                    texts.append(ev.text)
                elif isinstance(ev, SpeechStopped):
                    stops.append(ev.at - started)
        # ended after the last part (not in the pause that starts at part_ends[0])
        assert stops[0] >= item.part_ends[-1] - 0.1, (stops, item.part_ends, texts)
        heard = " ".join(texts).lower()
        assert "calling" in heard and "declined" in heard, texts
        await asyncio.sleep(1.0)
        assert all(not isinstance(e, SpeechStopped) for e in [out.get_nowait() for _ in range(out.qsize())])
    finally:
        for t in tasks:
            t.cancel()
        stt.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
