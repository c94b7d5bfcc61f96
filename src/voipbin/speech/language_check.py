"""Write-time language checks: a language the chosen STT/TTS cannot serve is a 400 naming the field.

VoIPBIN accepts any ``language`` and the call fails mid-way ("stt_type 'whisper' does not support
language 'es-ES'"). Here flows, calls and AIs are checked when they are written: the engines that
will run (the given ``stt_type``/``tts_type``, or the node's defaults for an empty value) must know
the language. ``${variable}`` values are only known at run time and are skipped.
"""

from __future__ import annotations

from voipbin.speech.errors import InvalidSpeechProvider
from voipbin.speech.registry import node_defaults, validate_stt_type, validate_tts_language


class UnsupportedLanguage(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _known(value: str | None) -> bool:
    return bool(value) and "${" not in (value or "")


def check_languages(
    *,
    tts_type: str | None,
    stt_type: str | None,
    language: str | None,
    stt_language: str | None = None,
    language_field: str = "language",
    stt_language_field: str = "stt_language",
) -> None:
    """Raise :class:`UnsupportedLanguage` (with the offending field) if an engine cannot serve it.

    ``tts_type``/``stt_type`` ``None`` means "not known here" (e.g. taken from a referenced AI at run
    time): skipped. ``""`` means the node's default engine.
    """
    default_tts, default_stt = node_defaults()
    stt_lang = stt_language if _known(stt_language) else (language if _known(language) else None)
    stt_field = stt_language_field if _known(stt_language) else language_field
    if stt_type is not None and stt_lang and "${" not in (stt_type or ""):
        engine = stt_type or default_stt
        if engine:
            try:
                validate_stt_type(engine, language=stt_lang)
            except InvalidSpeechProvider as exc:
                raise UnsupportedLanguage(stt_field, str(exc)) from None
    if tts_type is not None and _known(language) and "${" not in (tts_type or ""):
        engine = tts_type or default_tts
        if engine:
            try:
                validate_tts_language(engine, language)
            except InvalidSpeechProvider as exc:
                raise UnsupportedLanguage(language_field, str(exc)) from None
