"""VoIPBIN's ``Address``: the source/destination of calls, messages and emails.

JSON shape ``{"type","target","target_name","name","detail"}``, all strings (VoIPBIN:
``bin-common-handler/models/address``). Targets are normalised on construction the way VoIPBIN does
it (tel keeps ``+`` and digits; sip drops a ``sip:`` prefix and lowercases the host; email is trimmed
and lowercased). A target holding a ``${variable}`` placeholder is left untouched: it is resolved by
the flow engine at run time and validated then (call ``validate_dial_address`` again after
substitution).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from voipbin.models.action_options.errors import ActionValidationError, from_pydantic
from voipbin.models.action_options.fields import has_placeholder, is_placeholder

__all__ = [
    "ADDRESS_TYPES",
    "DIAL_ADDRESS_TYPES",
    "TEL_RE",
    "ActionValidationError",
    "Address",
    "AddressType",
    "normalize_target",
    "validate_dial_address",
]


class AddressType(StrEnum):
    NONE = ""
    TEL = "tel"
    SIP = "sip"
    EXTENSION = "extension"
    AGENT = "agent"
    CONFERENCE = "conference"
    EMAIL = "email"
    LINE = "line"
    AI = "ai"
    AI_TEAM = "ai_team"
    WEBCHAT = "webchat"
    WEB_SESSION = "web_session"
    WHATSAPP = "whatsapp"


ADDRESS_TYPES: frozenset[str] = frozenset(t.value for t in AddressType)
DIAL_ADDRESS_TYPES: frozenset[str] = frozenset({"tel", "sip", "extension", "agent"})

TEL_RE = re.compile(r"^\+[0-9]{7,15}$")
_SIP_RE = re.compile(r"^[^@\s:;<>]+@[^@\s;<>]+$")
_SIP_PREFIX_RE = re.compile(r"^sips?:", re.IGNORECASE)


def normalize_target(type_: str, target: str) -> str:
    """VoIPBIN's target normalisation; placeholders and unknown types pass through (trimmed)."""
    target = target.strip()
    if has_placeholder(target):
        return target
    if type_ == "tel":
        digits = "".join(c for c in target if c in "0123456789")
        return ("+" + digits) if target.startswith("+") else digits
    if type_ == "sip":
        target = _SIP_PREFIX_RE.sub("", target)
        user, at, host = target.rpartition("@")
        return f"{user}@{host.lower()}" if at else target
    if type_ == "email":
        return target.lower()
    return target


class Address(BaseModel):
    """A VoIPBIN address. Unknown keys are ignored; ``null`` fields read as ``""``."""

    model_config = ConfigDict(extra="ignore")

    type: str = ""
    target: str = ""
    target_name: str = ""
    name: str = ""
    detail: str = ""

    @field_validator("type", "target", "target_name", "name", "detail", mode="before")
    @classmethod
    def _coerce_text(cls, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # e.g. a phone number sent as a JSON number
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        value = value.strip()
        if value in ADDRESS_TYPES or is_placeholder(value):
            return value
        allowed = ", ".join(repr(t) for t in sorted(ADDRESS_TYPES) if t)
        raise ValueError(f"unknown address type {value!r}; expected one of {allowed}")

    @model_validator(mode="after")
    def _normalize(self) -> Address:
        normalized = normalize_target(self.type, self.target)
        if normalized != self.target:
            self.target = normalized
        return self

    def normalize(self) -> Address:
        """A normalised copy (construction already normalises; useful after ``model_construct``)."""
        return self.model_copy(update={"target": normalize_target(self.type, self.target)})

    def to_api(self) -> dict[str, str]:
        """VoIPBIN JSON: empty fields are omitted (``omitempty``), except ``type`` and ``target``."""
        data = {"type": self.type, "target": self.target}
        for key in ("target_name", "name", "detail"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def validate_dial_address(addr: Address | Mapping[str, Any] | object, field: str) -> Address:
    """Check that ``addr`` can be the destination of a call; return it normalised.

    Accepted: ``tel`` (E.164 ``^\\+[0-9]{7,15}$``), ``sip`` (``user@domain``), ``extension`` (target =
    extension id, or target_name = extension name) and ``agent`` (agent UUID). Anything else raises
    ``ActionValidationError`` (reason ``INVALID_ARGUMENT``) with ``field`` naming the bad part.
    Targets holding ``${...}`` placeholders pass: they are checked again after substitution.
    """
    if isinstance(addr, Address):
        address = addr.normalize()
    elif isinstance(addr, Mapping):
        try:
            address = Address.model_validate(dict(addr))
        except ValidationError as exc:
            raise from_pydantic(exc, field) from None
    else:
        raise ActionValidationError("INVALID_ARGUMENT", field, f"{field}: expected an address object")

    kind, target = address.type, address.target
    type_field, target_field = f"{field}.type", f"{field}.target"
    if is_placeholder(kind):
        return address
    if kind == "":
        raise ActionValidationError(
            "INVALID_ARGUMENT",
            type_field,
            f"{type_field}: address type is required; expected one of 'tel', 'sip', 'extension', 'agent'",
        )
    if kind not in DIAL_ADDRESS_TYPES:
        raise ActionValidationError(
            "INVALID_ARGUMENT",
            type_field,
            f"{type_field}: address type {kind!r} cannot be called; "
            "expected one of 'tel', 'sip', 'extension', 'agent'",
        )
    if has_placeholder(target):
        return address
    if kind == "tel" and not TEL_RE.match(target):
        raise ActionValidationError(
            "INVALID_ARGUMENT",
            target_field,
            f"{target_field}: {target!r} is not an E.164 phone number; expected '+' followed by "
            "7 to 15 digits, e.g. +15551234567",
        )
    if kind == "sip" and not _SIP_RE.match(target):
        raise ActionValidationError(
            "INVALID_ARGUMENT",
            target_field,
            f"{target_field}: {target!r} is not a SIP address; expected user@domain",
        )
    if kind == "extension" and not (target or address.target_name.strip()):
        raise ActionValidationError(
            "INVALID_ARGUMENT",
            target_field,
            f"{target_field}: an extension destination needs target (extension id) or "
            "target_name (extension name)",
        )
    if kind == "agent" and not _is_uuid(target):
        raise ActionValidationError(
            "INVALID_ARGUMENT",
            target_field,
            f"{target_field}: an agent destination needs the agent's UUID as target, got {target!r}",
        )
    return address
