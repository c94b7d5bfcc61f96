"""ElevenLabs built-in voice table (VoIPBIN tts-manager) and voice resolution.

Resolution order, as in VoIPBIN: explicit voice id -> activeflow variable
``voipbin.tts.elevenlabs.voice_id`` -> language + voice type (male/female/neutral) -> default.
Unlike VoIPBIN, BCP47 codes are mapped to the table's language names ("en-US" -> "english"),
so the language lookup actually matches.
"""

from __future__ import annotations

from collections.abc import Mapping

ELEVENLABS_DEFAULT_VOICE = "EXAVITQu4vr4xnSDxMaL"
ELEVENLABS_VOICE_VARIABLE = "voipbin.tts.elevenlabs.voice_id"

# language -> (male, female, neutral)
ELEVENLABS_VOICES: dict[str, tuple[str, str, str]] = {
    "english": ("21m00Tcm4TlvDq8ikWAM", "EXAVITQu4vr4xnSDxMaL", "EXAVITQu4vr4xnSDxMaL"),
    "japanese": ("Mv8AjrYZCBkdsmDHNwcB", "PmgfHCGeS5b7sH90BOOJ", "PmgfHCGeS5b7sH90BOOJ"),
    "chinese": ("MI36FIkp9wRP7cpWKPTl", "ZL9dtgFhmkTzAHUUtQL8", "ZL9dtgFhmkTzAHUUtQL8"),
    "german": ("uM8iMoqaSe1eDaJiWfxf", "nF7t9cuYo0u3kuVI9q4B", "nF7t9cuYo0u3kuVI9q4B"),
    "french": ("IPgYtHTNLjC7Bq7IPHrm", "SmWACbi37pETyxxMhSpc", "SmWACbi37pETyxxMhSpc"),
    "hindi": ("IvLWq57RKibBrqZGpQrC", "MF4J4IDTRo0AxOO4dpFR", "MF4J4IDTRo0AxOO4dpFR"),
    "korean": ("nbrxrAz3eYm9NgojrmFK", "AW5wrnG1jVizOYY7R1Oo", "AW5wrnG1jVizOYY7R1Oo"),
    "italian": ("iLVmqjzCGGvqtMCk6vVQ", "b8jhBTcGAq4kQGWmKprT", "b8jhBTcGAq4kQGWmKprT"),
    "spanish": ("JjHBC66wF58p4ogebCNA", "UOIqAnmS11Reiei1Ytkc", "UOIqAnmS11Reiei1Ytkc"),
    "portuguese": ("NdHRjGnnDKGnnm2c19le", "CZD4BJ803C6T0alQxsR7", "CZD4BJ803C6T0alQxsR7"),
    "dutch": ("G53Wkf3yrsXvhoQsmslL", "YUdpWWny7k5yb4QCeweX", "YUdpWWny7k5yb4QCeweX"),
    "russian": ("qJBO8ZmKp4te7NTtYgzz", "ymDCYd8puC7gYjxIamPt", "ymDCYd8puC7gYjxIamPt"),
    "arabic": ("s83SAGdFTflAwJcAV81K", "EXAVITQu4vr4xnSDxMaL", "4wf10lgibMnboGJGCLrP"),
    "polish": ("H5xTcsAIeS5RAykjz57a", "W0sqKm1Sfw1EzlCH14FQ", "W0sqKm1Sfw1EzlCH14FQ"),
}

# ISO 639-1 primary subtag -> table language
_ISO_TO_LANGUAGE = {
    "en": "english", "ja": "japanese", "zh": "chinese", "cmn": "chinese", "de": "german", "fr": "french",
    "hi": "hindi", "ko": "korean", "it": "italian", "es": "spanish", "pt": "portuguese", "nl": "dutch",
    "ru": "russian", "ar": "arabic", "pl": "polish",
}  # fmt: skip
_GENDER_INDEX = {"male": 0, "female": 1, "neutral": 2}


def language_name(language: str | None) -> str | None:
    """'en-US', 'en_US', 'EN', 'english' -> 'english'; unknown -> None."""
    if not language:
        return None
    lang = language.strip().lower()
    if lang in ELEVENLABS_VOICES:
        return lang
    primary = lang.replace("_", "-").split("-")[0]
    if primary in ELEVENLABS_VOICES:
        return primary
    return _ISO_TO_LANGUAGE.get(primary)


def elevenlabs_voice_for(language: str | None, voice_type: str | None) -> str | None:
    """Table lookup: language + gender, falling back to the language's neutral voice."""
    name = language_name(language)
    if name is None:
        return None
    voices = ELEVENLABS_VOICES[name]
    return voices[_GENDER_INDEX.get((voice_type or "neutral").strip().lower(), 2)]


def voice_from_variables(variables: Mapping[str, object] | None) -> str | None:
    """The ``voipbin.tts.elevenlabs.voice_id`` activeflow variable, if it looks like a voice id.

    ElevenLabs voice ids are 20 characters; VoIPBIN ignores the variable otherwise, and so do we.
    """
    if not variables:
        return None
    value = variables.get(ELEVENLABS_VOICE_VARIABLE)
    if isinstance(value, str) and len(value.strip()) == 20 and value.strip().isalnum():
        return value.strip()
    return None


def resolve_elevenlabs_voice(
    voice_id: str | None = None,
    *,
    variables: Mapping[str, object] | None = None,
    language: str | None = None,
    voice_type: str | None = None,
) -> str:
    return (
        (voice_id or "").strip()
        or voice_from_variables(variables)
        or elevenlabs_voice_for(language, voice_type)
        or ELEVENLABS_DEFAULT_VOICE
    )
