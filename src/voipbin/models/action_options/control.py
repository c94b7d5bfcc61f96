"""Options of flow-control actions: goto, branch, conditions, variables, fetch and webhooks.

Action ids these options jump to are reported by ``references()`` so ``validate_actions`` can check
them against the ids of the same action list (reserved ids and placeholders are exempt).
"""

import json
import uuid
from typing import Annotated, Any

from pydantic import Field, field_validator

from voipbin.models.action_options.base import ActionOption, require
from voipbin.models.action_options.fields import (
    HttpMethod,
    HttpUrl,
    VarBool,
    VarFloat,
    VarStr,
    VarUuid,
    int_in,
    one_of,
)

CALL_STATUSES = ("dialing", "ringing", "progressing", "terminating", "canceling", "hangup")
Comparison = Annotated[str, one_of("==", "!=", ">", ">=", "<", "<=")]

Weekday = Annotated[int | str, int_in(ge=0, le=6, what="a weekday (0=Sunday .. 6)")]

Ref = tuple[str, uuid.UUID | str | None]


class GotoOption(ActionOption):
    target_id: VarUuid = None
    loop_count: Annotated[int | str, int_in(what="a loop count")] = 0

    def check(self, field: str) -> None:
        require(self.target_id is not None, f"{field}.target_id", "the action id to jump to is required")

    def references(self) -> list[Ref]:
        return [("target_id", self.target_id)]


class BranchOption(ActionOption):
    variable: VarStr = "voipbin.call.digits"
    default_target_id: VarUuid = None
    target_ids: dict[str, VarUuid] = Field(default_factory=dict)

    def references(self) -> list[Ref]:
        refs: list[Ref] = [("default_target_id", self.default_target_id)]
        refs += [(f"target_ids.{key}", value) for key, value in self.target_ids.items()]
        return refs


class _Conditional(ActionOption):
    false_target_id: VarUuid = None

    def references(self) -> list[Ref]:
        return [("false_target_id", self.false_target_id)]


class ConditionVariableOption(_Conditional):
    condition: Comparison = ""
    variable: VarStr = ""
    value_type: Annotated[str, one_of("string", "number", "length")] = ""
    value_string: VarStr = ""
    value_number: VarFloat = 0.0
    value_length: Annotated[int | str, int_in(what="a length")] = 0

    def check(self, field: str) -> None:
        require(self.variable != "", f"{field}.variable", "the variable name to test is required")


class ConditionDatetimeOption(_Conditional):
    condition: Comparison = ""
    minute: Annotated[int | str, int_in(ge=-1, le=59, what="a minute (0-59, -1 for any)")] = -1
    hour: Annotated[int | str, int_in(ge=-1, le=23, what="an hour in UTC (0-23, -1 for any)")] = -1
    day: Annotated[int | str, int_in(ge=-1, le=31, what="a day of month (1-31, -1 for any)")] = -1
    month: Annotated[int | str, int_in(ge=0, le=12, what="a month (1-12, 0 for any)")] = 0
    weekdays: list[Weekday] = Field(default_factory=list)


class ConditionCallDigitsOption(_Conditional):
    length: Annotated[int | str, int_in(what="a number of digits")] = 0
    key: VarStr = ""


class ConditionCallStatusOption(_Conditional):
    status: Annotated[str, one_of(*CALL_STATUSES)] = ""


class VariableSetOption(ActionOption):
    key: VarStr = ""
    value: VarStr = ""

    def check(self, field: str) -> None:
        require(self.key.strip() != "", f"{field}.key", "the variable name is required")


class FetchOption(ActionOption):
    event_url: HttpUrl = ""
    event_method: HttpMethod = ""

    def check(self, field: str) -> None:
        require(self.event_url != "", f"{field}.event_url", "the URL to fetch actions from is required")


class FetchFlowOption(ActionOption):
    flow_id: VarUuid = None

    def check(self, field: str) -> None:
        require(self.flow_id is not None, f"{field}.flow_id", "the flow id to fetch is required")


class WebhookSendOption(ActionOption):
    sync: VarBool = False
    uri: HttpUrl = ""
    method: HttpMethod = ""
    data_type: VarStr = ""
    data: VarStr = ""

    @field_validator("data", mode="before")
    @classmethod
    def _json_body(cls, value: Any) -> Any:
        # VoIPBIN's data is a string; an inline JSON object/array is sent as its JSON text.
        return json.dumps(value) if isinstance(value, dict | list) else value

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) and not value.startswith("${") else value

    def check(self, field: str) -> None:
        require(self.uri != "", f"{field}.uri", "the webhook URI is required")
