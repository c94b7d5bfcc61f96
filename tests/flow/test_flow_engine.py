"""The engine core against a real database and an in-memory call: cursor, jumps, ends, errors, stop."""

from __future__ import annotations

import asyncio
import time
import uuid

from tests.flow.conftest import Env, write_tone
from voipbin.flow.handlers.unsupported import NOT_YET

ID = [str(uuid.UUID(int=0x100 + i)) for i in range(10)]
FINISH = str(uuid.UUID(int=2))
START = str(uuid.UUID(int=1))


async def test_end_of_list_hangs_up_normal_and_records_progress(env: Env) -> None:
    sub = env.platform.events.subscribe()
    call, af = await env.run(
        [{"type": "answer"}, {"type": "variable_set", "option": {"key": "x", "value": "1"}}]
    )
    assert call.ops() == ["answer", "hangup"] and call.hangup_reason == "normal"
    assert af.status == "ended" and af.error == ""
    assert [a["type"] for a in af.executed_actions] == ["answer", "variable_set"]
    assert all(a["tm_execute"].endswith("Z") for a in af.executed_actions)
    assert af.current_action["type"] == "variable_set"
    assert af.variables["x"] == "1"
    assert af.variables["voipbin.activeflow.id"] == str(af.id)
    assert af.variables["voipbin.call.id"] == str(call.call_id)
    assert af.variables["voipbin.call.source.name"] == "Alice"
    row = await env.call_row(call.call_id)
    assert row.activeflow_id == af.id and row.status == "hangup" and row.hangup_reason == "normal"
    assert row.action["type"] == "variable_set"  # VoIPBIN's call.action: the last executed action
    types = []
    while not sub.queue.empty():
        types.append(sub.queue.get_nowait().type)
    # The call is created live on this node first (call_created, call_progressing), as a manager does.
    assert types[:2] == ["call_created", "call_progressing"]
    assert types[2] == "activeflow_created" and "activeflow_updated" in types
    assert "call_updated" in types and types[-1] == "call_hangup"


async def test_substitution_and_caller_variables(env: Env) -> None:
    call, af = await env.run(
        [
            {
                "type": "variable_set",
                "option": {"key": "greeting", "value": "hi ${name} on ${voipbin.call.id}"},
            },
            {"type": "variable_set", "option": {"key": "copy", "value": "${greeting}|${nothing}"}},
        ],
        variables={"name": "Ann", "voipbin.call.id": "forged"},
    )
    assert af.variables["greeting"] == f"hi Ann on {call.call_id}"
    assert af.variables["copy"] == af.variables["greeting"] + "|"
    # The stored (executed) action keeps its placeholders; substitution happens on the way to the handler.
    assert af.executed_actions[0]["option"]["value"].startswith("hi ${name}")


async def test_goto_loop_count(env: Env) -> None:
    _call, af = await env.run(
        [
            {"id": ID[0], "type": "variable_set", "option": {"key": "n", "value": "${n}x"}},
            {"id": ID[1], "type": "goto", "option": {"target_id": ID[0], "loop_count": 3}},
            {"id": ID[2], "type": "variable_set", "option": {"key": "after", "value": "yes"}},
        ]
    )
    assert af.variables["n"] == "xxxx"  # first pass + 3 loops
    assert af.variables["after"] == "yes" and af.loop_counts == {ID[1]: 3}
    assert len(af.executed_actions) == 4 + 4 + 1


async def test_next_id_and_reserved_targets(env: Env) -> None:
    call, af = await env.run(
        [
            {"id": ID[0], "type": "variable_set", "next_id": ID[2], "option": {"key": "a", "value": "1"}},
            {"id": ID[1], "type": "variable_set", "option": {"key": "skipped", "value": "1"}},
            {"id": ID[2], "type": "variable_set", "next_id": FINISH, "option": {"key": "c", "value": "1"}},
            {"id": ID[3], "type": "variable_set", "option": {"key": "after_finish", "value": "1"}},
        ]
    )
    assert "skipped" not in af.variables and "after_finish" not in af.variables
    assert af.variables["c"] == "1" and call.hangup_reason == "normal"
    # START restarts the flow; bounded with a goto loop_count.
    call, af = await env.run(
        [
            {"id": ID[0], "type": "variable_set", "option": {"key": "n", "value": "${n}."}},
            {"id": ID[1], "type": "goto", "option": {"target_id": START, "loop_count": 2}},
        ]
    )
    assert af.variables["n"] == "..."


async def test_branch_on_digits(env: Env) -> None:
    actions = [
        {"type": "digits_receive", "option": {"duration": 2000, "key": "#", "length": 3}},
        {"type": "branch", "option": {"target_ids": {"1": ID[1], "22": ID[2]}, "default_target_id": ID[3]}},
        {"id": ID[1], "type": "variable_set", "next_id": FINISH, "option": {"key": "went", "value": "one"}},
        {"id": ID[2], "type": "variable_set", "next_id": FINISH, "option": {"key": "went", "value": "two"}},
        {"id": ID[3], "type": "variable_set", "option": {"key": "went", "value": "default"}},
    ]
    for pressed, expected, digits in (("1#", "one", "1"), ("22#", "two", "22"), ("999", "default", "999")):
        call = await env.call(actions)
        call.inject_dtmf(pressed)
        af_id = await env.start(call)
        await env.wait(af_id)
        af = await env.activeflow(af_id)
        assert af.variables["went"] == expected and af.variables["voipbin.call.digits"] == digits


