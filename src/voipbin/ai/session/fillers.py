"""Short fillers the AI says while it holds the turn (a slow model, a tool call), per language.

The line is never silent for long: a caller who hears nothing for a second and a half thinks the
call dropped. Fillers are not part of the conversation (the model never sees them).
"""

from __future__ import annotations

FILLER_AFTER = 1.0  # seconds of our silence while we hold the turn before a filler is said
FILLER_BY = 1.4  # ... and at the latest this long after the caller went quiet
MAX_FILLERS = 3  # per turn; then silence rather than a stuck record

_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("One moment.", "Let me check.", "Just a moment, please."),
    "es": ("Un momento.", "Déjeme ver.", "Un momento, por favor."),
    "de": ("Einen Moment.", "Ich sehe nach.", "Einen Moment, bitte."),
    "fr": ("Un instant.", "Je vérifie.", "Un instant, s'il vous plaît."),
    "it": ("Un momento.", "Controllo subito.", "Un attimo, per favore."),
    "pt": ("Um momento.", "Deixe-me ver.", "Um momento, por favor."),
    "nl": ("Een moment.", "Ik kijk even.", "Een ogenblik, alstublieft."),
    "ko": ("잠시만요.", "확인해 볼게요.", "잠시만 기다려 주세요."),
    "ja": ("少々お待ちください。", "確認します。", "もう少々お待ちください。"),
    "zh": ("请稍等。", "我查一下。", "请再稍等一下。"),
}


def filler(language: str | None, index: int) -> str:
    """The ``index``-th filler in ``language`` (a BCP-47 tag or None: English)."""
    phrases = _PHRASES.get((language or "en")[:2].lower(), _PHRASES["en"])
    return phrases[index % len(phrases)]
