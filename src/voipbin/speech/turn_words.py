"""What the words say about the end of a turn: the transcript so far, and the question the AI asked.

An audio model hears prosody; it cannot know that "I want to pay with my card and" is unfinished
when the speaker's pitch fell on "and". The transcript can: a turn that ends on a conjunction,
preposition, article, possessive or filler ("and", "so", "because", "to", "the", "my", "um"), on a
comma, or inside a number that is still short of what was asked for ("my number is 555 12", or
"twenty" before "five") is unfinished. A short answer to a yes/no question ("yes", "no thanks") and
a turn ending in sentence punctuation after a full clause are finished.

:func:`words_completion` returns a probability-like score, or ``None`` when the words say nothing
either way (the audio model then decides alone). Word lists exist for en, es, de, fr, it, pt;
other languages get the punctuation and digit rules only.
"""

from __future__ import annotations

import re


# Words after which a sentence cannot end (closed classes: conjunctions, prepositions, articles,
# possessives, subject pronouns, fillers). Not auxiliaries: elliptic answers end on them ("Yes, it
# did."). Deliberately short lists: a false "unfinished" only costs wait.
def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_TRAILING: dict[str, frozenset[str]] = {
    "en": _set(
        "and or but so because since although though if unless until while when whereas that which who"
        " whose where than then also plus like um uh er erm hmm the a an my your his her our their its"
        " this these those some any no every to of for with from at by in on into onto about as than"
        " i i'm we you they he she it's there's i'd i'll we're very really just more less maybe"
        " actually basically let let's want need going gonna wanna"
    ),
    "es": _set(
        "y e o u pero porque aunque si que cuando donde como pues entonces el la los las un una unos unas"
        " mi mis tu tus su sus nuestro nuestra de del al a en con por para sin sobre entre hasta desde"
        " es son está estoy quiero necesito me te se le lo muy más menos eh este bueno"
    ),
    "de": _set(
        "und oder aber denn weil dass ob wenn als wie so der die das den dem des ein eine einen einem einer"
        " mein meine dein sein ihr unser zu von mit für auf an in aus bei nach über unter um bis ist sind"
        " bin habe hat will möchte kann muss sehr noch äh ähm"
    ),
    "fr": _set(
        "et ou mais donc parce car si que quand comme le la les un une des du de au aux mon ma mes ton ta"
        " son sa ses notre votre leur à en dans avec pour par sans sur sous chez est suis sont ai a je"
        " veux voudrais très plus euh"
    ),
    "it": _set(
        "e o ma perché però se che quando come il lo la i gli le un uno una mio mia tuo suo di del della"
        " a al in con per su da tra fra è sono ho vorrei voglio molto più ehm"
    ),
    "pt": _set(
        "e ou mas porque porém se que quando como o a os as um uma meu minha seu sua de do da no na em com"
        " por para sem sobre é são estou quero gostaria muito mais eh"
    ),
}

_YES_NO_ANSWERS = _set(
    "yes yeah yep yup no nope sure okay ok right correct exactly absolutely definitely thanks"
    " sí si claro vale correcto ja nein genau oui non d'accord sim não"
)
_YES_NO_QUESTION = re.compile(
    r"^(do|does|did|is|are|was|were|can|could|would|will|shall|should|have|has|may)\b", re.I
)
_NUMBER_WORDS = _set("zero oh one two three four five six seven eight nine ten eleven twelve")
_OPEN_NUMBER_WORDS = _set(
    "twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million point"
    " veinte treinta cuarenta cincuenta sesenta setenta ochenta noventa cien ciento mil"
)
# The digits an answer needs, by what the AI asked for.
_EXPECTED_DIGITS = (
    (re.compile(r"phone|telephone|mobile|cell|callback|tel[eé]fono|telefon|num[eé]ro de t", re.I), 7),
    (re.compile(r"card number|credit card|tarjeta|karte", re.I), 12),
    (re.compile(r"zip|postal|postcode|c[oó]digo postal|plz", re.I), 5),
    (re.compile(r"account number|member(ship)? number|order number|n[uú]mero de (cuenta|pedido)", re.I), 6),
    (re.compile(r"\bpin\b|verification code|security code|c[oó]digo", re.I), 4),
)

INCOMPLETE = 0.05
COMPLETE = 0.9


def primary_language(language: str | None) -> str:
    return (language or "en").strip().lower().replace("_", "-").split("-")[0] or "en"


def _tokens(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def _spoken_digits(tokens: list[str]) -> int:
    """Digits in the run of number tokens at the end of the turn ("555 12" -> 5, "five five" -> 2)."""
    count = 0
    for tok in reversed(tokens):
        if tok.isdigit():
            count += len(tok)
        elif tok in _NUMBER_WORDS:
            count += 1
        else:
            break
    return count


def expected_digits(question: str | None) -> int:
    for pattern, digits in _EXPECTED_DIGITS:
        if question and pattern.search(question):
            return digits
    return 0


def words_completion(text: str, *, question: str | None = None, language: str | None = None) -> float | None:
    """How finished the turn ``text`` looks (``INCOMPLETE`` .. ``COMPLETE``), or ``None`` (no opinion)."""
    stripped = text.strip()
    tokens = _tokens(stripped)
    if not tokens:
        return None
    if stripped.endswith((",", "...", "…", "-", ":", ";")):
        return INCOMPLETE
    last = tokens[-1]
    lang = primary_language(language)
    if last in _TRAILING.get(lang, frozenset()) and not (len(tokens) == 1 and last in _YES_NO_ANSWERS):
        return INCOMPLETE
    if last in _OPEN_NUMBER_WORDS:
        return INCOMPLETE
    digits = _spoken_digits(tokens)
    wanted = expected_digits(question)
    if digits and wanted:
        return INCOMPLETE if digits < wanted else COMPLETE
    if question and _YES_NO_QUESTION.match(question.strip()) and tokens[0] in _YES_NO_ANSWERS:
        return COMPLETE
    if stripped.endswith(("?", "!")) or (stripped.endswith(".") and len(tokens) >= 3):
        return COMPLETE
    return None
