"""Speech: STT and TTS interfaces, provider adapters, offline engines (Piper, espeak-ng, Whisper), VAD.

Adapters and engines are imported lazily by the registry, so importing this package loads no SDK
and no GPL code.
"""

from voipbin.speech.errors import (
    InvalidSpeechProvider,
    MissingProviderKey,
    SpeechAuthError,
    SpeechConfigError,
    SpeechConnectionError,
    SpeechError,
    SpeechRateLimited,
    SpeechServerError,
    SpeechTimeout,
)
from voipbin.speech.executor import configure_inference
from voipbin.speech.registry import (
    STT_TYPES,
    TTS_TYPES,
    check_speech_credentials,
    create_stt,
    create_tts,
    list_speech_providers,
    validate_speech_defaults,
    validate_stt_type,
    validate_tts_type,
)
from voipbin.speech.stt import STT, SttEvent, SttEventType
from voipbin.speech.text import ClauseSplitter, split_clauses
from voipbin.speech.tts import TTS
from voipbin.speech.voices import resolve_elevenlabs_voice, voice_from_variables

__all__ = [
    "STT",
    "STT_TYPES",
    "TTS",
    "TTS_TYPES",
    "ClauseSplitter",
    "InvalidSpeechProvider",
    "MissingProviderKey",
    "SpeechAuthError",
    "SpeechConfigError",
    "SpeechConnectionError",
    "SpeechError",
    "SpeechRateLimited",
    "SpeechServerError",
    "SpeechTimeout",
    "SttEvent",
    "SttEventType",
    "check_speech_credentials",
    "configure_inference",
    "create_stt",
    "create_tts",
    "list_speech_providers",
    "resolve_elevenlabs_voice",
    "split_clauses",
    "validate_speech_defaults",
    "validate_stt_type",
    "validate_tts_type",
    "voice_from_variables",
]
