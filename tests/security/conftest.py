"""The SSRF guard's tests run with the production default: an empty allow-list (public addresses only)."""

from __future__ import annotations

import pytest

from tests.api.support import api, settings  # noqa: F401  (fixtures)
from tests.flow.conftest import env  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def strict_outbound(monkeypatch: pytest.MonkeyPatch) -> None:
    # Autouse fixtures run first, so the Settings the api/env fixtures build read this.
    monkeypatch.setenv("VOIPBIN_OUTBOUND_ALLOW", "")
