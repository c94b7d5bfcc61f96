"""Base class of every action option model.

Options follow VoIPBIN's decoding rules: unknown keys are ignored, ``null``/``""`` mean "unset" (the
field default applies). Checks that need more than one field, or that must name a path inside the
option, live in ``check``; action ids an option points at are reported by ``references`` so
``validate_actions`` can verify them against the surrounding list.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from voipbin.models.action_options.errors import ActionValidationError


class ActionOption(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _drop_unset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None and v != ""}
        return data

    def check(self, field: str) -> None:
        """Cross-field checks; ``field`` is the option's path, e.g. ``actions[2].option``."""

    def references(self) -> list[tuple[str, uuid.UUID | str | None]]:
        """``(sub-path, action id)`` pairs this option jumps to (goto, branch, conditions)."""
        return []


def require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ActionValidationError("INVALID_ARGUMENT", field, f"{field}: {message}")


class NoOption(ActionOption):
    """Actions without options (answer, beep, mute, stop, ...): any keys are ignored."""
