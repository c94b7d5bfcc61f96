"""Speech provider registry: the one table that drives validation, docs and the runtime.

``tts_type``/``stt_type`` values follow VoIPBIN's enums. Ones we actually run are accepted; the
VoIPBIN values we cannot run are rejected at config time with a message saying so (VoIPBIN
accepts 22 TTS types but runs 3 — a call would fail mid-way; we refuse up front instead).
Offline engines ``piper``, ``espeak``, ``whisper`` are our additions.

The registry knows no defaults: in a stored or inline configuration ``""`` means "the node's
default", which the caller resolves from its ``Settings`` (``default_tts_type`` /
``default_stt_type``) before it creates an engine. So the ``validate_*`` and credential checks
accept an empty value (nothing to check; :func:`validate_speech_defaults` checks the node's defaults
when it starts), while :func:`create_tts` / :func:`create_stt` need an actual type.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from voipbin.config import provider_setting
from voipbin.speech.errors import InvalidSpeechProvider, MissingProviderKey
from voipbin.speech.stt import STT
from voipbin.speech.tts import TTS
from voipbin.speech.tts_espeak import ESPEAK_LANGUAGES
from voipbin.speech.voices import ELEVENLABS_DEFAULT_VOICE, resolve_elevenlabs_voice
from voipbin.speech.whisper_models import WHISPER_LANGUAGES


@dataclass(frozen=True)
class SpeechProvider:
    name: str
    # False: a VoIPBIN enum value this platform cannot run (or whose adapter is not written yet,
    # in which case ``adapter`` names the planned module)
    runtime: bool
    requires_key: bool = False
    default_voice: str = ""
    licence: str = ""
    offline: bool = False
    adapter: str = ""  # "module:Class", imported only when used
    languages: tuple[str, ...] = ()  # primary subtags; empty = many / provider decides
    notes: str = ""

    @property
    def key_env(self) -> str:
        return _env(self.name, "API_KEY") if self.requires_key else ""

    @property
    def base_url_env(self) -> str:
        return _env(self.name, "BASE_URL") if self.requires_key else ""

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("adapter")
        d.update(key_env=self.key_env, base_url_env=self.base_url_env, languages=list(self.languages))
        return d


def _env(provider: str, name: str) -> str:
    return f"VOIPBIN_{provider.upper().replace('-', '_')}_{name}"


_M = "voipbin.speech."
TTS_TYPES: dict[str, SpeechProvider] = {
    "piper": SpeechProvider(
        "piper", True, default_voice="en_US-joe-medium", licence="GPL-3.0 (piper-tts, optional extra)",
        offline=True, adapter=_M + "tts_piper:PiperTTS", languages=("en", *ESPEAK_LANGUAGES),
        notes="en_US-joe-medium for English; other languages speak with espeak-ng's voice",
    ),
    "espeak": SpeechProvider(
        "espeak", True, default_voice="en-us", licence="GPL-3.0 (espeak-ng, external program)",
        offline=True, adapter=_M + "tts_espeak:EspeakTTS", languages=ESPEAK_LANGUAGES,
    ),
    "elevenlabs": SpeechProvider(
        "elevenlabs", True, True, ELEVENLABS_DEFAULT_VOICE, "proprietary service (websockets, BSD-3)",
        adapter=_M + "tts_elevenlabs:ElevenLabsTTS", notes="WebSocket stream-input, eleven_multilingual_v2",
    ),
    "openai": SpeechProvider(
        "openai", True, True, "alloy", "proprietary service (SDK: openai, Apache-2.0)",
        adapter=_M + "tts_openai:OpenAITTS", notes="official SDK audio.speech, gpt-4o-mini-tts, pcm 24 kHz",
    ),
    "deepgram": SpeechProvider(
        "deepgram", True, True, "aura-2-thalia-en", "proprietary service (SDK: deepgram-sdk, MIT)",
        adapter=_M + "tts_deepgram:DeepgramTTS",
        notes="official SDK, Aura /v1/speak linear16 at the call rate",
    ),
    "cartesia": SpeechProvider(
        "cartesia", True, True, "71a7ad14-091c-4e8e-a314-022ece01c121", "proprietary service (httpx, BSD-3)",
        adapter=_M + "tts_cartesia:CartesiaTTS", notes="/tts/bytes sonic-2, raw pcm_s16le at the call rate",
    ),
}  # fmt: skip
for _name in [
    "async",
    "aws",
    "azure",
    "fish",
    "google",
    "groq",
    "hume",
    "inworld",
    "lmnt",
    "minimax",
    "neuphonic",
    "nvidia-riva",
    "playht",
    "rime",
    "sarvam",
    "xtts",
]:
    TTS_TYPES[_name] = SpeechProvider(_name, False, True)

STT_TYPES: dict[str, SpeechProvider] = {
    "whisper": SpeechProvider(
        "whisper", True, licence="MIT (faster-whisper; whisper tiny.en and base weights)", offline=True,
        adapter=_M + "stt_whisper:WhisperSTT", languages=WHISPER_LANGUAGES,
        notes="tiny.en for English, base for 99 languages and detection; VAD-segmented",
    ),
    "deepgram": SpeechProvider(
        "deepgram", True, True, "nova-2", "proprietary service (SDK: deepgram-sdk, MIT)",
        adapter=_M + "stt_deepgram:DeepgramSTT", notes="live WebSocket, interim results",
    ),
    "openai": SpeechProvider(
        "openai", True, True, "gpt-4o-mini-transcribe", "proprietary service (SDK: openai, Apache-2.0)",
        adapter=_M + "stt_openai:OpenAISTT", notes="official SDK, VAD-segmented /v1/audio/transcriptions",
    ),
    "elevenlabs": SpeechProvider(
        "elevenlabs", True, True, "scribe_v1", "proprietary service (SDK: elevenlabs, MIT)",
        adapter=_M + "stt_elevenlabs:ElevenLabsSTT",
        notes="official SDK, VAD-segmented /v1/speech-to-text (Scribe)",
    ),
    "cartesia": SpeechProvider("cartesia", False, True),
    "google": SpeechProvider("google", False, True),
}  # fmt: skip


def _normalized(value: str | None) -> str:
    return (value or "").strip().lower()


def _lookup(kind: str, table: Mapping[str, SpeechProvider], value: str | None) -> SpeechProvider:
    name = _normalized(value)
    info = table.get(name)
    supported = ", ".join(n for n, p in table.items() if p.runtime)
    if not name:
        raise InvalidSpeechProvider(
            f"no {kind} given: name one (the caller passes the node's default for an empty value);"
            f" supported: {supported}"
        )
    if info is None:
        raise InvalidSpeechProvider(f"unknown {kind} {name!r}; supported: {supported}")
    if not info.runtime:
        raise InvalidSpeechProvider(
            f"{kind} {name!r} is a VoIPBIN provider this platform cannot run; supported: {supported}"
        )
    return info


def _check_language(kind: str, info: SpeechProvider, language: str | None) -> None:
    if language and info.languages:
        primary = language.strip().lower().replace("_", "-").split("-")[0]
        if primary not in info.languages:
            shown = ", ".join(info.languages[:30]) + (", ..." if len(info.languages) > 30 else "")
            raise InvalidSpeechProvider(
                f"{kind} {info.name!r} does not support language {language!r} (supports: {shown})"
            )


def validate_tts_language(value: str | None, language: str | None) -> None:
    """Raise :class:`InvalidSpeechProvider` if TTS ``value`` cannot speak ``language`` ("" = skip)."""
    if _normalized(value):
        _check_language("tts_type", tts_provider(value), language)


def tts_provider(value: str | None) -> SpeechProvider:
    """The runnable TTS provider named ``value``; raises :class:`InvalidSpeechProvider` (also for "")."""
    return _lookup("tts_type", TTS_TYPES, value)


def stt_provider(value: str | None) -> SpeechProvider:
    """The runnable STT provider named ``value``; raises :class:`InvalidSpeechProvider` (also for "")."""
    return _lookup("stt_type", STT_TYPES, value)


def validate_tts_type(value: str | None) -> None:
    """Raise :class:`InvalidSpeechProvider` unless ``value`` is a TTS type we run.

    An empty value means "the node's default": nothing to check here.
    """
    if _normalized(value):
        tts_provider(value)


def validate_stt_type(value: str | None, *, language: str | None = None) -> None:
    """Raise :class:`InvalidSpeechProvider` unless ``value`` (with ``language``, if given) can run.

    An empty value means "the node's default": nothing to check here.
    """
    if _normalized(value):
        _check_language("stt_type", stt_provider(value), language)


_node_defaults = {"tts": "", "stt": ""}


def node_defaults() -> tuple[str, str]:
    """The (tts_type, stt_type) an empty configured value stands for, as last checked at start by
    :func:`validate_speech_defaults` (so write-time language checks see the engine that will run)."""
    return _node_defaults["tts"], _node_defaults["stt"]


def validate_speech_defaults(default_tts_type: str, default_stt_type: str) -> None:
    """Check a node's configured defaults (``VOIPBIN_DEFAULT_TTS_TYPE`` / ``_STT_TYPE``) at start."""
    _node_defaults.update(tts=default_tts_type, stt=default_stt_type)
    for env, lookup, value in (
        ("VOIPBIN_DEFAULT_TTS_TYPE", tts_provider, default_tts_type),
        ("VOIPBIN_DEFAULT_STT_TYPE", stt_provider, default_stt_type),
    ):
        try:
            lookup(value)
        except InvalidSpeechProvider as exc:
            raise InvalidSpeechProvider(f"{env}: {exc}") from None


