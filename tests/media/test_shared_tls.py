"""AI sessions build no TLS context on the loop: the provider SDK clients share one (issue 8).

Each AI call constructs its LLM client; the SDKs' default HTTP clients load the CA bundle into a new
``ssl.SSLContext`` every time (~17 ms holding the GIL, even for ``http://`` URLs). Counted here by
wrapping ``SSLContext.load_verify_locations``: after the one shared context exists, constructing
clients loads no certificates at all.
"""

from __future__ import annotations

import ssl

import pytest

from voipbin import tls


@pytest.fixture
def cert_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    tls.prewarm()
    calls: list[int] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        calls.append(1)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    return calls


async def test_llm_clients_share_the_process_tls_context(cert_loads: list[int]) -> None:
    from voipbin.ai.llm.anthropic_llm import AnthropicLLM
    from voipbin.ai.llm.gemini_llm import GeminiLLM
    from voipbin.ai.llm.openai_compat import OpenAICompatLLM

    clients = [
        OpenAICompatLLM("openai", "gpt-4o-mini", api_key="k", base_url="http://127.0.0.1:9/v1"),
        OpenAICompatLLM("openai", "gpt-4o-mini", api_key="k", base_url="https://api.openai.com/v1"),
        AnthropicLLM("claude-x", api_key="k", base_url="http://127.0.0.1:9"),
        GeminiLLM("gemini-x", api_key="k", base_url="http://127.0.0.1:9/"),
    ]
    try:
        assert cert_loads == []  # no CA bundle loaded, no context built per client
        assert tls.client_ssl_context() is tls.client_ssl_context()
        from openai import AsyncOpenAI

        default = AsyncOpenAI(api_key="k", base_url="http://127.0.0.1:9/v1")  # the SDK's own default
        assert cert_loads, "the counter sees the per-client context the SDK builds by default"
        await default.close()
    finally:
        for c in clients:
            await c.aclose()


async def test_deepgram_uses_the_loop_pooled_http_client(cert_loads: list[int]) -> None:
    from deepgram import AsyncDeepgramClient

    from voipbin.speech.httpclients import shared_httpx

    shared_httpx()  # the loop's pooled client exists (built once per loop)
    cert_loads.clear()
    AsyncDeepgramClient(api_key="k", httpx_client=shared_httpx())  # as SttDeepgram._open builds it
    assert cert_loads == []
    AsyncDeepgramClient(api_key="k")  # the SDK's default client: a context per client
    assert cert_loads
