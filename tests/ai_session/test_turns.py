"""Turn-taking decisions (the sans-I/O core of the session)."""

from voipbin.ai.session.turns import TurnTaker


def test_turn_commits_on_transcript_when_caller_is_quiet() -> None:
    t = TurnTaker(barge_in=False)
    assert t.speech_started() is False
    assert t.transcript("hello") is None  # still speaking
    assert t.speech_stopped() == "hello"
    assert t.transcript("late words") == "late words"  # final after the VAD said quiet


def test_text_while_answering_waits_for_the_answer() -> None:
    t = TurnTaker(barge_in=False)
    t.bot_started()
    assert t.speech_started() is False  # ai: no barge-in
    t.speech_stopped()
    assert t.transcript("one") is None and t.transcript("two") is None
    assert t.bot_stopped() == "one two"


def test_barge_in_only_while_answering() -> None:
    t = TurnTaker(barge_in=True)
    assert t.speech_started() is False
    t.speech_stopped()
    t.bot_started()
    assert t.speech_started() is True
    assert t.bot_stopped() is None  # the caller is still talking
    assert t.transcript("stop") is None
    assert t.speech_stopped() == "stop"
