"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite drops tzinfo, so values are stored as naive UTC and re-tagged on the way out; that keeps
    ordering and pagination tokens identical across SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to UTCDateTime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


_last_create = datetime.min.replace(tzinfo=UTC)


def creation_time() -> datetime:
    """Strictly increasing (per process) creation timestamps.

    List pagination uses ``tm_create < token``; two rows sharing a microsecond at a page boundary would
    make one of them unreachable, so creation times never repeat.
    """
    global _last_create
    now = datetime.now(UTC)
    if now <= _last_create:
        now = _last_create + timedelta(microseconds=1)
    _last_create = now
    return now
