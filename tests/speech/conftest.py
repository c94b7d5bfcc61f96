"""Speech test fixtures: offline clips synthesised once per session, fake provider servers."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
# tests/fakeproviders is shared by several test packages; make it importable as ``fakeproviders``.
for _p in (_TESTS, Path(__file__).resolve().parent):  # + speechutil next to this file
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
try:
    import voipbin  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(_TESTS.parent / "src"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: loads a speech model (still part of the default run)")


from speechutil import SENTENCE  # noqa: E402


async def _synthesize(tts_type: str, text: str, rate: int) -> bytes:
    from voipbin.speech.registry import create_tts

    tts = create_tts(tts_type, sample_rate=rate)
    return b"".join([c async for c in tts.synthesize(text)])


@pytest.fixture(scope="session")
def piper_clip_8k() -> bytes:
    return asyncio.run(_synthesize("piper", SENTENCE, 8000))


@pytest.fixture(scope="session")
def piper_clip_16k() -> bytes:
    return asyncio.run(_synthesize("piper", SENTENCE, 16000))


@pytest.fixture(scope="session")
def espeak_clip_8k() -> bytes:
    return asyncio.run(_synthesize("espeak", SENTENCE, 8000))


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch):
    """Tests must not pick up real keys or base URLs from the developer's environment."""
    import os

    for name in list(os.environ):
        if name.startswith("VOIPBIN_") and (name.endswith("_API_KEY") or name.endswith("_BASE_URL")):
            monkeypatch.delenv(name)