async def test_digits_receive_times_out_with_what_it_got(env: Env) -> None:
    call = await env.call(
        [{"type": "digits_receive", "option": {"duration": 300, "key": "#"}}, {"type": "stop"}]
    )
    call.inject_dtmf("12")
    started = time.monotonic()
    af_id = await env.start(call)
    await env.wait(af_id)
    assert 0.25 < time.monotonic() - started < 2.0
    assert (await env.activeflow(af_id)).variables["voipbin.call.digits"] == "12"


async def test_condition_variable(env: Env) -> None:
    def flow(condition: dict) -> list[dict]:
        return [
            {"type": "condition_variable", "option": {**condition, "false_target_id": ID[1]}},
            {"type": "variable_set", "next_id": FINISH, "option": {"key": "r", "value": "true"}},
            {"id": ID[1], "type": "variable_set", "option": {"key": "r", "value": "false"}},
        ]

    cases = [
        ({"condition": "==", "variable": "v", "value_type": "string", "value_string": "abc"}, "abc", "true"),
        ({"condition": "!=", "variable": "v", "value_type": "string", "value_string": "abc"}, "abc", "false"),
        ({"condition": ">=", "variable": "v", "value_type": "number", "value_number": 10}, "10.5", "true"),
        ({"condition": "<", "variable": "v", "value_type": "number", "value_number": 10}, "10.5", "false"),
        ({"condition": "==", "variable": "v", "value_type": "number", "value_number": 1}, "abc", "false"),
        ({"condition": ">", "variable": "v", "value_type": "length", "value_length": 2}, "abc", "true"),
        ({"condition": "==", "variable": "v", "value_type": "length", "value_length": 0}, "", "true"),
    ]
    for condition, value, expected in cases:
        _, af = await env.run(flow(condition), variables={"v": value})
        assert af.variables["r"] == expected, (condition, value)


async def test_condition_datetime(env: Env) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    today = now.isoweekday() % 7
    cases = [
        ({"condition": ">=", "month": 1}, "true"),
        ({"condition": "==", "month": now.month % 12 + 1}, "false"),
        ({"condition": "==", "weekdays": [today]}, "true"),
        ({"condition": "==", "weekdays": [(today + 1) % 7]}, "false"),
        ({"condition": "<=", "hour": 23, "minute": 59}, "true"),
    ]
    for condition, expected in cases:
        _, af = await env.run(
            [
                {"type": "condition_datetime", "option": {**condition, "false_target_id": ID[1]}},
                {"type": "variable_set", "next_id": FINISH, "option": {"key": "r", "value": "true"}},
                {"id": ID[1], "type": "variable_set", "option": {"key": "r", "value": "false"}},
            ]
        )
        assert af.variables["r"] == expected, condition


async def test_stop_action_and_hangup_action(env: Env) -> None:
    call, af = await env.run([{"type": "stop"}, {"type": "answer"}])
    assert call.ops() == ["hangup"] and call.hangup_reason == "normal" and af.status == "ended"
    call, af = await env.run([{"type": "hangup", "option": {"reason": "busy"}}, {"type": "answer"}])
    assert call.ops() == ["hangup"] and call.hangup_reason == "busy"
    assert (await env.call_row(call.call_id)).hangup_reason == "busy"


async def test_handler_error_fails_the_call(env: Env) -> None:
    call, af = await env.run(
        [{"type": "play", "option": {"stream_urls": ["/nonexistent/x.wav"]}}, {"type": "answer"}]
    )
    assert call.ops() == ["hangup"] and call.hangup_reason == "failed"
    assert af.status == "ended" and "outside the allowed media directories" in af.error
    row = await env.call_row(call.call_id)
    assert row.hangup_reason == "failed" and "play" in row.metadata_["flow_error"]


async def test_invalid_option_after_substitution_fails(env: Env) -> None:
    call, af = await env.run(
        [{"type": "sleep", "option": {"duration": "${wait}"}}], variables={"wait": "soon"}
    )
    assert call.hangup_reason == "failed" and "duration" in af.error


async def test_unsupported_actions_end_loudly(env: Env, caplog) -> None:
    registry = env.platform.flows.registry
    assert "queue_join" in registry.unsupported_types() and "connect" in registry.supported_types()
    assert set(NOT_YET) == set(registry.unsupported_types())
    call, af = await env.run(
        [
            {"type": "answer"},
            {"type": "queue_join", "option": {"queue_id": "3f1c1a52-8c1e-4d8b-9a7e-1d2b3c4d5e6f"}},
            {"type": "variable_set", "option": {"key": "after", "value": "1"}},
        ]
    )
    assert call.hangup_reason == "failed" and "after" not in af.variables
    assert "'queue_join' is not yet supported by this engine" in af.error
    assert any("not yet supported" in r.getMessage() for r in caplog.records)


