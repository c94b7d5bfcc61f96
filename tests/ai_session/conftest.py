# ruff: noqa: E402  (tests/fakeproviders is put on sys.path first)
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:  # tests/fakeproviders is importable as ``fakeproviders``
    sys.path.insert(0, str(_TESTS))

from tests.calls.support import telephony  # noqa: F401  (fixture)
from tests.flow.conftest import (
    Env,
    env,  # noqa: F401  (fixture)
    env_settings,
    running_env,
)


@pytest.fixture
async def ai_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Env]:
    """Like ``env`` (in-memory calls), with settings overridden by ``indirect`` parametrization."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    s, media = env_settings(tmp_path, monkeypatch, ai_turn_budget=3.0, ai_llm_timeout=1.0)
    s = s.model_copy(update=getattr(request, "param", {}))
    async with running_env(s, media) as e:
        yield e
