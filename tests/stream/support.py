"""Shared by the Twilio Media Streams tests: the called phone and the call that streams to a bot."""

from __future__ import annotations

from typing import Any

PHONE = "+15559876543"


def call_body(bot_url: str, data: str = "", *after: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": {"type": "tel", "target": "+15551234567"},
        "destinations": [{"type": "tel", "target": PHONE}],
        "actions": [
            {
                "type": "external_media_start",
                "option": {
                    "external_host": bot_url,
                    "transport": "websocket",
                    "encapsulation": "twilio",
                    "data": data,
                },
            },
            *after,
        ],
    }


AFTER_STREAM = [
    {"type": "variable_set", "option": {"key": "after_stream", "value": "yes"}},
    {"type": "sleep", "option": {"duration": 300}},
    {"type": "hangup"},
]
