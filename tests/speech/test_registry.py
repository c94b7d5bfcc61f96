"""Registry validation, credentials and ElevenLabs voice resolution."""

from __future__ import annotations

import pytest

from voipbin.config import Settings
from voipbin.speech import (
    STT_TYPES,
    TTS_TYPES,
    InvalidSpeechProvider,
    MissingProviderKey,
    check_speech_credentials,
    create_stt,
    create_tts,
    list_speech_providers,
    resolve_elevenlabs_voice,
    validate_speech_defaults,
    validate_stt_type,
    validate_tts_type,
)
from voipbin.speech.voices import language_name


def test_defaults_and_runnable_types_are_accepted():
    for value in ("", None, "piper", "espeak", "elevenlabs", "ElevenLabs"):
        validate_tts_type(value)
    for value in ("", None, "whisper", "deepgram"):
        validate_stt_type(value)


@pytest.mark.parametrize("value", ["google", "aws", "xtts", "playht"])
def test_voipbin_tts_types_we_cannot_run_are_rejected_with_reason(value):
    with pytest.raises(InvalidSpeechProvider, match="cannot run"):
        validate_tts_type(value)


def test_unknown_types_are_rejected():
    with pytest.raises(InvalidSpeechProvider, match="unknown tts_type 'nope'"):
        validate_tts_type("nope")
    with pytest.raises(InvalidSpeechProvider, match="cannot run"):
        validate_stt_type("google")
    with pytest.raises(ValueError):  # InvalidSpeechProvider is a ValueError (HTTP 400)
        validate_stt_type("nope")


def test_stt_language_is_checked():
    validate_stt_type("whisper", language="en-US")
    validate_stt_type("whisper", language="ja-JP")  # issue 10: Whisper base serves 99 languages
    with pytest.raises(InvalidSpeechProvider, match="language 'qu-PE'"):
        validate_stt_type("whisper", language="qu-PE")  # Quechua: not one of Whisper's
    validate_stt_type("deepgram", language="ja-JP")


def test_credentials(monkeypatch):
    check_speech_credentials("", "")  # offline defaults need no key
    with pytest.raises(MissingProviderKey, match="VOIPBIN_ELEVENLABS_API_KEY"):
        check_speech_credentials("elevenlabs", "whisper")
    with pytest.raises(MissingProviderKey, match="VOIPBIN_DEEPGRAM_API_KEY"):
        check_speech_credentials("piper", "deepgram")
    monkeypatch.setenv("VOIPBIN_DEEPGRAM_API_KEY", "k")
    check_speech_credentials("piper", "deepgram")
    with pytest.raises(MissingProviderKey):
        create_tts("elevenlabs")


@pytest.mark.parametrize(
    ("language", "gender", "voice"),
    [
        ("en-US", "female", "EXAVITQu4vr4xnSDxMaL"),
        ("en-US", "male", "21m00Tcm4TlvDq8ikWAM"),
        ("en_GB", "neutral", "EXAVITQu4vr4xnSDxMaL"),
        ("ja-JP", "male", "Mv8AjrYZCBkdsmDHNwcB"),
        ("de", "female", "nF7t9cuYo0u3kuVI9q4B"),
        ("ar-SA", "neutral", "4wf10lgibMnboGJGCLrP"),
        ("ko-KR", "robot", "AW5wrnG1jVizOYY7R1Oo"),  # unknown gender -> language neutral
        ("xx-YY", "male", "EXAVITQu4vr4xnSDxMaL"),  # unknown language -> default
        (None, None, "EXAVITQu4vr4xnSDxMaL"),
    ],
)
def test_elevenlabs_voice_table(language, gender, voice):
    assert resolve_elevenlabs_voice(language=language, voice_type=gender) == voice


def test_elevenlabs_resolution_order():
    var = {"voipbin.tts.elevenlabs.voice_id": "pNInz6obpgDQGcFmaJgB"}
    assert resolve_elevenlabs_voice("explicitVoice", variables=var, language="en-US") == "explicitVoice"
    assert (
        resolve_elevenlabs_voice(None, variables=var, language="en-US", voice_type="male")
        == var["voipbin.tts.elevenlabs.voice_id"]
    )
    bad = {"voipbin.tts.elevenlabs.voice_id": "too-short"}  # VoIPBIN requires 20 chars
    assert (
        resolve_elevenlabs_voice(variables=bad, language="fr-FR", voice_type="male") == "IPgYtHTNLjC7Bq7IPHrm"
    )
    assert language_name("English") == "english" and language_name("zh-CN") == "chinese"


def test_empty_type_is_the_callers_default_not_the_registrys():
    # "" in a configuration means "the node's default": validation has nothing to check ...
    validate_tts_type("")
    validate_stt_type("  ", language="ja-JP")
    # ... but creating an engine needs the type the caller resolved from its settings
    with pytest.raises(InvalidSpeechProvider, match="no tts_type given"):
        create_tts("")
    with pytest.raises(InvalidSpeechProvider, match="no stt_type given"):
        create_stt("")


def test_speech_defaults_are_checked_naming_the_setting():
    validate_speech_defaults("piper", "whisper")
    with pytest.raises(InvalidSpeechProvider, match="VOIPBIN_DEFAULT_TTS_TYPE: unknown tts_type 'nope'"):
        validate_speech_defaults("nope", "whisper")
    with pytest.raises(InvalidSpeechProvider, match=r"VOIPBIN_DEFAULT_STT_TYPE: .*cannot run"):
        validate_speech_defaults("piper", "google")
    with pytest.raises(InvalidSpeechProvider, match="VOIPBIN_DEFAULT_STT_TYPE: no stt_type given"):
        validate_speech_defaults("piper", "")


def test_create_offline_engines_and_list():
    settings = Settings()
    tts = create_tts(settings.default_tts_type, language="en-US")
    assert tts.provider == "piper" and tts.sample_rate == 8000
    stt = create_stt(settings.default_stt_type, sample_rate=16000)
    assert stt.provider == "whisper" and stt.sample_rate == 16000
    with pytest.raises(ValueError):
        create_stt("whisper", sample_rate=44100)
    listing = list_speech_providers(settings.default_tts_type, settings.default_stt_type)
    names = {p["name"]: p for p in listing["tts"]}
    assert names["elevenlabs"]["key_env"] == "VOIPBIN_ELEVENLABS_API_KEY"
    assert names["piper"]["runtime"] and not names["google"]["runtime"]
    assert listing["default_tts_type"] == "piper" and listing["default_stt_type"] == "whisper"
    # every runnable provider has an importable adapter
    import importlib

    for info in [*TTS_TYPES.values(), *STT_TYPES.values()]:
        if info.runtime:
            module, cls = info.adapter.split(":")
            assert hasattr(importlib.import_module(module), cls)


def test_listing_reports_the_defaults_it_is_given():
    listing = list_speech_providers("espeak", "deepgram")
    assert listing["default_tts_type"] == "espeak" and listing["default_stt_type"] == "deepgram"
