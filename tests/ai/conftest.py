"""Fixtures for the LLM tests: fake provider servers on 127.0.0.1 (tests/fakeproviders/)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
# tests/fakeproviders is shared by several test packages; make it importable as ``fakeproviders``.
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))
try:
    import voipbin  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(_TESTS.parent / "src"))

from fakeproviders.llm_anthropic import FakeAnthropic  # noqa: E402
from fakeproviders.llm_gemini import FakeGemini  # noqa: E402
from fakeproviders.llm_openai import FakeOpenAI  # noqa: E402


@pytest.fixture
async def fake_openai():
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def fake_anthropic():
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def fake_gemini():
    async with FakeGemini() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch):
    """Tests must not pick up real keys or base URLs from the developer's environment."""
    for name in list(os.environ):
        if name.startswith("VOIPBIN_") and name.endswith(("_API_KEY", "_BASE_URL")):
            monkeypatch.delenv(name)
        if name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
            monkeypatch.delenv(name)
        if name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
            monkeypatch.delenv(name)