async def test_stop_cancels_a_sleeping_flow_promptly(env: Env) -> None:
    call = await env.call([{"type": "sleep", "option": {"duration": 60000}}, {"type": "answer"}])
    af_id = await env.start(call)
    await asyncio.sleep(0.2)
    af = await env.activeflow(af_id)
    assert af.status == "running" and af.current_action["type"] == "sleep"
    started = time.monotonic()
    await env.platform.flows.stop(af_id)
    assert time.monotonic() - started < 1.0
    af = await env.activeflow(af_id)
    assert af.status == "ended" and call.hangup_reason == "normal" and "answer" not in call.ops()


async def test_remote_hangup_stops_the_flow(env: Env) -> None:
    tone = write_tone(env.media_dir / "long.wav", 30)
    call = await env.call([{"type": "play", "option": {"stream_urls": [str(tone)]}}, {"type": "answer"}])
    af_id = await env.start(call)
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await call.remote_hangup()
    await env.wait(af_id, 2.0)
    assert time.monotonic() - started < 1.0
    assert call.ops() == ["play", "remote_hangup"] and call.hangup_reason is None
    assert (await env.activeflow(af_id)).status == "ended"


async def test_on_complete_chain_is_capped(env: Env) -> None:
    # A flow whose on_complete flow is itself: runs 1 + MAX_COMPLETE_CHAIN times.
    flow = await env.flow([{"type": "variable_set", "option": {"key": "n", "value": "${n}+"}}])
    async with env.platform.db.session() as session:
        from voipbin.store.tables import Activeflow, Flow

        row = await session.get(Flow, flow.id)
        row.on_complete_flow_id = flow.id
        await session.commit()
    engine = env.platform.flows
    first = await engine.create(env.customer_id, reference_type="api", flow_id=flow.id)
    for _ in range(200):
        async with env.platform.db.session() as session:
            from sqlalchemy import select

            rows = (await session.execute(select(Activeflow))).scalars().all()
        if len(rows) == 6 and all(r.status == "ended" for r in rows):
            break
        await asyncio.sleep(0.05)
    by_count = sorted(rows, key=lambda r: r.complete_count)
    assert [r.complete_count for r in by_count] == [0, 1, 2, 3, 4, 5]
    assert by_count[0].id == first.id
    assert by_count[-1].variables["n"] == "++++++"  # variables are copied down the chain
    assert by_count[1].reference_activeflow_id == first.id
    assert by_count[-1].variables["voipbin.activeflow.complete_count"] == "5"


async def test_api_activeflow_rejects_call_actions(env: Env) -> None:
    engine = env.platform.flows
    from voipbin.models.actions import validate_actions

    row = await engine.create(
        env.customer_id,
        reference_type="api",
        actions=validate_actions(
            [{"type": "variable_set", "option": {"key": "k", "value": "v"}}, {"type": "answer"}]
        ),
    )
    await env.wait(row.id)
    af = await env.activeflow(row.id)
    assert af.variables["k"] == "v" and "needs a call" in af.error and af.status == "ended"


async def test_fetch_flow_pushes_and_returns(env: Env) -> None:
    inner = await env.flow(
        [
            {"type": "variable_set", "option": {"key": "trail", "value": "${trail}i1"}},
            {"type": "variable_set", "option": {"key": "trail", "value": "${trail}i2"}},
        ]
    )
    call, af = await env.run(
        [
            {"type": "variable_set", "option": {"key": "trail", "value": "a"}},
            {"type": "fetch_flow", "option": {"flow_id": str(inner.id)}},
            {"type": "variable_set", "option": {"key": "trail", "value": "${trail}b"}},
        ]
    )
    assert af.variables["trail"] == "ai1i2b" and af.error == ""
    # Another customer's flow is not found.
    call, af = await env.run([{"type": "fetch_flow", "option": {"flow_id": str(uuid.uuid4())}}])
    assert "not found" in af.error and call.hangup_reason == "failed"


async def test_missing_flow_fails_visibly(env: Env) -> None:
    call = await env.call([{"type": "answer"}])
    af_id = await env.platform.flows.start_call(call, flow_id=uuid.uuid4())
    await env.wait(af_id)
    af = await env.activeflow(af_id)
    assert "not found" in af.error and call.hangup_reason == "failed"


async def test_set_variables_from_outside(env: Env) -> None:
    call = await env.call(
        [
            {"type": "sleep", "option": {"duration": 300}},
            {"type": "variable_set", "option": {"key": "seen", "value": "${voipbin.transcribe.id}"}},
        ]
    )
    af_id = await env.start(call)
    await asyncio.sleep(0.05)
    assert await env.platform.flows.set_variables(af_id, {"voipbin.transcribe.id": "t-1"})
    await env.wait(af_id)
    assert (await env.activeflow(af_id)).variables["seen"] == "t-1"
