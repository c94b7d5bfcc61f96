"""What the words say about the end of a turn: the transcript so far, and the question the AI asked.

An audio model hears prosody; it cannot know that "I want to pay with my card and" is unfinished
when the speaker's pitch fell on "and". The transcript can: a turn that ends on a conjunction,
preposition, article, possessive or filler ("and", "so", "because", "to", "the", "my", "um"), on a
comma, or inside a number that is still short of what was asked for ("my number is 555 12", or
"twenty" before "five") is unfinished. A short answer to a yes/no question ("yes", "no thanks") and
a turn ending in sentence punctuation after a full clause are finished, and so is one ending on a
closing formula ("thank you", "that's all", "I think so").

A noun and a copula with nothing after it ("my number is", "the thing is"), "could you please" and
"I think" are unfinished too. Between the two, the words can *lean*: a bare verb after "to" that
usually takes an object ("I'd like to book"), a phone number with 7-9 digits (a local number, or
3-3-1 of a 3-3-4 number), a date of birth without its year — :data:`LEAN_INCOMPLETE`. The
detector blends a lean with the audio model instead of overruling it.

:func:`words_completion` returns a probability-like score, or ``None`` when the words say nothing
either way (the audio model then decides alone). Word lists exist for en, es, de, fr, it, pt, nl, pl, ru;
other languages get the punctuation and digit rules only.
"""

from __future__ import annotations

import re


# Words after which a sentence cannot end (closed classes: conjunctions, prepositions, articles,
# possessives, subject pronouns, fillers). Not auxiliaries: elliptic answers end on them ("Yes, it
# did."). Deliberately short lists: a false "unfinished" only costs wait.
def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_TRAILING: dict[str, frozenset[str]] = {
    "en": word_set(
        "and or but so because since although though if unless until while when whereas that which who"
        " whose where than then also plus like um uh er erm hmm the a an my your his her our their its"
        " this these those some any no every to of for with from at by in on into onto about as than"
        " i i'm we you they he she it's there's i'd i'll we're very really just more less maybe"
        " actually basically let let's want need going gonna wanna dot whether after before near between"
        " without against toward towards except via across despite during among upon besides"
    ),
    "es": word_set(
        "y e o u pero porque aunque si que cuando donde como pues entonces el la los las un una unos unas"
        " mi mis tu tus su sus nuestro nuestra de del al a en con por para sin sobre entre hasta desde"
        " es son está estoy quiero necesito me te se le lo muy más menos eh este bueno"
    ),
    "de": word_set(
        "und oder aber denn weil dass ob wenn als wie so der die das den dem des ein eine einen einem einer"
        " mein meine dein sein ihr unser zu von mit für auf an in aus bei nach über unter um bis ist sind"
        " bin habe hat will möchte kann muss sehr noch äh ähm"
    ),
    "fr": word_set(
        "et ou mais donc parce car si que quand comme le la les un une des du de au aux mon ma mes ton ta"
        " son sa ses notre votre leur à en dans avec pour par sans sur sous chez est suis sont ai a je"
        " veux voudrais très plus euh"
    ),
    "it": word_set(
        "e o ma perché però se che quando come il lo la i gli le un uno una mio mia tuo suo di del della"
        " a al in con per su da tra fra è sono ho vorrei voglio molto più ehm"
    ),
    "pt": word_set(
        "e ou mas porque porém se que quando como o a os as um uma meu minha seu sua de do da no na em com"
        " por para sem sobre é são estou quero gostaria muito mais eh"
    ),
    "nl": word_set(
        "en of maar want omdat dus als dat die wie waar wanneer de een mijn jouw uw zijn haar ons onze hun"
        " van voor met naar op in aan bij uit over om tot door te wil graag heel erg ehm eh uh"
    ),
    "pl": word_set(
        "i a albo ale lub bo że żeby jeśli kiedy gdy który która które mój moja moje twój twoja jego jej"
        " nasz w we z ze na do od dla przez po przy o u za pod nad bez chcę chciałbym chciałabym bardzo"
        " eee yyy"
    ),
    "ru": word_set(
        "и а или но потому чтобы если когда который которая которое мой моя моё твой его её наш в во с"
        " со на к ко от для по при о об у за под над без из хочу хотел хотела очень э ээ"
    ),
}

