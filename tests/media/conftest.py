"""Loopback fixtures: real UDP sockets on 127.0.0.1, real session clocks."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for media_helpers

from media_helpers import make_pair

from voipbin.media import MediaSession


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MediaSession, MediaSession]]:
    a, b = await make_pair()
    yield a, b
    await a.close()
    await b.close()
