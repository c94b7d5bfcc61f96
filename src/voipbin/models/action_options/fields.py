"""Field types for action options: VoIPBIN's loose JSON plus ``${variable}`` placeholders.

Why hand-written validators instead of pydantic's lax mode: an option field typed int/bool/uuid must
also accept a string that is *exactly* one ``${name}`` placeholder (it is substituted by the flow
engine right before the action runs, so ``{"duration": "${wait_ms}"}`` is legal at create time).
A pydantic ``int | str`` union would keep ``"30000"`` as a string, so each type is one plain validator.

Rules (the contract the flow engine can rely on after ``parse_option``):

* ``null`` and ``""`` mean "unset" for every field (Go decodes both to the zero value); the option base
  model drops them before validation so the field default applies.
* int fields: JSON integers, integral floats (``30000.0``) and numeric strings (``"30000"``) → ``int``;
  booleans are rejected; a placeholder string is kept verbatim (a ``str``).
* bool fields: ``true``/``false``, ``0``/``1``, ``"true"``/``"false"`` (any case) → ``bool``;
  placeholder kept.
* uuid fields: canonical UUID strings → ``uuid.UUID``; the zero UUID → ``None``; placeholder kept.
* enum fields: one of the listed values; placeholder kept (checked again after substitution).
  ``anonymous`` is the exception: VoIPBIN checks it at create time, so placeholders are rejected there.
* string fields: strings; numbers are turned into their decimal text (``5`` → ``"5"``).
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import PlainValidator
from pydantic_core import PydanticCustomError

PLACEHOLDER_RE = re.compile(r"^\$\{[^{}]+\}$")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_FLOAT_RE = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_INT64 = 2**63 - 1
ZERO_UUID = uuid.UUID(int=0)
_HINT = "or a ${variable} placeholder"


def is_placeholder(value: object) -> bool:
    """True for a string that is exactly one ``${name}`` placeholder."""
    return isinstance(value, str) and PLACEHOLDER_RE.match(value.strip()) is not None


def has_placeholder(value: object) -> bool:
    return isinstance(value, str) and "${" in value


def fail(message: str, error_type: str = "invalid_option") -> PydanticCustomError:
    # No context dict: the message is used verbatim, so literal "${...}" text is safe.
    return PydanticCustomError(error_type, message)


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def to_int(value: Any, ge: int | None, le: int | None, what: str) -> int | str:
    expected = f"expected {what}"
    if isinstance(value, str):
        text = value.strip()
        if is_placeholder(text):
            return text
        if not _INT_RE.match(text):
            raise fail(f"{expected} {_HINT}, got {_describe(value)}")
        number = int(text)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"{expected} {_HINT}, got {_describe(value)}")
    elif isinstance(value, float):
        if not value.is_integer():
            raise fail(f"{expected}, got {_describe(value)}")
        number = int(value)
    else:
        number = value
    low = -_INT64 if ge is None else ge
    high = _INT64 if le is None else le
    if not low <= number <= high:
        raise fail(f"{expected} between {low} and {high}, got {number}")
    return number


def int_in(ge: int | None = 0, le: int | None = None, what: str = "an integer") -> PlainValidator:
    """Validator of an int option field (default range ≥ 0) that also takes a ``${...}`` placeholder.

    Used as ``Annotated[int | str, int_in(...)]`` (a call is not a type, so the ``Annotated`` is spelt out).
    """
    return PlainValidator(lambda v: to_int(v, ge, le, what))


VarInt = Annotated[int | str, int_in()]


def _to_float(value: Any) -> float | str:
    if isinstance(value, str):
        text = value.strip()
        if is_placeholder(text):
            return text
        if _FLOAT_RE.match(text):
            return float(text)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if number == number and abs(number) != float("inf"):  # reject NaN/inf
            return number
    raise fail(f"expected a number {_HINT}, got {_describe(value)}")


VarFloat = Annotated[float | str, PlainValidator(_to_float)]


def _to_bool(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip()
        if is_placeholder(text):
            return text
        if text.lower() in ("true", "1"):
            return True
        if text.lower() in ("false", "0"):
            return False
    raise fail(f"expected true or false {_HINT}, got {_describe(value)}")


VarBool = Annotated[bool | str, PlainValidator(_to_bool)]


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise fail(f"expected a string, got {_describe(value)}")


VarStr = Annotated[str, PlainValidator(_to_str)]


def _to_uuid(value: Any) -> uuid.UUID | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, uuid.UUID):
        return None if value == ZERO_UUID else value
    if isinstance(value, str):
        text = value.strip()
        if is_placeholder(text):
            return text
        try:
            parsed = uuid.UUID(text)
        except ValueError:
            parsed = None
        # uuid.UUID() also takes braces/urn/hex-without-dashes; VoIPBIN wants the canonical form.
        if parsed is not None and str(parsed) == text.lower():
            return None if parsed == ZERO_UUID else parsed
    raise fail(
        f"expected a UUID such as 550e8400-e29b-41d4-a716-446655440000 {_HINT}, got {_describe(value)}"
    )


VarUuid = Annotated[uuid.UUID | str | None, PlainValidator(_to_uuid)]


def one_of(*allowed: str, placeholder: bool = True, error_type: str = "invalid_option") -> PlainValidator:
    """Validator of a string option field restricted to ``allowed`` (``""`` is always allowed: unset).

    Used as ``Annotated[str, one_of(...)]``.
    """
    choices = frozenset(allowed) | {""}
    listed = ", ".join(repr(a) for a in allowed)

    def check(value: Any) -> str:
        if isinstance(value, str):
            if value in choices:
                return value
            if placeholder and is_placeholder(value):
                return value.strip()
        raise fail(f"expected one of {listed}, got {_describe(value)}", error_type)

    return PlainValidator(check)


def matching(regex: str, what: str, max_length: int | None = None) -> PlainValidator:
    """Validator of a string option field that must match ``regex`` (or be a placeholder / empty).

    Used as ``Annotated[str, matching(...)]``.
    """
    compiled = re.compile(regex)

    def check(value: Any) -> str:
        text = _to_str(value)
        if max_length is not None and len(text) > max_length:
            raise fail(f"expected {what} of at most {max_length} characters, got {len(text)}")
        if text == "" or has_placeholder(text):  # checked again after substitution
            return text
        if not compiled.match(text):
            raise fail(f"expected {what}, got {_describe(value)}")
        return text

    return PlainValidator(check)


# Shared option vocabularies (VoIPBIN values, see voipbin-api.md §3.3).
Language = Annotated[
    str, matching(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$", "a BCP47 language tag such as en-US")
]
HttpUrl = Annotated[str, matching(r"^https?://[^\s]+$", "an http:// or https:// URL")]
HttpMethod = Annotated[str, one_of("POST", "GET", "PUT", "DELETE")]
Anonymous = Annotated[str, one_of("yes", "no", "auto", placeholder=False, error_type="invalid_anonymous")]
Dtmf = Annotated[str, matching(r"^[0-9A-Da-d#*]*$", "DTMF keys (0-9, A-D, #, *)", max_length=100)]