# Phrases a turn ends on when it is over (matched on the last tokens, in any of the listed languages).
_CLOSINGS: tuple[tuple[str, ...], ...] = tuple(
    tuple(phrase.split())
    for phrase in [
        "thank you",
        "thanks",
        "thanks a lot",
        "thank you very much",
        "thank you so much",
        "please",
        "bye",
        "goodbye",
        "that's all",
        "that's it",
        "that's everything",
        "that's right",
        "that's correct",
        "that's fine",
        "i think so",
        "i hope so",
        "i guess so",
        "i believe so",
        "not really",
        "of course",
        "no problem",
        "never mind",
        "all good",
        "gracias",
        "muchas gracias",
        "por favor",
        "eso es todo",
        "nada más",
        "adiós",
        "danke",
        "danke schön",
        "bitte",
        "das ist alles",
        "tschüss",
        "merci",
        "merci beaucoup",
        "s'il vous plaît",
        "c'est tout",
        "au revoir",
        "grazie",
        "per favore",
        "è tutto",
        "dank je",
        "dank u",
        "bedankt",
        "alstublieft",
        "dat is alles",
        "dziękuję",
        "to wszystko",
        "спасибо",
        "пожалуйста",
        "это всё",
        "obrigado",
        "obrigada",
        "por favor",
        "é tudo",
    ]
)
# "<noun> is" / "it's" with nothing after ("my number is", "the problem is"): the value is still to come.
_COPULAS = word_set("is are was were")
_COPULA_ENDS = word_set(
    "it that what there here where who this which how he she they we you i mine yours ours"
)  # "that's what it is"
# Verbs that take an object, bare after "to" at the end ("I'd like to book"): usually more follows.
_TRANSITIVE = word_set(
    "book order change cancel check pay speak talk get make buy have find update reset tell give send"
    " see know ask report add move schedule confirm open close return use transfer"
)

_ASKING = word_set("you could would can will")
_SUBJECTS = word_set("i we")
_OPINION_VERBS = word_set("think guess mean believe hope wonder feel suppose")

_YES_NO_ANSWERS = word_set(
    "yes yeah yep yup no nope sure okay ok right correct exactly absolutely definitely thanks"
    " sí si claro vale correcto ja nein genau oui non d'accord sim não"
)
_YES_NO_QUESTION = re.compile(
    r"^(do|does|did|is|are|was|were|can|could|would|will|shall|should|have|has|may)\b", re.I
)
_NUMBER_WORDS = word_set("zero oh one two three four five six seven eight nine ten eleven twelve")
_OPEN_NUMBER_WORDS = word_set(
    "twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million point"
    " veinte treinta cuarenta cincuenta sesenta setenta ochenta noventa cien ciento mil"
)
# A date of birth is not given until its year is ("March third," then "nineteen eighty five").
_ASKS_BIRTH_DATE = re.compile(
    r"date of birth|birth ?date|birthday|when were you born|fecha de nacimiento|geburtsdatum", re.I
)
_YEAR_WORDS = word_set("nineteen thousand")


def _has_year(tokens: list[str]) -> bool:
    return any((t.isdigit() and len(t) == 4) or t in _YEAR_WORDS for t in tokens)


# The digits an answer needs, by what the AI asked for.
_EXPECTED_DIGITS = (
    (re.compile(r"phone|telephone|mobile|cell|callback|tel[eé]fono|telefon|num[eé]ro de t", re.I), 10),
    (re.compile(r"card number|credit card|tarjeta|karte", re.I), 12),
    (re.compile(r"zip|postal|postcode|c[oó]digo postal|plz", re.I), 5),
    (re.compile(r"account number|member(ship)? number|order number|n[uú]mero de (cuenta|pedido)", re.I), 6),
    (re.compile(r"\bpin\b|verification code|security code|c[oó]digo", re.I), 4),
)

INCOMPLETE = 0.05
LEAN_INCOMPLETE = 0.25
COMPLETE = 0.9
# A phone number this long may be whole (a local number); shorter is certainly unfinished.
_PHONE_MIN_DIGITS = 7


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


def _closing(tokens: list[str]) -> bool:
    if len(tokens) >= 2 and tokens[-1] == "please" and tokens[-2] in _ASKING:  # "could you please"
        return False
    return any(tuple(tokens[-len(c) :]) == c for c in _CLOSINGS)


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
    if _closing(tokens):  # before the trailing words: "I think so"
        return COMPLETE
    if last in _TRAILING.get(lang, frozenset()) and not (len(tokens) == 1 and last in _YES_NO_ANSWERS):
        return INCOMPLETE
    if last in _OPEN_NUMBER_WORDS:
        return INCOMPLETE
    digits = _spoken_digits(tokens)
    wanted = expected_digits(question)
    if digits and wanted:
        if digits >= wanted:
            return COMPLETE
        if wanted == 10 and digits >= _PHONE_MIN_DIGITS:
            return LEAN_INCOMPLETE
        return INCOMPLETE
    if question and _ASKS_BIRTH_DATE.search(question) and not _has_year(tokens):
        return LEAN_INCOMPLETE
    if question and _YES_NO_QUESTION.match(question.strip()) and tokens[0] in _YES_NO_ANSWERS:
        return COMPLETE
    if stripped.endswith(("?", "!")) or (stripped.endswith(".") and len(tokens) >= 3):
        return COMPLETE
    if lang == "en" and len(tokens) >= 2:
        if last in _COPULAS and tokens[-2] not in _COPULA_ENDS:  # "my number is", not "yes it is"
            return INCOMPLETE
        if last == "please" and tokens[-2] in _ASKING:  # "could you please"
            return INCOMPLETE
        if tokens[-2] in _SUBJECTS and last in _OPINION_VERBS:  # "I think", "we hope"
            return INCOMPLETE
        if tokens[-2] == "to" and last in _TRANSITIVE:  # "I'd like to book" (but "I want to cancel.")
            return LEAN_INCOMPLETE
    return None
