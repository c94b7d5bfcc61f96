"""``LiveTranscriber`` on synthesized speech through real taps and the offline Whisper STT."""

from __future__ import annotations

import asyncio

from tests.transcribe.support import AGENT, CALLER, FakeMedia, speech
from voipbin.speech.registry import create_stt
from voipbin.speech.stt import SttEvent
from voipbin.transcribe.live import LiveTranscriber


def words(text: str) -> set[str]:
    return {w.strip(".,!?").lower() for w in text.split()}


class Collector:
    def __init__(self) -> None:
        self.finals: list[tuple[str, float, str]] = []
        self.speech: list[tuple[str, str]] = []

    async def on_final(self, direction: str, offset: float, text: str) -> None:
        self.finals.append((direction, offset, text))

    def on_speech(self, direction: str, ev: SttEvent, offset: float) -> None:
        self.speech.append((direction, str(ev.type)))

    def text(self, direction: str) -> str:
        return " ".join(t for d, _, t in self.finals if d == direction)


def transcriber(media: FakeMedia, directions: list[str], got: Collector) -> LiveTranscriber:
    return LiveTranscriber(
        media,
        directions,
        lambda: create_stt("whisper", language="en-US", sample_rate=8000),
        got.on_final,
        got.on_speech,
    )


async def test_both_directions_are_transcribed_with_call_time_offsets() -> None:
    caller, agent = await speech(CALLER), await speech(AGENT)
    media = FakeMedia()
    got = Collector()
    live = transcriber(media, ["in", "out"], got)
    media.say("in", bytes(8000 * 2) + caller, silence_after=1.0)  # the caller starts after 1 s
    media.say("out", agent, silence_after=1.0)
    live.start()
    media.start()
    await media.drained()
    await live.stop()
    assert {"billing", "problem", "support"} <= words(got.text("in")), got.finals
    assert {"weather", "calling"} <= words(got.text("out")), got.finals
    first_in = min(o for d, o, _ in got.finals if d == "in")
    first_out = min(o for d, o, _ in got.finals if d == "out")
    assert 0.8 <= first_in <= 1.6, got.finals  # after the second of silence, in call time
    assert first_out <= 0.6, got.finals
    assert ("in", "speech_started") in got.speech and ("in", "speech_ended") in got.speech
    assert live.done.is_set()


async def test_the_last_utterance_survives_a_hangup_mid_sentence() -> None:
    caller = await speech(CALLER)
    media = FakeMedia()
    got = Collector()
    live = transcriber(media, ["in"], got)
    media.say("in", caller)  # no trailing silence: VAD has not seen the end
    live.start()
    media.start()
    await media.drained()
    await media.close()  # hangup: the session closes the taps
    await asyncio.wait_for(live.wait(), 60)
    assert {"billing", "problem"} <= words(got.text("in")), got.finals


async def test_flush_delivers_what_was_said_and_transcription_goes_on() -> None:
    caller, agent = await speech(CALLER), await speech(AGENT)
    media = FakeMedia()
    got = Collector()
    live = transcriber(media, ["in"], got)
    media.say("in", caller)
    live.start()
    media.start()
    await media.drained()
    await live.flush()
    assert {"billing", "problem"} <= words(got.text("in")), got.finals
    assert not live.done.is_set()
    count = len(got.finals)
    media.say("in", agent, silence_after=0.2)
    await media.drained()
    await live.stop()
    later = got.finals[count:]
    assert later and "weather" in words(" ".join(t for _, _, t in later)), got.finals
    assert min(o for _, o, _ in later) > max(o for _, o, _ in got.finals[:count])
