"""Fixtures for the test phone's tests: a dev-carrier stand-in and known test tones."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for phone_helpers

from phone_helpers import DevCarrier, tone

from voipbin.media.wav import write_wav


@pytest.fixture
async def carrier() -> AsyncIterator[DevCarrier]:
    c = DevCarrier()
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone440.wav"
    write_wav(path, tone(440.0, 1.0))
    return path


@pytest.fixture
def phone_tone_wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone1000.wav"
    write_wav(path, tone(1000.0, 1.5, amp=6000))
    return path
