"""The words' view of a turn's end (sans-I/O)."""

from __future__ import annotations

import pytest

from voipbin.speech.turn_detector import TurnConfig, TurnDetector, combine
from voipbin.speech.turn_words import COMPLETE, INCOMPLETE, LEAN_INCOMPLETE, words_completion


@pytest.mark.parametrize(
    ("text", "question", "language", "expected"),
    [
        ("I want to change my flight and", None, "en", INCOMPLETE),
        ("I'm calling because", None, "en-US", INCOMPLETE),
        ("I need a taxi to the", None, "en", INCOMPLETE),
        ("So, um", None, "en", INCOMPLETE),
        ("It's five five five,", "What is your phone number?", "en", INCOMPLETE),
        ("555 12", "What is your phone number?", "en", INCOMPLETE),
        ("555 123 4567", "What is your phone number?", "en", COMPLETE),
        ("555 123 4", "What is your phone number?", "en", LEAN_INCOMPLETE),  # 7 digits: maybe local
        ("My number is", "What is your phone number?", "en", INCOMPLETE),
        ("The thing is", None, "en", INCOMPLETE),
        ("Yes it is", "Is this your car?", "en", COMPLETE),
        ("I don't know what it is", None, "en", None),
        ("Could you please", None, "en", INCOMPLETE),
        ("I'd like to speak to a manager please", None, "en", COMPLETE),
        ("Um I think", None, "en", INCOMPLETE),
        ("I think so", "Do you have your booking reference?", "en", COMPLETE),
        ("That's everything thanks a lot", None, "en", COMPLETE),
        ("I'd like to book", None, "en", LEAN_INCOMPLETE),
        ("Any time after", "What time works for you?", "en", INCOMPLETE),
        ("March third", "What is your date of birth?", "en", LEAN_INCOMPLETE),
        ("March third nineteen eighty five", "What is your date of birth?", "en", None),
        ("Muchas gracias", None, "es", COMPLETE),
        ("Ik wil mijn abonnement opzeggen omdat", None, "nl-NL", INCOMPLETE),
        ("Chciałbym zamówić taksówkę na", None, "pl-PL", INCOMPLETE),
        ("Я хочу поменять мой тариф и", None, "ru-RU", INCOMPLETE),
        ("Dat is alles, bedankt", None, "nl", COMPLETE),
        ("Спасибо", None, "ru", COMPLETE),
        ("Nine four one zero seven.", "What is your zip code?", "en", COMPLETE),
        ("Twenty", "How many tickets?", "en", INCOMPLETE),
        ("Yes, it did.", "Did that answer your question?", "en", COMPLETE),
        ("Where is my package?", None, "en", COMPLETE),
        ("I lost my card", None, "en", None),
        ("Quiero cambiar mi vuelo y", None, "es-ES", INCOMPLETE),
        ("Ich möchte einen Tisch für", None, "de-DE", INCOMPLETE),
        ("", None, "en", None),
    ],
)
def test_words_completion(text, question, language, expected) -> None:
    assert words_completion(text, question=question, language=language) == expected


def _p(p: float | None) -> float:
    assert p is not None
    return p


def test_words_overrule_a_confident_audio_model_only_partly() -> None:
    assert _p(combine(0.95, INCOMPLETE)) < 0.35
    assert _p(combine(0.2, COMPLETE)) > 0.7
    assert 0.35 < _p(combine(0.95, LEAN_INCOMPLETE)) < 0.7  # a lean moves a sure model down a band
    assert combine(None, None) is None and combine(0.4, None) == 0.4


def test_detector_waits_long_for_an_unfinished_turn_and_short_for_a_finished_one() -> None:
    det = TurnDetector(TurnConfig(), language="en")
    det.voice(0.0, True)
    det.voice(1.0, False)
    pause = det.model_request(1.07)
    assert pause is not None and det.model_request(1.1) is None  # asked once per pause
    det.text("I'd like to pay with my")
    det.audio_probability(pause, 0.95)
    assert not det.ended(1.5)  # the words hold it
    assert det.ended(1.0 + TurnConfig().max_wait)
    assert TurnConfig().wait_for(0.5) > TurnConfig().wait_for(0.7) > TurnConfig().wait_for(0.95)
    # next turn: clear sentence, model confident
    det.voice(5.0, True)
    det.voice(6.0, False)
    pause = det.model_request(6.07)
    assert pause is not None
    det.text("Where is my package?")
    det.audio_probability(pause, 0.97)
    assert det.ended(6.11)


def test_stale_model_answer_is_ignored_and_resumed_speech_stretches_the_wait() -> None:
    det = TurnDetector(TurnConfig(), language="en")
    det.voice(0.0, True)
    det.voice(1.0, False)
    pause = det.model_request(1.1)
    assert pause is not None
    det.voice(2.0, True)  # the caller went on after a 1 s pause
    det.audio_probability(pause, 0.99)  # for the old pause: ignored
    det.voice(3.0, False)
    det.text("and then")
    assert det.due_at() == pytest.approx(3.0 + max(TurnConfig().max_wait, 1.0 * 1.25))


