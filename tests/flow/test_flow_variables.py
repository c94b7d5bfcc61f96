"""``${name}`` substitution: nested options, unknown names, built-in variable maps."""

from __future__ import annotations

import uuid

from voipbin.flow.variables import (
    activeflow_variables,
    call_variables,
    substitute,
    substitute_value,
    user_variables,
)


def test_substitute_text() -> None:
    v = {"name": "Ann", "voipbin.call.id": "c1"}
    assert substitute("hi ${name}, call ${voipbin.call.id}", v) == "hi Ann, call c1"
    assert substitute("${missing}|${name}", v) == "|Ann"
    assert substitute("no placeholders", v) == "no placeholders"
    assert substitute("${ name }", v) == "Ann"
    # Non-greedy: two placeholders side by side, and an unterminated one stays literal.
    assert substitute("${name}${name}${", v) == "AnnAnn${"


def test_substitute_nested_option() -> None:
    v = {"a": "1", "b": "two"}
    option = {
        "text": "${a}",
        "list": ["${b}", 5, {"deep": ["x${a}y", None, True]}],
        "map": {"k": "${unknown}"},
        "n": 3,
    }
    assert substitute_value(option, v) == {
        "text": "1",
        "list": ["two", 5, {"deep": ["x1y", None, True]}],
        "map": {"k": ""},
        "n": 3,
    }
    assert option["text"] == "${a}"  # the stored option is not mutated


def test_user_variables_drop_reserved() -> None:
    assert user_variables({"voipbin.call.id": "x", "k": "v", "n": 5}) == {"k": "v", "n": "5"}
    assert user_variables(None) == {}


def test_builtin_maps() -> None:
    call_id = uuid.uuid4()
    v = call_variables(
        call_id=call_id,
        source={"type": "tel", "target": "+1555", "name": "Alice"},
        destination={"type": "sip", "target": "bob@example.com"},
        direction="outgoing",
        master_call_id=None,
    )
    assert v["voipbin.call.id"] == str(call_id)
    assert v["voipbin.call.source.target"] == "+1555" and v["voipbin.call.source.name"] == "Alice"
    assert v["voipbin.call.destination.type"] == "sip" and v["voipbin.call.destination.detail"] == ""
    assert v["voipbin.call.master_call_id"] == str(uuid.UUID(int=0)) and v["voipbin.call.digits"] == ""
    a = activeflow_variables(
        activeflow_id=call_id,
        reference_type="call",
        reference_id=call_id,
        reference_activeflow_id=uuid.UUID(int=0),
        flow_id=call_id,
        complete_count=2,
    )
    assert a["voipbin.activeflow.complete_count"] == "2" and a["voipbin.activeflow.reference_type"] == "call"
