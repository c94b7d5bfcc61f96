"""The tutorial's "AI with Custom Voice ID": with an ElevenLabs key configured, an AI that names no TTS
speaks through ElevenLabs, and `voipbin.tts.elevenlabs.voice_id` picks the voice."""

from __future__ import annotations

import pytest

from tests.flow.conftest import Env
from voipbin.ai.session.config import AIDeps, resolve_config
from voipbin.models.action_options.ai import AIOption
from voipbin.speech.registry import create_tts


def ai_deps(env: Env) -> AIDeps:
    """What the composition root hands the AI package."""
    return AIDeps(env.platform.db, env.platform.settings, env.platform.encryptor)


async def test_voice_id_variable_selects_the_elevenlabs_voice(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOIPBIN_ELEVENLABS_API_KEY", "xi-test-key-0000")
    option = AIOption(initial_prompt="You are a friendly receptionist.", language="en-US")
    variables = {"voipbin.tts.elevenlabs.voice_id": "21m00Tcm4TlvDq8ikWAM"}
    cfg = await resolve_config(ai_deps(env), env.customer_id, option, variables)
    assert cfg.tts_type == "elevenlabs"
    tts = create_tts(
        cfg.tts_type,
        voice_id=cfg.tts_voice_id or None,
        language=cfg.language,
        voice_type=cfg.voice_type or None,
        variables=variables,
    )
    assert tts.voice == "21m00Tcm4TlvDq8ikWAM"
    # Without the variable, voice_type picks from the built-in table (en-US female -> "Rachel").
    female = AIOption(initial_prompt="x", language="en-US", voice_type="female")
    cfg = await resolve_config(ai_deps(env), env.customer_id, female, {})
    tts = create_tts(cfg.tts_type, language=cfg.language, voice_type=cfg.voice_type, variables={})
    assert tts.voice == "EXAVITQu4vr4xnSDxMaL"


async def test_without_a_key_the_offline_voice_speaks(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOIPBIN_ELEVENLABS_API_KEY", raising=False)
    cfg = await resolve_config(ai_deps(env), env.customer_id, AIOption(initial_prompt="x"), {})
    assert cfg.tts_type == env.platform.settings.default_tts_type == "piper"
