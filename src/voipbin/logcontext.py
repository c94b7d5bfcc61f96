"""Log correlation: the ``call_id``, ``activeflow_id`` and ``aicall_id`` of the work being done, and the
JSON log format (``VOIPBIN_LOG_FORMAT=json``) that puts them on every line that has them.

The ids live in context variables, set where a call's or activeflow's task starts (:func:`context` for
``create_task(..., context=...)``, :func:`bind` inside a task); asyncio copies them into every task that
task creates, so an action handler, an AI session and their helpers log with their call's ids.
"""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)
activeflow_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("activeflow_id", default=None)
aicall_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("aicall_id", default=None)
_VARS = {"call_id": call_id, "activeflow_id": activeflow_id, "aicall_id": aicall_id}
ZERO = str(uuid.UUID(int=0))

Id = uuid.UUID | str | None


def bind(**ids: Id) -> None:
    """Set ids for the rest of the current task (and the tasks it creates); None/zero ids are skipped."""
    for name, value in ids.items():
        text = str(value) if value is not None else ""
        if text and text != ZERO:
            _VARS[name].set(text)


def context(**ids: Id) -> contextvars.Context:
    """A copy of the current context with ``ids`` bound: for ``loop.create_task(coro, context=...)``."""
    ctx = contextvars.copy_context()
    ctx.run(bind, **ids)
    return ctx


def current() -> dict[str, str]:
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the correlation ids that are set, and the
    traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **current(),
        }
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str, fmt: str) -> None:
    """The process's root handler (``voipbin serve``): text as before, or JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
