"""Fixtures for transcription tests: the API (SQLite and PostgreSQL) with the transcribe routers,
a flow-engine platform with in-memory calls, and the whole platform with telephony."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.api.support import Api, api, settings  # noqa: F401  (fixtures)
from tests.calls.support import telephony  # noqa: F401  (fixture)
from tests.flow.conftest import Env, env  # noqa: F401  (fixture)


def include_routers(app) -> None:  # type: ignore[no-untyped-def]
    """The app serves the transcribe routers."""
    paths = app.openapi()["paths"]
    assert "/v1.0/transcribes" in paths and "/v1.0/aisummaries" in paths


@pytest.fixture
async def tapi(api: Api) -> AsyncIterator[Api]:  # noqa: F811
    include_routers(api.app)
    try:
        yield api
    finally:
        await api.platform.summaries.close()
        await api.platform.transcribes.close()


@pytest.fixture
async def flowenv(env: Env) -> AsyncIterator[Env]:  # noqa: F811
    try:
        yield env
    finally:
        await env.platform.summaries.close()
        await env.platform.transcribes.close()


@pytest.fixture
async def tele(telephony):  # type: ignore[no-untyped-def]  # noqa: F811
    """The whole platform with telephony, plus the transcribe routers."""
    include_routers(telephony.app)
    try:
        yield telephony
    finally:
        await telephony.platform.summaries.close()
        await telephony.platform.transcribes.close()
