"""validate_actions / Action / parse_option: every action type, error reasons and paths, references."""

import uuid
from datetime import UTC, datetime

import pytest

from tests.models.support import A1, A2, AI_ID, REALISTIC, TEL, _flow
from voipbin.models.action_options.ai import AIOption
from voipbin.models.action_options.control import BranchOption, ConditionDatetimeOption
from voipbin.models.action_options.media import DigitsSendOption, SleepOption, TalkOption
from voipbin.models.actions import (
    ACTION_TYPES,
    MAX_ACTIONS,
    NON_RTC_ONLY,
    OPTION_MODELS,
    RTC_ONLY,
    Action,
    ActionValidationError,
    parse_option,
    validate_actions,
)


def _error(raw: object) -> ActionValidationError:
    with pytest.raises(ActionValidationError) as info:
        validate_actions(raw)
    return info.value


def test_type_catalogue() -> None:
    assert len(ACTION_TYPES) == 44  # VoIPBIN's 43 + the seed's "ai"
    assert set(REALISTIC) == ACTION_TYPES == set(OPTION_MODELS)
    assert "empty" not in ACTION_TYPES
    assert "ai_summary" in NON_RTC_ONLY and "talk" in RTC_ONLY and not (RTC_ONLY & NON_RTC_ONLY)
    assert (RTC_ONLY | NON_RTC_ONLY) <= ACTION_TYPES


@pytest.mark.parametrize("action_type", sorted(REALISTIC))
def test_every_type_validates_with_a_realistic_option(action_type: str) -> None:
    option = REALISTIC[action_type]
    actions = validate_actions(_flow(action_type, option))
    assert actions[0].type == action_type
    assert actions[0].option == option  # stored as sent
    typed = parse_option(actions[0])
    assert isinstance(typed, OPTION_MODELS[action_type])


def test_typed_values_after_parse() -> None:
    flow = validate_actions(_flow("call", REALISTIC["call"]))
    call = parse_option(flow[0])
    assert call.destinations[0].target == "Bob@example.com"  # type: ignore[attr-defined]
    assert call.chained is True and call.anonymous == "no"  # type: ignore[attr-defined]
    ai_task = parse_option(validate_actions([{"type": "ai_task", "option": REALISTIC["ai_task"]}])[0])
    assert (ai_task.assistance_type, str(ai_task.assistance_id)) == ("ai", AI_ID)  # type: ignore[attr-defined]
    branch = parse_option(validate_actions(_flow("branch", REALISTIC["branch"]))[0])
    assert isinstance(branch, BranchOption) and branch.target_ids["2"] == uuid.UUID(A2)
    dt = parse_option(validate_actions([{"type": "condition_datetime", "option": {"weekdays": ["1", 2]}}])[0])
    assert isinstance(dt, ConditionDatetimeOption) and dt.weekdays == [1, 2] and dt.day == -1
    email = parse_option(validate_actions([{"type": "email_send", "option": REALISTIC["email_send"]}])[0])
    assert email.destinations[0].target == "ops@example.com"  # type: ignore[attr-defined]


def test_placeholders_and_numeric_strings() -> None:
    actions = validate_actions(
        [
            {"type": "sleep", "option": {"duration": "${wait_ms}"}},
            {"type": "sleep", "option": {"duration": "30000"}},
            {"type": "sleep", "option": {"duration": 1500.0}},
            {"type": "talk", "option": {"text": "hi ${name}", "async": "${async}", "language": "${lang}"}},
            {"type": "talk", "option": {"text": "x", "async": "TRUE"}},
            {"type": "goto", "option": {"target_id": "${voipbin.flow.target}", "loop_count": "2"}},
            {"type": "hangup", "option": {"reference_id": "${voipbin.call.master_call_id}"}},
        ]
    )
    typed = [parse_option(a) for a in actions]
    assert [t.duration for t in typed[:3]] == ["${wait_ms}", 30000, 1500]  # type: ignore[attr-defined]
    assert isinstance(typed[3], TalkOption) and typed[3].async_ == "${async}"
    assert typed[4].async_ is True  # type: ignore[attr-defined]
    assert typed[5].loop_count == 2  # type: ignore[attr-defined]
    # a placeholder must be the whole value for a non-string field
    assert (
        _error([{"type": "sleep", "option": {"duration": "${a}000"}}]).field == "actions[0].option.duration"
    )


