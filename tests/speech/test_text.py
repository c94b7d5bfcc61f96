from voipbin.speech.text import ClauseSplitter, split_clauses


def test_sentences_cut_only_when_followed_by_space():
    s = ClauseSplitter()
    assert s.push("Hello there.") == []  # could still be "there.com" or more punctuation
    assert s.push(" How are") == ["Hello there."]
    assert s.push(" you? Fine") == ["How are you?"]
    assert s.flush() == ["Fine"]
    assert s.flush() == []


def test_streaming_tokens_give_same_clauses_as_whole_text():
    text = "Dr. Smith paid 3.5 dollars. That is all! Thanks, and have a nice day, my friend, goodbye."
    s = ClauseSplitter(min_soft_chars=20)
    out: list[str] = []
    for i in range(0, len(text), 3):
        out += s.push(text[i : i + 3])
    out += s.flush()
    assert out == split_clauses(text, min_soft_chars=20)
    assert out[0] == "Dr. Smith paid 3.5 dollars."
    assert "That is all!" in out
    assert "".join(out).replace(" ", "") == text.replace(" ", "")


def test_soft_break_only_after_enough_text():
    s = ClauseSplitter(min_soft_chars=30)
    assert s.push("Well, ") == []
    assert s.push("I think that we could do it, but ") == ["Well, I think that we could do it,"]


def test_runaway_text_is_cut_at_a_space():
    s = ClauseSplitter(max_chars=50)
    out = s.push("word " * 30)
    assert out and all(len(c) <= 50 for c in out)
