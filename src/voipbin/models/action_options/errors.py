"""The one error type raised by action/address validation.

It carries exactly what the API error envelope needs (``reason``, the failing ``field`` path and a
human ``message``), so the HTTP layer can map it to a VoIPBIN 400 without knowing about pydantic.
It lives in its own module because both ``models.address`` and ``models.actions`` raise it.
"""

from __future__ import annotations

from typing import Literal

Reason = Literal["INVALID_ACTION_TYPE", "INVALID_ANONYMOUS_VALUE", "INVALID_ARGUMENT"]


class ActionValidationError(ValueError):
    """A flow action list, an action option or an address was rejected.

    ``reason`` is the VoIPBIN error reason, ``field`` a path such as ``actions[2].option.duration``
    and ``message`` a sentence that names the field and says what was expected.
    """

    status = "INVALID_ARGUMENT"  # VoIPBIN envelope status; every reason here is an HTTP 400
    http_status = 400

    def __init__(self, reason: Reason, field: str, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.field = field
        self.message = message

    def __repr__(self) -> str:
        return f"ActionValidationError({self.reason!r}, {self.field!r}, {self.message!r})"


# pydantic error types we phrase ourselves; anything else falls back to pydantic's own message.
_GENERIC_MESSAGES = {
    "list_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "string_type": "expected a string",
    "too_short": "must not be empty",
    "missing": "is required",
}


def join_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location under ``prefix``.

    ``("destinations", 0, "target")`` under ``actions[1].option``
    → ``actions[1].option.destinations[0].target``
    """
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def from_pydantic(exc: object, prefix: str) -> ActionValidationError:
    """Turn a pydantic ``ValidationError`` into our error, naming the first failing field.

    An invalid ``anonymous`` anywhere wins, because that is the one option check VoIPBIN itself makes.
    """
    errors = exc.errors(include_url=False)  # type: ignore[attr-defined]
    chosen = next((e for e in errors if e["type"] == "invalid_anonymous"), errors[0])
    field = join_path(prefix, tuple(chosen["loc"]))
    reason: Reason = (
        "INVALID_ANONYMOUS_VALUE" if chosen["type"] == "invalid_anonymous" else "INVALID_ARGUMENT"
    )
    text = _GENERIC_MESSAGES.get(chosen["type"], chosen["msg"])
    if text.startswith("Value error, "):
        text = text[len("Value error, ") :]
    return ActionValidationError(reason, field, f"{field}: {text}")