def test_null_and_empty_mean_unset_and_unknown_keys_are_ignored() -> None:
    actions = validate_actions(
        [
            {"type": "sleep", "option": {"duration": None, "colour": "blue"}},
            {"type": "answer", "option": None},
            {"type": "recording_start", "option": {"format": "", "duration": ""}},
            {"type": "beep"},
        ]
    )
    assert isinstance(parse_option(actions[0]), SleepOption)
    assert parse_option(actions[0]).duration == 0  # type: ignore[attr-defined]
    assert actions[0].option == {"duration": None, "colour": "blue"}
    assert actions[1].option == {} and actions[3].option == {}
    assert validate_actions(None) == [] and validate_actions([]) == []


def test_unknown_type_names_index_and_type() -> None:
    err = _error([{"type": "answer"}, {"type": "talk", "option": {"text": "x"}}, {"type": "agent_call"}])
    assert err.reason == "INVALID_ACTION_TYPE"
    assert err.field == "actions[2].type"
    assert "agent_call" in err.message and "actions[2]" in err.message


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "answer"}, "actions"),
        ("answer", "actions"),
        ([{"option": {}}], "actions[0].type"),
        ([{"type": ""}], "actions[0].type"),
        ([{"type": 5}], "actions[0].type"),
        (["answer"], "actions[0]"),
        ([{"type": "talk", "option": "hello"}], "actions[0].option"),
        ([{"type": "answer", "id": "not-a-uuid"}], "actions[0].id"),
        ([{"type": "answer", "next_id": 12}], "actions[0].next_id"),
        ([{"type": "answer", "id": "00000000-0000-0000-0000-000000000002"}], "actions[0].id"),
    ],
)
def test_shape_errors(raw: object, field: str) -> None:
    err = _error(raw)
    assert (err.reason, err.field) == ("INVALID_ARGUMENT", field)
    assert err.message.startswith(field)