def _require_key(info: SpeechProvider) -> str:
    key = provider_setting(info.name, "API_KEY")
    if info.requires_key and not key:
        raise MissingProviderKey(f"{info.name} needs an API key: set {info.key_env}")
    return key


def check_speech_credentials(tts_type: str | None, stt_type: str | None) -> None:
    """Raise :class:`MissingProviderKey` naming ``VOIPBIN_<PROVIDER>_API_KEY`` if a key is missing.

    Empty values (the node's defaults) are skipped.
    """
    if _normalized(tts_type):
        _require_key(tts_provider(tts_type))
    if _normalized(stt_type):
        _require_key(stt_provider(stt_type))


def _adapter(info: SpeechProvider) -> object:
    module, name = info.adapter.split(":")
    return getattr(importlib.import_module(module), name)


def _tts_class(info: SpeechProvider) -> type[TTS]:
    cls = _adapter(info)
    if isinstance(cls, type) and issubclass(cls, TTS):
        return cls
    raise TypeError(f"speech adapter {info.adapter} is not a TTS")


def _stt_class(info: SpeechProvider) -> type[STT]:
    cls = _adapter(info)
    if isinstance(cls, type) and issubclass(cls, STT):
        return cls
    raise TypeError(f"speech adapter {info.adapter} is not an STT")


