"""Keep credentials out of logs: the tutorial passes ``?token=<JWT>`` and ``?accesskey=`` in URLs, and
uvicorn's access log would otherwise print them in full."""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(r"(?i)([?&](?:token|accesskey|access_key|api_key|key)=)([^&\s]+)")


def redact(text: str) -> str:
    return _SECRET_PARAMS.sub(
        lambda m: m.group(1) + "****" + (m.group(2)[-4:] if len(m.group(2)) > 8 else ""), text
    )


class RedactSecrets(logging.Filter):
    """Masks credential query parameters in a record's message arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "httpx", "voipbin"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