@pytest.mark.parametrize(
    ("action", "field", "expected"),
    [
        ({"type": "sleep", "option": {"duration": "soon"}}, "duration", "milliseconds"),
        ({"type": "sleep", "option": {"duration": -1}}, "duration", "between 0"),
        ({"type": "sleep", "option": {"duration": True}}, "duration", "milliseconds"),
        ({"type": "sleep", "option": {"duration": 1.5}}, "duration", "milliseconds"),
        ({"type": "talk", "option": {"text": ["a"]}}, "text", "string"),
        ({"type": "talk", "option": {"text": "x", "async": "maybe"}}, "async", "true or false"),
        ({"type": "talk", "option": {"text": "x", "digits_handle": "stop"}}, "digits_handle", "'next'"),
        ({"type": "talk", "option": {"language": "en-US"}}, "text", "required"),
        ({"type": "talk", "option": {"text": "x", "language": "english please"}}, "language", "BCP47"),
        ({"type": "play", "option": {"stream_urls": "https://x/y.wav"}}, "stream_urls", "list"),
        ({"type": "play", "option": {"stream_urls": ["https://x", 3, {}]}}, "stream_urls[2]", "string"),
        ({"type": "play", "option": {}}, "stream_urls", "at least one"),
        ({"type": "digits_receive", "option": {"key": "x"}}, "key", "DTMF"),
        ({"type": "digits_send", "option": {"digits": "12", "duration": 50}}, "duration", "100"),
        ({"type": "digits_send", "option": {"digits": "1" * 101}}, "digits", "100"),
        ({"type": "recording_start", "option": {"format": "flac"}}, "format", "'wav'"),
        ({"type": "recording_start", "option": {"end_of_key": "5"}}, "end_of_key", "'none'"),
        ({"type": "webhook_send", "option": {"uri": "ftp://x"}}, "uri", "http"),
        ({"type": "webhook_send", "option": {"uri": "https://x", "method": "PATCH"}}, "method", "'POST'"),
        ({"type": "webhook_send", "option": {"method": "POST"}}, "uri", "required"),
        ({"type": "variable_set", "option": {"value": "x"}}, "key", "required"),
        ({"type": "goto", "option": {}}, "target_id", "required"),
        ({"type": "goto", "option": {"target_id": "123"}}, "target_id", "UUID"),
        ({"type": "condition_datetime", "option": {"hour": 24}}, "hour", "-1 and 23"),
        ({"type": "condition_datetime", "option": {"weekdays": [1, 9]}}, "weekdays[1]", "weekday"),
        ({"type": "condition_variable", "option": {"variable": "x", "condition": "=~"}}, "condition", "'=='"),
        ({"type": "branch", "option": {"target_ids": {"1": "nope"}}}, "target_ids.1", "UUID"),
        ({"type": "hangup", "option": {"reason": "bored"}}, "reason", "'normal'"),
        ({"type": "ai_talk", "option": {"language": "en-US"}}, "initial_prompt", "POST /ais"),
        ({"type": "ai", "option": {"initial_prompt": "x", "voice_type": "robot"}}, "voice_type", "'male'"),
        (
            {"type": "ai", "option": {"initial_prompt": "x", "engine_model": "gpt-4o"}},
            "engine_model",
            "<provider>",
        ),
        ({"type": "ai", "option": {"initial_prompt": "x", "tool_names": "all"}}, "tool_names", "list"),
        ({"type": "ai_summary", "option": {"source_type": "email"}}, "reference_type", "'call'"),
        ({"type": "ai_summary", "option": {"reference_id": "abc"}}, "reference_id", "UUID"),
        ({"type": "transcribe_start", "option": {"direction": "sideways"}}, "direction", "'both'"),
        ({"type": "transcribe_start", "option": {"real_time": "yes"}}, "real_time", "true or false"),
        ({"type": "connect", "option": {}}, "destinations", "at least one"),
        (
            {"type": "connect", "option": {"destinations": [{"type": "tel", "target": "5551234"}]}},
            "destinations[0].target",
            "E.164",
        ),
        (
            {"type": "connect", "option": {"destinations": [{"type": "email", "target": "a@b.c"}]}},
            "destinations[0].type",
            "cannot be called",
        ),
        (
            {"type": "connect", "option": {"destinations": [TEL], "source": "+15551234567"}},
            "source",
            "object",
        ),
        (
            {"type": "connect", "option": {"destinations": [TEL], "early_media": "sometimes"}},
            "early_media",
            "true",
        ),
        ({"type": "email_send", "option": {"destinations": [TEL]}}, "destinations[0].type", "'email'"),
        (
            {"type": "message_send", "option": {"destinations": [{"type": "tel", "target": "12"}]}},
            "destinations[0].target",
            "E.164",
        ),
        ({"type": "queue_join", "option": {}}, "queue_id", "required"),
        (
            {"type": "fetch", "option": {"event_url": "https://x", "event_method": "FETCH"}},
            "event_method",
            "'GET'",
        ),
        (
            {"type": "external_media_start", "option": {"external_host": "nohostport"}},
            "external_host",
            "host:port",
        ),
    ],
)
def test_option_errors_name_the_field(action: dict, field: str, expected: str) -> None:
    err = _error([{"type": "answer"}, action])
    assert err.reason == "INVALID_ARGUMENT"
    assert err.field == f"actions[1].option.{field}"
    assert err.message.startswith(err.field + ": ")
    assert expected in err.message


@pytest.mark.parametrize("action_type", ["connect", "call"])
@pytest.mark.parametrize("value", ["maybe", "YES", True, 1, "${anon}"])
def test_invalid_anonymous(action_type: str, value: object) -> None:
    err = _error([{"type": action_type, "option": {"destinations": [TEL], "anonymous": value}}])
    assert (err.reason, err.field) == ("INVALID_ANONYMOUS_VALUE", "actions[0].option.anonymous")


def test_anonymous_reported_before_other_option_errors() -> None:
    option = {"destinations": "nope", "anonymous": "sometimes", "early_media": "x"}
    assert _error([{"type": "connect", "option": option}]).reason == "INVALID_ANONYMOUS_VALUE"


