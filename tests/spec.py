"""Where VoIPBIN's official OpenAPI spec lies: it is reference data beside the project (never copied in).

Looked up in ``VOIPBIN_OPENAPI_SPEC``, then beside the checkout (``../shared/...``), then at the
workplace's shared folder; tests that need it skip when none exists.
"""

from __future__ import annotations

import os
from pathlib import Path

_RELATIVE = "shared/reference/voipbin-openapi/openapi.yaml"


def find_spec() -> Path:
    candidates = [
        os.environ.get("VOIPBIN_OPENAPI_SPEC", ""),
        str(Path(__file__).resolve().parents[2] / _RELATIVE),
        f"/work/{_RELATIVE}",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return Path(candidates[-1])


SPEC = find_spec()