def _cloud_kwargs(info: SpeechProvider) -> dict[str, Any]:
    if not info.requires_key:
        return {}
    return {"api_key": _require_key(info), "base_url": provider_setting(info.name, "BASE_URL") or None}


def create_tts(
    tts_type: str,
    *,
    voice_id: str | None = None,
    language: str | None = None,
    sample_rate: int = 8000,
    voice_type: str | None = None,
    variables: Mapping[str, object] | None = None,
    **options: object,
) -> TTS:
    """A new single-use TTS stream for ``tts_type`` (required: the caller resolves an empty
    configured value to the node's ``default_tts_type``; "" raises :class:`InvalidSpeechProvider`).

    ``voice_type`` (male/female/neutral) and ``variables`` (activeflow variables) only matter for
    ElevenLabs voice resolution. Extra ``options`` go to the adapter (e.g. ``timeout``).
    """
    info = tts_provider(tts_type)
    _check_language("tts_type", info, language)
    if info.name == "piper" and language and not language.lower().startswith("en") and not voice_id:
        info = tts_provider("espeak")  # Piper's bundled voice is English: espeak-ng speaks the rest
    if info.name == "elevenlabs":
        voice: str | None = resolve_elevenlabs_voice(
            voice_id, variables=variables, language=language, voice_type=voice_type
        )
    else:
        voice = voice_id or None
    kwargs = _cloud_kwargs(info) | dict(options)
    return _tts_class(info)(sample_rate=sample_rate, voice=voice, language=language, **kwargs)


def create_stt(
    stt_type: str, *, language: str | None = None, sample_rate: int = 8000, **options: object
) -> STT:
    """A new single-use STT stream for ``stt_type`` (required, like :func:`create_tts`'s type)."""
    info = stt_provider(stt_type)
    _check_language("stt_type", info, language)
    kwargs = _cloud_kwargs(info) | dict(options)
    return _stt_class(info)(language=language, sample_rate=sample_rate, **kwargs)


def list_speech_providers(default_tts_type: str, default_stt_type: str) -> dict[str, Any]:
    """Provider tables for docs and the API (runtime-supported first), with the node's defaults."""
    return {
        "tts": [p.describe() for p in TTS_TYPES.values()],
        "stt": [p.describe() for p in STT_TYPES.values()],
        "default_tts_type": default_tts_type,
        "default_stt_type": default_stt_type,
    }