def test_nested_call_actions_are_validated_with_their_path() -> None:
    inner = [{"type": "talk", "option": {"text": "hi"}}, {"type": "sleep", "option": {"duration": "long"}}]
    err = _error([{"type": "answer"}, {"type": "call", "option": {"destinations": [TEL], "actions": inner}}])
    assert err.field == "actions[1].option.actions[1].option.duration"
    err = _error([{"type": "call", "option": {"destinations": [TEL], "actions": [{"type": "ai_agent"}]}}])
    assert (err.reason, err.field) == ("INVALID_ACTION_TYPE", "actions[0].option.actions[0].type")
    err = _error([{"type": "call", "option": {"destinations": [TEL], "actions": {"type": "talk"}}}])
    assert err.field == "actions[0].option.actions"


def test_nesting_depth_is_limited() -> None:
    actions: list = [{"type": "answer"}]
    for _ in range(10):
        actions = [{"type": "call", "option": {"destinations": [TEL], "actions": actions}}]
    err = _error(actions)
    assert "nested too deeply" in err.message


def test_list_length_is_limited() -> None:
    assert len(validate_actions([{"type": "answer"}] * MAX_ACTIONS)) == MAX_ACTIONS
    err = _error([{"type": "answer"}] * (MAX_ACTIONS + 1))
    assert err.field == "actions" and str(MAX_ACTIONS) in err.message


def test_ids_generated_kept_and_unique() -> None:
    zero = "00000000-0000-0000-0000-000000000000"
    actions = validate_actions(
        [{"type": "answer"}, {"type": "answer", "id": zero}, {"type": "stop", "id": A1}]
    )
    assert actions[0].id != actions[1].id and uuid.UUID(zero) not in {a.id for a in actions}
    assert actions[2].id == uuid.UUID(A1)
    assert all(a.next_id == uuid.UUID(int=0) for a in actions)
    err = _error([{"type": "answer", "id": A1}, {"type": "stop", "id": A1.upper()}])
    assert err.field == "actions[1].id" and "duplicate" in err.message and "actions[0]" in err.message


def test_jump_targets_must_exist() -> None:
    unknown = str(uuid.uuid4())
    for action, field in [
        ({"type": "goto", "option": {"target_id": unknown}}, "actions[0].option.target_id"),
        (
            {"type": "branch", "option": {"target_ids": {"1": A1, "9": unknown}}},
            "actions[0].option.target_ids.9",
        ),
        ({"type": "branch", "option": {"default_target_id": unknown}}, "actions[0].option.default_target_id"),
        (
            {"type": "condition_variable", "option": {"variable": "v", "false_target_id": unknown}},
            "actions[0].option.false_target_id",
        ),
        ({"type": "answer", "next_id": unknown}, "actions[0].next_id"),
    ]:
        err = _error([action, {"type": "answer", "id": A1}])
        assert (err.reason, err.field) == ("INVALID_ARGUMENT", field)
        assert unknown in err.message
    # reserved ids, forward and backward references, and placeholders are fine
    validate_actions(
        [
            {
                "id": A1,
                "type": "talk",
                "option": {"text": "menu"},
                "next_id": "00000000-0000-0000-0000-000000000003",
            },
            {"type": "goto", "option": {"target_id": A1, "loop_count": 2}},
            {"type": "goto", "option": {"target_id": "00000000-0000-0000-0000-000000000002"}},
            {"type": "goto", "option": {"target_id": "${target}"}},
            {"type": "condition_call_status", "option": {"status": "hangup", "false_target_id": A2}},
            {"id": A2, "type": "stop"},
        ]
    )
    # ids in a nested call list are a separate namespace
    nested = [{"type": "goto", "option": {"target_id": A1}}]
    err = _error([{"id": A1, "type": "call", "option": {"destinations": [TEL], "actions": nested}}])
    assert err.field == "actions[0].option.actions[0].option.target_id"


