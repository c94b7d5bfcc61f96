"""What the caller says while the AI talks: a backchannel ("mhm", "okay"), our own echo, or words.

Backchannels acknowledge without taking the turn, so they must not interrupt the reply nor become
a turn of their own. Recognisers write them many ways ("Mm-hmm.", "uh huh", "Okay, okay."), so the
text is normalised to words and every word must be an acknowledgement, at most a few of them.
Whisper also writes non-speech (a cough, line noise) as "(coughs)", "[BLANK_AUDIO]" or "...":
text without letters counts as nothing said.

An echo (the caller's phone or line playing our TTS back) shows up as words we are saying: a
transcript whose words are almost all in the reply being spoken is our echo, not the caller.
"""

from __future__ import annotations

import re

from voipbin.speech.turn_words import primary_language, word_set

MAX_WORDS = 4  # "okay yeah I see" at most; longer is a turn
# Humming ("mhm") makes a small recogniser invent words ("and make sure"), with low confidence:
# a voice this short transcribed this unsurely is not taken for words (Whisper tiny.en writes real
# short words at ~0.5, its inventions at ~0.4; see tests/turns/backchannel_set.py).
SHORT_SECS = 0.8
UNSURE = 0.45


# Per language (the first two letters of a BCP-47 tag); single words and two-word phrases.
_WORDS: dict[str, frozenset[str]] = {
    "en": word_set(
        "mhm mm mmm hmm hm mhmm mmhmm mmhm mmmhmm uh huh uhhuh uhuh um umm ah oh okay ok okey "
        "yeah yea yep yup yes yah right all alright sure i see got it gotcha cool nice great good "
        "true exactly indeed totally wow really absolutely fine ja"
    ),
    "es": word_set("sí si vale claro ajá aja ah ok okay bueno entiendo ya mhm mm hmm eh"),
    "de": word_set("ja genau okay ok mhm mm hmm aha ach so stimmt richtig klar gut"),
    "fr": word_set("oui ouais d'accord ok okay mhm mm hmm ah bon voilà exactement"),
    "it": word_set("sì si certo ok okay mhm mm hmm ah esatto capito va bene"),
    "pt": word_set("sim claro ok okay tá ta certo mhm mm hmm ah entendi"),
}
# Words that are never a mere acknowledgement even though a backchannel word is in them.
_STOP_WORDS = word_set("no not stop wait hold but what why how when where who nope nah")

_NON_WORD = re.compile(r"[^\w'\s-]+")
_TAG = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")  # whisper's [BLANK_AUDIO], (coughs), *sighs*


def words(text: str) -> list[str]:
    """Lower-case words, tags and punctuation removed; "mm-hmm" and "uh-huh" are one word."""
    text = _TAG.sub(" ", text.lower())
    text = _NON_WORD.sub(" ", text)
    out: list[str] = []
    for w in text.split():
        w = w.strip("-'")
        if w:
            out.append(w.replace("-", ""))
    return out


def _vocabulary(language: str | None) -> frozenset[str]:
    return _WORDS["en"] | _WORDS.get(primary_language(language), frozenset())


def is_backchannel(text: str, language: str | None = None) -> bool:
    """True if ``text`` is only an acknowledgement (or no words at all: noise)."""
    ws = words(text)
    if not ws:
        return True
    if len(ws) > MAX_WORDS or any(w in _STOP_WORDS for w in ws):
        return False
    vocab = _vocabulary(language)
    return all(w in vocab or _humming(w) for w in ws)


def is_acknowledgement(
    text: str, *, confidence: float | None, voiced_secs: float, language: str | None = None
) -> bool:
    """Heard while we speak: True if it does not take the turn (a backchannel, a noise, or a short
    voice the recogniser only guessed at)."""
    if is_backchannel(text, language):
        return True
    return voiced_secs < SHORT_SECS and confidence is not None and confidence < UNSURE


def _humming(word: str) -> bool:
    """ "mmmhmm", "hmmmm", "uhhh": letters of humming only."""
    return len(word) >= 2 and set(word) <= set("mhua") and ("m" in word or "h" in word)


def is_echo(text: str, said: str, *, share: float = 0.8) -> bool:
    """True if nearly all words of ``text`` are words of ``said`` (what we are saying): our echo."""
    ws = words(text)
    if len(ws) < 2:  # one word proves nothing either way ("yes" may be both)
        return False
    ours = set(words(said))
    return sum(w in ours for w in ws) >= share * len(ws)
