"""Where VoIPBIN's official OpenAPI spec lies: it is reference data beside the project (never copied in).

Looked up in ``VOIPBIN_OPENAPI_SPEC``, then beside the checkout (``../shared/...``), then at the
workplace's shared folder; tests that need it skip when none exists.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

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


@lru_cache(maxsize=1)
def components() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())["components"]["schemas"]


def validate(body: dict[str, Any], schema_name: str, *, relax: tuple[str, ...] = ()) -> None:
    """Validate with $refs resolved in-document; ``relax`` drops enums we knowingly extend."""
    schemas = components()
    root = {"components": {"schemas": schemas}, "$ref": f"#/components/schemas/{schema_name}"}
    instance = {k: v for k, v in body.items() if k not in relax}
    validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
