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
)
from voipbin.config import Settings
from voipbin.node import build_node
from voipbin.tenants import bootstrap


@pytest.fixture
async def ai_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Env]:
    """Like ``env`` (in-memory calls), with settings overridden by ``indirect`` parametrization."""
    media = tmp_path / "media"
    media.mkdir()
    monkeypatch.setenv("VOIPBIN_FLOW_MEDIA_DIRS", str(media))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    s = Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'flow.db'}",
        admin_username="admin",
        admin_password="admin-password-1",
        ai_turn_budget=3.0,
        ai_llm_timeout=1.0,
    )
    s = s.model_copy(update=getattr(request, "param", {}))
    platform = build_node(s)
    await platform.db.migrate()
    created = await bootstrap(platform.db, platform.settings)
    assert created is not None
    try:
        yield Env(platform, created.customer.id, media)
    finally:
        await platform.flows.close()
        await platform.writer.close()
        await platform.db.close()
