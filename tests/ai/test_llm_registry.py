"""The provider registry: engine_model validation, keys, listing, and that create_llm builds an
adapter that really talks to the provider's base URL (overridden to a local fake server)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from fakeproviders.llm_server import Reply
from voipbin.ai.llm.base import Message, TextDelta, Usage
from voipbin.ai.llm.scripted import ScriptedLLM
from voipbin.ai.registry import (
    GEMMA_270M,
    PROVIDERS,
    InvalidEngineModel,
    MissingProviderKey,
    ModelLocations,
    check_llm_credentials,
    create_llm,
    list_llm_models,
    llama_model_path,
    parse_engine_model,
    resolve_llm_key,
    runtime_problem,
)
from voipbin.config import Settings

# VoIPBIN's own accepted prefixes (ai-manager validation), all of which must be known here.
VOIPBIN_PREFIXES = (
    "anthropic", "aws", "azure", "cerebras", "deepseek", "fireworks", "gemini", "grok", "groq",
    "mistral", "nvidia", "ollama", "openai", "openrouter", "perplexity", "qwen", "sambanova", "together",
)  # fmt: skip
COMPAT = sorted(name for name, p in PROVIDERS.items() if p.family == "openai_compat")
HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("openai.gpt-5.2", ("openai", "gpt-5.2")),
        ("gemini.gemini-2.5-flash", ("gemini", "gemini-2.5-flash")),
        ("grok.grok-3-mini", ("grok", "grok-3-mini")),
        ("openrouter.anthropic/claude-sonnet-4.5", ("openrouter", "anthropic/claude-sonnet-4.5")),
        ("ollama.llama3.2", ("ollama", "llama3.2")),
        ("offline.scripted", ("offline", "scripted")),
    ],
)
def test_parse_valid(value, expected):
    assert parse_engine_model(value) == expected


@pytest.mark.parametrize(
    "value", ["", "openai", "openai.", ".gpt-5", "open ai.gpt", "openai.gpt 5", "openai.\n"]
)
def test_parse_malformed(value):
    with pytest.raises(InvalidEngineModel, match=re.escape("<provider>.<model>")):
        parse_engine_model(value)


def test_parse_unknown_provider():
    with pytest.raises(InvalidEngineModel, match="unknown provider 'dialogflow'") as info:
        parse_engine_model("dialogflow.es")
    assert isinstance(info.value, ValueError)


def test_every_voipbin_prefix_is_known():
    assert set(VOIPBIN_PREFIXES) <= set(PROVIDERS)


def test_aws_is_rejected_as_unsupported():
    with pytest.raises(InvalidEngineModel, match="not supported"):
        parse_engine_model("aws.anthropic.claude-3-5-haiku-20241022-v1:0")


def test_azure_needs_base_url(monkeypatch):
    with pytest.raises(InvalidEngineModel, match="VOIPBIN_AZURE_BASE_URL"):
        parse_engine_model("azure.my-deployment")
    monkeypatch.setenv("VOIPBIN_AZURE_BASE_URL", "https://example.openai.azure.com/openai/v1/")
    assert parse_engine_model("azure.my-deployment") == ("azure", "my-deployment")


def test_offline_models_are_a_fixed_set():
    with pytest.raises(InvalidEngineModel, match=re.escape("offline.scripted")):
        parse_engine_model("offline.gpt-5")


@pytest.mark.skipif(HAS_LLAMA, reason="llama-cpp-python is installed")
def test_llama_rejected_without_llama_cpp():
    for value in ("llama.gemma3-270m", "offline.gemma3-270m"):
        with pytest.raises(InvalidEngineModel, match="llama-cpp-python"):
            parse_engine_model(value)


def test_resolve_key_prefers_engine_key(monkeypatch):
    assert resolve_llm_key("openai", None) is None
    monkeypatch.setenv("VOIPBIN_OPENAI_API_KEY", "from-env")
    assert resolve_llm_key("openai", None) == "from-env"
    assert resolve_llm_key("openai", "") == "from-env"
    assert resolve_llm_key("openai", "from-ai") == "from-ai"


def test_missing_key_names_the_env_var(monkeypatch):
    with pytest.raises(MissingProviderKey, match="VOIPBIN_OPENAI_API_KEY") as info:
        check_llm_credentials("openai.gpt-5-mini", None)
    assert isinstance(info.value, ValueError)
    with pytest.raises(MissingProviderKey, match="VOIPBIN_GEMINI_API_KEY"):
        check_llm_credentials("gemini.gemini-2.5-flash", "")
    check_llm_credentials("openai.gpt-5-mini", "sk-own")
    monkeypatch.setenv("VOIPBIN_OPENAI_API_KEY", "sk-env")
    check_llm_credentials("openai.gpt-5-mini", None)


def test_keyless_providers_need_no_key():
    check_llm_credentials("ollama.llama3.2", None)
    check_llm_credentials("offline.scripted", None)


def test_check_credentials_validates_engine_model_first():
    with pytest.raises(InvalidEngineModel):
        check_llm_credentials("nope.x", "key")


def test_list_models(monkeypatch):
    monkeypatch.setenv("VOIPBIN_GROQ_API_KEY", "gsk-secret")
    rows = {row["provider"]: row for row in list_llm_models()}
    assert set(VOIPBIN_PREFIXES) | {"offline", "llama"} == set(rows)
    assert rows["aws"]["supported"] is False
    assert rows["openai"]["supported"] is True and rows["openai"]["requires_key"] is True
    assert rows["openai"]["key_env"] == "VOIPBIN_OPENAI_API_KEY"
    assert rows["openai"]["base_url_env"] == "VOIPBIN_OPENAI_BASE_URL"
    assert "openai.gpt-5.2" in rows["openai"]["engine_models"]
    assert rows["ollama"]["requires_key"] is False
    assert rows["offline"]["supported"] is True
    assert rows["grok"]["base_url"] == "https://api.x.ai/v1"
    assert rows["groq"]["key_configured"] is True and rows["openai"]["key_configured"] is False
    assert "gsk-secret" not in repr(rows)
    for row in rows.values():
        if row["supported"]:
            parse_engine_model(row["engine_models"][0])


def test_default_engine_model_is_runnable():
    default = Settings().default_engine_model
    assert default == "offline.scripted"
    assert isinstance(create_llm(default, None), ScriptedLLM)


def test_model_locations_come_from_settings(tmp_path):
    assert ModelLocations.from_settings(Settings(data_dir=tmp_path)) == ModelLocations(tmp_path / "models")
    gguf = tmp_path / "gemma.gguf"
    explicit = Settings(data_dir=tmp_path, llama_model_dir="/opt/models", llama_model_path=str(gguf))
    assert ModelLocations.from_settings(explicit) == ModelLocations(Path("/opt/models"), gguf)


def test_llama_model_path_looks_only_where_it_is_told(tmp_path):
    (tmp_path / "tiny.gguf").write_bytes(b"GGUF")
    here = ModelLocations(tmp_path)
    assert llama_model_path("tiny", here) == tmp_path / "tiny.gguf"
    assert llama_model_path("other", here) is None
    assert llama_model_path("tiny") is None  # no locations: no local models known
    gemma = tmp_path / "g.gguf"
    assert llama_model_path(GEMMA_270M, ModelLocations(tmp_path, gemma)) is None  # explicit, absent
    gemma.write_bytes(b"GGUF")
    assert llama_model_path(GEMMA_270M, ModelLocations(None, gemma)) == gemma


@pytest.mark.skipif(not HAS_LLAMA, reason="optional llama extra not installed")
def test_llama_models_need_locations(tmp_path):
    (tmp_path / "tiny.gguf").write_bytes(b"GGUF")
    assert "no local model directory" in (runtime_problem(PROVIDERS["llama"], "tiny") or "")
    assert runtime_problem(PROVIDERS["llama"], "tiny", ModelLocations(tmp_path)) is None
    assert parse_engine_model("llama.tiny", ModelLocations(tmp_path)) == ("llama", "tiny")


def test_create_llm_rejects_missing_key():
    with pytest.raises(MissingProviderKey):
        create_llm("anthropic.claude-haiku-4-5", None)


@pytest.mark.parametrize("provider", COMPAT)
async def test_compat_provider_uses_base_url_override(provider, fake_openai, monkeypatch):
    prefix = f"VOIPBIN_{provider.upper()}"
    monkeypatch.setenv(f"{prefix}_BASE_URL", fake_openai.base_url + "/compat/v1")
    monkeypatch.setenv(f"{prefix}_API_KEY", f"key-{provider}")
    fake_openai.push(Reply(text=["ok"]))
    llm = create_llm(f"{provider}.some-model", None, timeout=3.0)
    try:
        text = await llm.complete([Message.user("hi")], max_tokens=50)
    finally:
        await llm.aclose()
    assert text == "ok"
    request = fake_openai.requests[0]
    assert request.path == "/compat/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer key-{provider}"
    body = request.json()
    assert body["model"] == "some-model"
    expected_limit = "max_completion_tokens" if provider in ("openai", "azure") else "max_tokens"
    assert body[expected_limit] == 50
    assert ("stream_options" in body) == PROVIDERS[provider].stream_usage


async def test_engine_key_overrides_env_key(fake_openai, monkeypatch):
    monkeypatch.setenv("VOIPBIN_OPENAI_BASE_URL", fake_openai.base_url + "/v1")
    monkeypatch.setenv("VOIPBIN_OPENAI_API_KEY", "env-key")
    llm = create_llm("openai.gpt-5-mini", "ai-key")
    await llm.complete([Message.user("hi")])
    await llm.aclose()
    assert fake_openai.requests[0].headers["authorization"] == "Bearer ai-key"


async def test_ollama_needs_no_key(fake_openai, monkeypatch):
    monkeypatch.setenv("VOIPBIN_OLLAMA_BASE_URL", fake_openai.base_url + "/v1")
    llm = create_llm("ollama.llama3.2", None)
    assert await llm.complete([Message.user("hi")]) == "Hello, how can I help?"
    await llm.aclose()


async def test_anthropic_and_gemini_use_base_url_override(fake_anthropic, fake_gemini, monkeypatch):
    monkeypatch.setenv("VOIPBIN_ANTHROPIC_BASE_URL", fake_anthropic.base_url)
    monkeypatch.setenv("VOIPBIN_GEMINI_BASE_URL", fake_gemini.base_url)
    fake_anthropic.expected_key = "ant-key"
    fake_gemini.expected_key = "gem-key"
    for engine_model, key in (
        ("anthropic.claude-haiku-4-5", "ant-key"),
        ("gemini.gemini-2.5-flash", "gem-key"),
    ):
        llm = create_llm(engine_model, key)
        events = [e async for e in llm.stream([Message.system("Be brief."), Message.user("hi")])]
        await llm.aclose()
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello, how can I help?"
        assert isinstance(events[-1], Usage)
    assert fake_anthropic.requests[0].json()["model"] == "claude-haiku-4-5"
    assert "gemini-2.5-flash" in fake_gemini.requests[0].path
