"""Property tests: arbitrary JSON never makes validation raise anything but ActionValidationError."""

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voipbin.models.actions import ACTION_TYPES, Action, ActionValidationError, parse_option, validate_actions
from voipbin.models.address import Address, validate_dial_address

IDS = [str(uuid.UUID(int=i)) for i in range(5)] + ["7f1d2a4e-0c55-4a43-9d3b-6c7f1f7b0a01"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "${x}", "${voipbin.call.id}", "30000", "true", "+15551234567", "tel", "sip", *IDS])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
OPTION_KEYS = st.sampled_from(
    [
        "duration",
        "text",
        "language",
        "async",
        "stream_urls",
        "key",
        "length",
        "digits",
        "format",
        "end_of_key",
        "uri",
        "method",
        "data",
        "target_id",
        "loop_count",
        "target_ids",
        "default_target_id",
        "false_target_id",
        "weekdays",
        "hour",
        "anonymous",
        "source",
        "destinations",
        "actions",
        "initial_prompt",
        "voice_type",
        "engine_model",
        "assistance_id",
        "ai_id",
        "source_type",
        "source_id",
        "reference_type",
        "real_time",
        "tool_names",
        "attachments",
        "external_host",
        "type",
        "target",
    ]
)
OPTIONS = st.dictionaries(OPTION_KEYS, JSON, max_size=6)
ACTION = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(ACTION_TYPES)) | JSON},
    optional={
        "option": OPTIONS | JSON,
        "id": st.sampled_from(IDS) | JSON,
        "next_id": st.sampled_from(IDS) | JSON,
    },
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(ACTION, max_size=5) | JSON)
def test_validate_actions_only_raises_its_own_error(raw: object) -> None:
    try:
        actions = validate_actions(raw)
    except ActionValidationError as err:
        assert err.reason in {"INVALID_ACTION_TYPE", "INVALID_ANONYMOUS_VALUE", "INVALID_ARGUMENT"}
        assert err.message.startswith(err.field)
        return
    for action in actions:
        assert isinstance(action, Action)
        parse_option(action)  # what validated once parses again
        assert Action.model_validate(action.to_api()) == action


@FUZZ
@given(st.sampled_from(sorted(ACTION_TYPES)), OPTIONS)
def test_each_type_with_random_option(action_type: str, option: dict) -> None:
    try:
        validate_actions([{"type": action_type, "option": option}])
    except ActionValidationError:
        pass


@FUZZ
@given(st.dictionaries(st.sampled_from(["type", "target", "target_name", "name", "detail"]), JSON) | JSON)
def test_dial_address_only_raises_its_own_error(raw: object) -> None:
    try:
        address = validate_dial_address(raw, "destination")
    except ActionValidationError:
        return
    assert isinstance(address, Address)
    assert validate_dial_address(address.to_api(), "destination") == address
