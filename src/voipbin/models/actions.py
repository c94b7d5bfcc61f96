"""Flow actions: the ``Action`` model, per-type option models and ``validate_actions``.

VoIPBIN stores an action as ``{"id","next_id","type","option","tm_execute"}`` with ``option`` a free
map. We keep that map exactly as the user sent it (round trip), and validate it at create time with
the option model of the action's type, which is stricter than VoIPBIN (it only checks ``type`` and
``anonymous``): a wrong option type is a 400 naming the field instead of a hung-up call later.
Unknown option keys are still ignored, as in VoIPBIN.

``${variable}`` placeholders: the flow engine substitutes every string of an option right before the
action runs. So at create time a field typed int/bool/uuid/enum also accepts a string that is exactly
one placeholder (``{"duration": "${wait}"}``), and numeric strings are coerced (``"30000"`` → 30000).
The flow engine should substitute first and then call ``parse_option``; see
``action_options/fields.py`` for the exact coercion rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voipbin.models.action_options.base import ActionOption
from voipbin.models.action_options.errors import ActionValidationError, from_pydantic
from voipbin.models.action_options.fields import ZERO_UUID, is_placeholder
from voipbin.models.action_options.registry import OPTION_MODELS

__all__ = [
    "ACTION_TYPES",
    "MAX_ACTIONS",
    "MAX_NESTING",
    "NON_RTC_ONLY",
    "OPTION_MODELS",
    "RESERVED_IDS",
    "RTC_ONLY",
    "Action",
    "ActionValidationError",
    "parse_option",
    "validate_actions",
]

ACTION_TYPES: frozenset[str] = frozenset(OPTION_MODELS)

# VoIPBIN's media gate (informational: we do not skip actions silently; ai_summary runs in call flows).
RTC_ONLY: frozenset[str] = frozenset(
    [
        "amd",
        "answer",
        "beep",
        "condition_call_digits",
        "condition_call_status",
        "confbridge_join",
        "conference_join",
        "connect",
        "digits_receive",
        "digits_send",
        "echo",
        "external_media_start",
        "external_media_stop",
        "hangup",
        "mute",
        "play",
        "queue_join",
        "recording_start",
        "recording_stop",
        "sleep",
        "stream_echo",
        "talk",
        "transcribe_start",
        "transcribe_stop",
    ]
)
NON_RTC_ONLY: frozenset[str] = frozenset({"ai_summary", "ai_task", "block"})

ID_EMPTY = ZERO_UUID
ID_START = uuid.UUID(int=1)
ID_FINISH = uuid.UUID(int=2)
ID_NEXT = uuid.UUID(int=3)
RESERVED_IDS: frozenset[uuid.UUID] = frozenset({ID_EMPTY, ID_START, ID_FINISH, ID_NEXT})

MAX_ACTIONS = 1000  # per list (a flow, or one call action's nested actions)
MAX_NESTING = 5  # call.actions inside call.actions ...

OptionCheck = Callable[[str, str, BaseModel], None]


def _format_time(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Action(BaseModel):
    """One flow action. ``id`` is generated when missing or zero; ``next_id`` zero = next in list."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    next_id: uuid.UUID = ZERO_UUID
    type: str
    option: dict[str, Any] = Field(default_factory=dict)
    tm_execute: datetime | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _generate_id(cls, value: Any) -> Any:
        if value in (None, "") or value == ZERO_UUID or value == str(ZERO_UUID):
            return uuid.uuid4()
        return value

    @field_validator("next_id", mode="before")
    @classmethod
    def _zero_next(cls, value: Any) -> Any:
        return ZERO_UUID if value in (None, "") else value

    @field_validator("option", mode="before")
    @classmethod
    def _empty_option(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("tm_execute", mode="before")
    @classmethod
    def _empty_time(cls, value: Any) -> Any:
        return None if value == "" else value

    def to_api(self) -> dict[str, Any]:
        """VoIPBIN JSON: ids as strings, ``option`` omitted when empty, ``tm_execute`` once run.

        VoIPBIN's code sends ``tm_execute: null`` before an action runs, but its spec types the field as a
        string; we omit it (as we omit every unset timestamp) so bodies validate against the spec."""
        data: dict[str, Any] = {"id": str(self.id), "next_id": str(self.next_id), "type": self.type}
        if self.option:
            data["option"] = self.option
        if self.tm_execute:
            data["tm_execute"] = _format_time(self.tm_execute)
        return data


def _error(field: str, message: str, reason: str = "INVALID_ARGUMENT") -> ActionValidationError:
    return ActionValidationError(reason, field, f"{field}: {message}")  # type: ignore[arg-type]


def _parse_id(value: Any, field: str, *, generate: bool) -> uuid.UUID:
    if value is None or value == "":
        return uuid.uuid4() if generate else ZERO_UUID
    if isinstance(value, str):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            parsed = None
        if parsed is not None and str(parsed) == value.lower():
            return uuid.uuid4() if generate and parsed == ZERO_UUID else parsed
    raise _error(field, f"expected a UUID such as 550e8400-e29b-41d4-a716-446655440000, got {value!r}")


def _validate_option(type_: str, option: dict[str, Any], field: str) -> BaseModel:
    try:
        model = OPTION_MODELS[type_].model_validate(option)
    except ValidationError as exc:
        raise from_pydantic(exc, field) from None
    if isinstance(model, ActionOption):
        model.check(field)
    return model


def parse_option(action: Action, field: str = "option") -> BaseModel:
    """The typed option of ``action`` (for the flow engine; substitute ``${...}`` first).

    Raises ``ActionValidationError`` if the option does not validate, e.g. when a substituted value
    turned out to be of the wrong type.
    """
    if action.type not in OPTION_MODELS:
        raise _error("type", f"unknown action type {action.type!r}", "INVALID_ACTION_TYPE")
    return _validate_option(action.type, action.option, field)


def validate_actions(
    raw: object,
    field: str = "actions",
    *,
    option_check: OptionCheck | None = None,
    _depth: int = 0,
) -> list[Action]:
    """Validate a user-supplied action list (``POST /flows``, ``POST /calls``, ``fetch`` replies ...).

    ``raw`` is the decoded JSON. ``null`` is an empty list. Returns ``Action`` objects whose ``option``
    is the option dict as sent. Raises ``ActionValidationError`` naming the failing path:
    unknown type → ``INVALID_ACTION_TYPE``; bad ``anonymous`` → ``INVALID_ANONYMOUS_VALUE``; anything
    else → ``INVALID_ARGUMENT``. ``option_check(path, type, typed_option)`` is called for every action,
    nested ones included, for checks this module cannot make (e.g. the provider registry's
    ``engine_model`` lookup); it may raise ``ActionValidationError``.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _error(field, "expected a list of action objects")
    if len(raw) > MAX_ACTIONS:
        raise _error(field, f"too many actions ({len(raw)}); at most {MAX_ACTIONS} are allowed")
    if _depth > MAX_NESTING:
        raise _error(field, f"call actions are nested too deeply; at most {MAX_NESTING} levels are allowed")

    actions: list[Action] = []
    typed: list[BaseModel] = []
    seen: dict[uuid.UUID, int] = {}
    for index, item in enumerate(raw):
        path = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise _error(path, "expected an action object with a 'type'")
        type_ = item.get("type")
        if type_ is None or type_ == "":
            raise _error(f"{path}.type", "the action type is required")
        if not isinstance(type_, str):
            raise _error(f"{path}.type", "expected the action type as a string")
        if type_ not in ACTION_TYPES:
            raise _error(f"{path}.type", f"unknown action type {type_!r}", "INVALID_ACTION_TYPE")
        option = item.get("option")
        if option is None:
            option = {}
        if not isinstance(option, dict):
            raise _error(f"{path}.option", "expected an object")

        action_id = _parse_id(item.get("id"), f"{path}.id", generate=True)
        next_id = _parse_id(item.get("next_id"), f"{path}.next_id", generate=False)
        if action_id in RESERVED_IDS:
            raise _error(f"{path}.id", f"{action_id} is a reserved action id")
        if action_id in seen:
            raise _error(
                f"{path}.id", f"duplicate action id {action_id} (also used by {field}[{seen[action_id]}])"
            )
        seen[action_id] = index

        model = _validate_option(type_, option, f"{path}.option")
        if type_ == "call" and option.get("actions") is not None:
            validate_actions(
                option["actions"], f"{path}.option.actions", option_check=option_check, _depth=_depth + 1
            )
        if option_check is not None:
            option_check(path, type_, model)
        actions.append(Action(id=action_id, next_id=next_id, type=type_, option=option))
        typed.append(model)

    _check_references(actions, typed, seen, field)
    return actions


def _check_references(
    actions: list[Action], typed: list[BaseModel], ids: dict[uuid.UUID, int], field: str
) -> None:
    """next_id / goto / branch / condition targets must be reserved ids or ids of this list."""
    for index, (action, model) in enumerate(zip(actions, typed, strict=True)):
        refs: list[tuple[str, Any]] = [("next_id", action.next_id)]
        if isinstance(model, ActionOption):
            refs += [(f"option.{sub}", target) for sub, target in model.references()]
        for sub, target in refs:
            if target is None or is_placeholder(target) or target in RESERVED_IDS or target in ids:
                continue
            path = f"{field}[{index}].{sub}"
            raise _error(path, f"no action with id {target} in {field}")
