"""Credentials in URLs never reach the logs in full."""

from __future__ import annotations

import logging

from voipbin.logsafe import RedactSecrets, redact


def test_redact_query_credentials() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefgh1234"
    line = f"POST /v1.0/calls?token={jwt}&x=1 HTTP/1.1"
    out = redact(line)
    assert jwt not in out and "token=****1234" in out and "&x=1" in out
    key = "vb_" + "A" * 28 + "wxyz"
    assert key not in redact(f"GET /v1.0/numbers?accesskey={key}")


def test_filter_masks_uvicorn_access_args() -> None:
    key = "vb_" + "B" * 32
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", f"/v1.0/calls?accesskey={key}", "1.1", 200),
        None,
    )
    RedactSecrets().filter(record)
    assert key not in record.getMessage()
