"""The hand-offs of one AI answer, in order (behaviour, not speed): the model's request goes out
before the turn's bookkeeping and before the TTS connects; the first clause goes to the TTS as soon
as it is speakable, not when the next token confirms the sentence; the first audio reaches the call
while the TTS is still synthesising the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator

import pytest

from fakeproviders.llm_openai import FakeOpenAI
from fakeproviders.llm_server import Reply as FakeReply
from fakeproviders.speech_elevenlabs import FakeElevenLabs
from voipbin.ai.llm.base import LLM, LLMEvent, Message, Progress, TextDelta, Tool, Usage
from voipbin.ai.llm.openai_compat import OpenAICompatLLM
from voipbin.ai.session.playback import Playback
from voipbin.ai.session.responder import Responder
from voipbin.speech.tts import ClauseTTS
from voipbin.speech.tts_elevenlabs import ElevenLabsTTS

pytestmark = pytest.mark.serial  # asserts real time: run with nothing beside it (conftest)

FRAME = b"\x10\x00" * 160  # 20 ms of 8 kHz PCM16, not silent


class Line:
    """A call's audio as the responder sees it: what was played, and when each chunk came."""

    def __init__(self) -> None:
        self.chunks: list[tuple[float, bytes]] = []

    def audio_in(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def play_stream(self, chunks: AsyncIterable[bytes], rate: int = 8000) -> bool:
        loop = asyncio.get_running_loop()
        async for chunk in chunks:
            self.chunks.append((loop.time(), chunk))
        return True

    def flush_playout(self) -> int:
        return 0


class Tokens(LLM):
    """A model that writes the given (pause, text) tokens."""

    def __init__(self, *tokens: tuple[float, str]) -> None:
        super().__init__("test", "tokens")
        self.tokens = tokens
        self.at: list[tuple[float, str]] = []  # loop time each token was produced

    async def _stream(
        self, messages: list[Message], tools: list[Tool], *, temperature: float | None, max_tokens: int | None
    ) -> AsyncGenerator[LLMEvent | Progress, None]:
        loop = asyncio.get_running_loop()
        for pause, text in self.tokens:
            if pause:  # else the token came in the same network read: no await between them
                await asyncio.sleep(pause)
            self.at.append((loop.time(), text))
            yield TextDelta(text)
        yield Usage()


class Clauses(ClauseTTS):
    """A TTS that notes when it started, each clause it was asked for and when; ``slow_rest`` is
    how long everything after the first audio chunk takes."""

    def __init__(self, slow_rest: float = 0.0) -> None:
        super().__init__(sample_rate=8000)
        self.source_rate = 8000
        self.slow_rest = slow_rest
        self.started_at: float | None = None
        self.clauses: list[tuple[float, str]] = []
        self.ended_at: float | None = None

    async def _run(self) -> None:
        self.started_at = asyncio.get_running_loop().time()
        await super()._run()
        self.ended_at = asyncio.get_running_loop().time()

    async def _synthesize_clause(self, text: str) -> AsyncIterator[bytes]:
        self.clauses.append((asyncio.get_running_loop().time(), text))
        yield FRAME
        await asyncio.sleep(self.slow_rest)
        yield FRAME * 3


async def test_the_request_goes_out_before_the_bookkeeping_and_the_tts_connection() -> None:
    """Against the OpenAI wire fake (first token 300 ms after the request): the turn's bookkeeping
    (``on_sent``: the caller's aimessage) runs once the request is written, and the TTS starts (its
    engine connects) only then — both inside the model's 300 ms, not after its first token."""
    async with FakeOpenAI() as server:
        server.push(FakeReply(text=["Sure.", " We open at nine."], first_delay=0.3))
        llm = OpenAICompatLLM("openai", "gpt-4o-mini", api_key="k", base_url=server.base_url + "/v1")
        tts = Clauses()
        loop = asyncio.get_running_loop()
        sent: list[tuple[float, bool]] = []
        responder = Responder(llm, lambda: tts, Line())
        reply = await responder.run(
            [Message.user("When do you open?")],
            [],
            on_sent=lambda: sent.append((loop.time(), tts.started_at is None)),
        )
        await llm.aclose()
    assert reply.text == "Sure. We open at nine." and reply.first_token_at is not None
    assert len(sent) == 1
    sent_at, tts_not_started = sent[0]
    assert tts_not_started  # nothing of the TTS ran before the request was out
    assert tts.started_at is not None and sent_at <= tts.started_at < reply.first_token_at
    assert reply.first_token_at - sent_at >= 0.29  # the model's wait came after both


async def test_on_sent_runs_even_when_the_reply_is_cancelled_before_the_model_answers() -> None:
    llm = Tokens((5.0, "Too late."))
    done: list[bool] = []
    line = Line()
    responder = Responder(llm, Clauses, line)
    task = asyncio.create_task(responder.run([Message.user("Hi")], [], on_sent=lambda: done.append(True)))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert done == [True]  # the caller's words are recorded although no answer came
    await asyncio.sleep(0.05)
    assert line.chunks == []
    assert not [t for t in asyncio.all_tasks() if "play_stream" in repr(t.get_coro())]  # none left


async def test_a_reply_failing_before_its_request_starts_no_playout() -> None:
    """The TTS factory fails after the speaker was made: the bookkeeping still runs, but the
    (never started) TTS stream is not started on the way out."""

    class Broken(Tokens):
        async def _stream(self, *a, **k):  # type: ignore[no-untyped-def,override]
            raise RuntimeError("adapter bug")
            yield  # pragma: no cover

    tts = Clauses()
    done: list[bool] = []
    line = Line()
    responder = Responder(Broken(), lambda: tts, line)
    try:
        await responder.run([Message.user("Hi")], [], on_sent=lambda: done.append(True))
    except RuntimeError:
        pass
    await asyncio.sleep(0.05)
    assert done == [True] and line.chunks == [] and tts.started_at is None


async def test_the_first_sentence_goes_to_the_tts_without_waiting_for_the_next_token() -> None:
    llm = Tokens((0.0, "Sure"), (0.0, "."), (0.4, " We open"), (0.0, " at nine."))
    tts = Clauses()
    reply = await Responder(llm, lambda: tts, Line()).run([Message.user("Open?")], [])
    assert reply.text == "Sure. We open at nine."
    assert [c for _, c in tts.clauses] == ["Sure.", "We open at nine."]
    second_token_at = llm.at[2][0]
    assert tts.clauses[0][0] < second_token_at  # "Sure." was being spoken during the model's pause


async def test_the_first_clause_reaches_the_engine_before_the_rest_of_a_burst_is_read() -> None:
    llm = Tokens((0.0, "Sure."), (0.0, " We open"), (0.0, " at nine"), (0.0, " and close at six."))
    tts = Clauses()
    await Responder(llm, lambda: tts, Line()).run([Message.user("Open?")], [])
    assert [c for _, c in tts.clauses] == ["Sure.", "We open at nine and close at six."]
    assert tts.clauses[0][0] <= llm.at[1][0]  # the engine had "Sure." before " We open" was read


async def test_a_long_enough_first_clause_goes_at_its_comma() -> None:
    llm = Tokens((0.0, "Let me check that"), (0.0, ","), (0.4, " one moment please."))
    tts = Clauses()
    await Responder(llm, lambda: tts, Line()).run([Message.user("Order 42?")], [])
    assert [c for _, c in tts.clauses] == ["Let me check that,", "one moment please."]
    assert tts.clauses[0][0] < llm.at[2][0]


async def test_an_unfinished_number_or_abbreviation_is_not_cut() -> None:
    llm = Tokens((0.0, "It is 3"), (0.0, "."), (0.1, "5 km from Dr"), (0.0, "."), (0.1, " Smith's office."))
    tts = Clauses()
    await Responder(llm, lambda: tts, Line()).run([Message.user("How far?")], [])
    assert [c for _, c in tts.clauses] == ["It is 3.5 km from Dr. Smith's office."]


async def test_only_the_first_clause_is_cut_early() -> None:
    """Later clauses are synthesised while the first plays: they keep the usual, longer cuts."""
    llm = Tokens((0.0, "Yes."), (0.0, " Our shop, which is small,"), (0.0, " opens at nine."))
    tts = Clauses()
    await Responder(llm, lambda: tts, Line()).run([Message.user("Open?")], [])
    assert [c for _, c in tts.clauses] == ["Yes.", "Our shop, which is small, opens at nine."]


async def test_first_audio_reaches_the_call_while_the_tts_is_still_synthesising() -> None:
    line = Line()
    playback = Playback(line)
    tts = Clauses(slow_rest=0.4)
    llm = Tokens((0.0, "Hello there."))
    reply = await Responder(llm, lambda: tts, playback).run([Message.user("Hi")], [])
    await playback.close()
    assert reply.first_audio_at is not None and reply.first_out_at is not None
    assert tts.ended_at is not None and line.chunks
    first_heard = line.chunks[0][0]
    assert first_heard < tts.ended_at - 0.3  # handed to the call before the rest was synthesised
    assert b"".join(c for _, c in line.chunks).startswith(FRAME)


async def test_elevenlabs_speaks_a_first_clause_without_a_sentence_end_or_flush() -> None:
    """``auto_mode``: the service synthesises each clause we send at once (its chunk schedule would
    otherwise hold a short clause back until more text came)."""
    async with FakeElevenLabs() as el:
        tts = ElevenLabsTTS(api_key="xi-key", base_url=el.ws.base_url, sample_rate=8000)
        await tts.feed("Let me check that for you,")
        stream = aiter(tts)
        async with asyncio.timeout(5):
            first = await anext(stream)
        assert first
        assert "auto_mode=true" in el.ws.handshakes[0].path
        assert [m.get("text") for m in el.messages[1:]] == ["Let me check that for you, "]
        await tts.aclose()