def test_option_check_hook_sees_every_action_including_nested() -> None:
    seen: list[tuple[str, str]] = []

    def check(path: str, action_type: str, option: object) -> None:
        seen.append((path, action_type))
        if isinstance(option, AIOption) and option.engine_model == "openai.nope":
            raise ActionValidationError("INVALID_ARGUMENT", f"{path}.option.engine_model", "unknown model")

    inner = [{"type": "ai_talk", "option": {"initial_prompt": "x", "engine_model": "openai.gpt-4o"}}]
    validate_actions(
        [{"type": "call", "option": {"destinations": [TEL], "actions": inner}}], option_check=check
    )
    assert seen == [("actions[0].option.actions[0]", "ai_talk"), ("actions[0]", "call")]
    bad = [{"type": "ai", "option": {"initial_prompt": "x", "engine_model": "openai.nope"}}]
    with pytest.raises(ActionValidationError, match="unknown model"):
        validate_actions(bad, option_check=check)


def test_custom_field_prefix() -> None:
    with pytest.raises(ActionValidationError) as info:
        validate_actions([{"type": "nope"}], field="flow.actions")
    assert info.value.field == "flow.actions[0].type"


def test_ai_id_and_init_prompt_aliases() -> None:
    option = parse_option(Action(type="ai_talk", option={"ai_id": AI_ID}))
    assert (option.assistance_type, str(option.assistance_id)) == ("ai", AI_ID)  # type: ignore[attr-defined]
    team = parse_option(Action(type="ai_talk", option={"assistance_type": "team", "assistance_id": AI_ID}))
    assert team.assistance_type == "team"  # type: ignore[attr-defined]
    inline = parse_option(Action(type="ai", option={"init_prompt": "be brief"}))
    assert inline.initial_prompt == "be brief"  # type: ignore[attr-defined]


def test_webhook_data_object_and_method_case() -> None:
    option = parse_option(
        Action(type="webhook_send", option={"uri": "https://x/y", "method": "put", "data": {"k": [1, "v"]}})
    )
    assert (option.method, option.data) == ("PUT", '{"k": [1, "v"]}')  # type: ignore[attr-defined]


def test_digits_send_zero_duration_means_default() -> None:
    option = parse_option(Action(type="digits_send", option={"digits": "12#"}))
    assert isinstance(option, DigitsSendOption) and option.duration == 0


def test_parse_option_errors() -> None:
    with pytest.raises(ActionValidationError) as info:
        parse_option(Action(type="sleep", option={"duration": "x"}))
    assert (info.value.field, info.value.reason) == ("option.duration", "INVALID_ARGUMENT")
    with pytest.raises(ActionValidationError) as info:
        parse_option(Action(type="empty"))
    assert info.value.reason == "INVALID_ACTION_TYPE"


def test_action_model_and_to_api_round_trip() -> None:
    executed = datetime(2026, 1, 15, 9, 30, 0, 123456, tzinfo=UTC)
    action = Action(id=A1, next_id=A2, type="talk", option={"text": "hi", "x": [1]}, tm_execute=executed)
    api = action.to_api()
    assert api == {
        "id": A1,
        "next_id": A2,
        "type": "talk",
        "option": {"text": "hi", "x": [1]},
        "tm_execute": "2026-01-15T09:30:00.123456Z",
    }
    assert Action.model_validate(api) == action
    bare = Action(type="answer").to_api()
    assert "option" not in bare and "tm_execute" not in bare
    assert bare["next_id"] == "00000000-0000-0000-0000-000000000000"
    assert Action.model_validate(bare).to_api() == bare
    assert Action(type="answer", id="00000000-0000-0000-0000-000000000000").id != uuid.UUID(int=0)
    every = [{"type": a, "option": o} for a, o in REALISTIC.items()] + _flow("answer", {})[1:]
    for validated in validate_actions(every):
        assert Action.model_validate(validated.to_api()) == validated


def test_ai_vad_config_and_greeting_are_validated() -> None:
    from voipbin.models.actions import ActionValidationError, validate_actions

    ok = validate_actions(
        [
            {
                "type": "ai_talk",
                "option": {"initial_prompt": "x", "greeting": "Hello!", "vad_config": {"stop_secs": 0.4}},
            }
        ]
    )
    assert ok[0].option["vad_config"] == {"stop_secs": 0.4}
    with pytest.raises(ActionValidationError) as err:
        validate_actions(
            [{"type": "ai", "option": {"initial_prompt": "x", "vad_config": {"start_secs": 99}}}]
        )
    assert err.value.field == "actions[0].option.vad_config.start_secs"