def test_with_a_streaming_stt_the_turn_waits_for_the_words_of_the_speech_before_the_pause() -> None:
    """The model is sure at once, but the final ("... and") is 0.2 s behind the audio: it still counts."""
    det = TurnDetector(TurnConfig(), language="en")
    det.voice(0.0, True)
    det.text("I'd like to change my flight", final=False)  # interim words: a streaming STT
    det.voice(1.0, False)
    # (interim words that end on "my" would say "unfinished" on their own and the model would not be
    # asked: see the next tests). While the final is due, the model is asked words_lead before
    # words_grace, not at model_after: most inter-word gaps are over by then.
    assert det.model_request(1.07) is None
    pause = det.model_request(1.1)
    assert pause is not None and det.model_request(1.12) is None
    det.audio_probability(pause, 0.97)
    assert det.words_behind() and not det.ended(1.2)  # the model alone would have ended it here
    det.voice(1.2, False)
    det.text("I'd like to change my flight and")  # the final, late
    assert not det.words_behind() and not det.ended(1.3)  # and it says "unfinished"
    assert det.ended(1.0 + TurnConfig().max_wait)
    # an offline STT (no interim words) is not waited for: the model and the silence decide
    offline = TurnDetector(TurnConfig(), language="en")
    offline.voice(0.0, True)
    offline.voice(1.0, False)
    pause = offline.model_request(1.07)
    assert pause is not None
    offline.audio_probability(pause, 0.97)
    assert not offline.words_behind() and offline.ended(1.17)


def test_the_model_is_not_asked_when_the_words_decide_and_is_asked_once_they_stop_deciding() -> None:
    det = TurnDetector(TurnConfig(), language="en")
    det.voice(0.0, True)
    det.text("I want to pay with my card and")  # a trailing "and": the audio is overruled anyway
    det.voice(1.0, False)
    assert not det.model_matters()
    assert det.model_request(1.1) is None and det.model_request(1.5) is None
    assert det.due_at() == pytest.approx(1.0 + TurnConfig().max_wait)  # not waiting for a model
    det.text("the loyalty points")  # a late final: the words say nothing now, so the model counts
    assert det.model_matters()
    pause = det.model_request(1.55)
    assert pause is not None
    det.audio_probability(pause, 0.97)
    assert det.ended(1.56)


def test_after_the_stt_endpoint_a_turn_the_words_accept_ends_without_the_model() -> None:
    det = TurnDetector(TurnConfig(), language="en")
    det.voice(0.0, True)
    det.text("What's the weather", final=False)
    det.voice(1.0, False)
    det.text("What's the weather like today?")
    det.stt_endpoint()
    assert not det.model_matters() and det.model_request(1.3) is None
    assert det.ended(1.3)  # 0.1 s band: no wait for an answer that cannot change anything


def test_a_declined_model_leaves_the_decision_to_the_words_and_the_silence() -> None:
    det = TurnDetector(TurnConfig(), language="en")
    det.voice(0.0, True)
    det.voice(1.0, False)
    pause = det.model_request(1.07)
    assert pause is not None
    assert det.due_at() == pytest.approx(1.0 + TurnConfig().max_wait)  # waiting for the answer
    det.model_declined(pause - 1)  # another pause's: ignored
    assert det.due_at() == pytest.approx(1.0 + TurnConfig().max_wait)
    det.model_declined(pause)
    assert det.due_at() == pytest.approx(1.0 + TurnConfig().unknown_wait)
    assert det.model_request(1.2) is None  # not asked again in this pause


def test_with_an_stt_that_endpoints_the_model_waits_for_its_final_and_endpoint() -> None:
    """Deepgram-like: interim words, then the final with its endpoint. While the final is due the model
    is not asked (its endpoint decides the turns the words accept); once words come without an
    endpoint, the model is asked as usual."""
    det = TurnDetector(TurnConfig(), language="en", stt_endpoints=True)
    det.voice(0.0, True)
    det.text("What's the weather like", final=False)
    det.voice(1.0, False)
    assert det.words_behind() and not det.model_matters()
    assert det.model_request(1.1) is None and det.model_request(1.3) is None
    assert not det.ended(1.3)  # not ended by the silence alone while the final is due
    det.voice(1.32, False)
    det.text("What's the weather like today?")
    det.stt_endpoint()
    assert det.ended(1.33)
    # Next turn: the final comes without an endpoint: the words say nothing, so the model counts.
    det.voice(3.0, True)
    det.text("I also wanted to ask", final=False)
    det.voice(4.0, False)
    det.voice(4.05, False)
    det.text("I also wanted to ask about my bill")
    assert not det.words_behind() and det.model_matters()
    pause = det.model_request(4.07)
    assert pause is not None
    det.audio_probability(pause, 0.97)
    assert det.ended(4.11)
