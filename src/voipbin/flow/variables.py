"""Activeflow variables: ``${name}`` substitution and the built-in ``voipbin.*`` variables.

VoIPBIN substitutes every string of an action's option right before the action runs, recursively
through nested objects and arrays, using the activeflow's flat ``str -> str`` map; an unknown name
becomes the empty string. We do the same, with one deliberate difference: non-string scalars inside
arrays stay as they are (VoIPBIN stringifies them); the option models coerce either form.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

VARIABLE_RE = re.compile(r"\$\{(.*?)\}")
RESERVED_PREFIX = "voipbin."

_ADDRESS_KEYS = ("type", "target", "target_name", "name", "detail")


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Replace each ``${name}`` in ``text``; unknown names become ``""``."""
    if "${" not in text:
        return text
    return VARIABLE_RE.sub(lambda m: str(variables.get(m.group(1).strip(), "")), text)


def substitute_value(value: Any, variables: Mapping[str, str]) -> Any:
    """Substitute every string inside ``value`` (dicts and lists recursively); other values unchanged."""
    if isinstance(value, str):
        return substitute(value, variables)
    if isinstance(value, dict):
        return {key: substitute_value(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_value(item, variables) for item in value]
    return value


def user_variables(raw: Mapping[str, Any] | None) -> dict[str, str]:
    """Caller-provided variables: strings only, reserved ``voipbin.*`` names dropped (as VoIPBIN does)."""
    out: dict[str, str] = {}
    for key, value in (raw or {}).items():
        if not isinstance(key, str) or key.startswith(RESERVED_PREFIX):
            continue
        out[key] = value if isinstance(value, str) else str(value)
    return out


def activeflow_variables(
    *,
    activeflow_id: uuid.UUID,
    reference_type: str,
    reference_id: uuid.UUID,
    reference_activeflow_id: uuid.UUID,
    flow_id: uuid.UUID,
    complete_count: int,
) -> dict[str, str]:
    prefix = "voipbin.activeflow."
    return {
        prefix + "id": str(activeflow_id),
        prefix + "reference_type": reference_type,
        prefix + "reference_id": str(reference_id),
        prefix + "reference_activeflow_id": str(reference_activeflow_id),
        prefix + "flow_id": str(flow_id),
        prefix + "complete_count": str(complete_count),
    }


def call_variables(
    *,
    call_id: uuid.UUID,
    source: Mapping[str, Any] | None,
    destination: Mapping[str, Any] | None,
    direction: str,
    master_call_id: uuid.UUID | None,
) -> dict[str, str]:
    """``voipbin.call.*`` as VoIPBIN's call-manager sets them (``digits`` starts empty)."""
    prefix = "voipbin.call."
    out = {
        prefix + "id": str(call_id),
        prefix + "direction": direction,
        prefix + "master_call_id": str(master_call_id or uuid.UUID(int=0)),
        prefix + "digits": "",
    }
    for side, address in (("source", source), ("destination", destination)):
        for key in _ADDRESS_KEYS:
            value = (address or {}).get(key, "")
            out[f"{prefix}{side}.{key}"] = value if isinstance(value, str) else str(value)
    return out
