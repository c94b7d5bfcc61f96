"""Helpers that turn rows into VoIPBIN's JSON shapes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def uid(value: uuid.UUID | None) -> str:
    return str(value or uuid.UUID(int=0))


def timestamps(row: Any, *names: str) -> dict[str, str]:
    """Timestamps that are set; unset ones are omitted (VoIPBIN ``omitempty``; the spec types them string)."""
    out: dict[str, str] = {}
    for name in ("tm_create", "tm_update", "tm_delete", *names):
        value = ts(getattr(row, name, None))
        if value is not None:
            out[name] = value
    return out
