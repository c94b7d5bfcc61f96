"""``talk``: text (with variables) spoken to the caller; async and digits_handle=next."""

from __future__ import annotations

import asyncio

from tests.flow.conftest import Env


async def test_talk_speaks_substituted_text(env: Env) -> None:
    call, af = await env.run(
        [{"type": "talk", "option": {"text": "Hello ${voipbin.call.source.name}.", "language": "en-US"}}]
    )
    assert ("tts", "Hello Alice.") in call.log
    assert call.hangup_reason == "normal" and af.status == "ended"


async def test_talk_digits_handle_next_stops_on_key(env: Env) -> None:
    long_text = " ".join(["word"] * 2000)  # ~20 s in the memory call
    call = await env.call(
        [
            {"type": "talk", "option": {"text": long_text, "digits_handle": "next"}},
            {"type": "variable_set", "option": {"key": "after", "value": "${voipbin.call.digits}"}},
        ]
    )
    af_id = await env.start(call)
    await asyncio.sleep(0.3)
    call.inject_dtmf("7")
    await env.wait(af_id, 5)
    af = await env.activeflow(af_id)
    assert af.variables["after"] == "7" and call.hangup_reason == "normal"


async def test_talk_async_does_not_wait(env: Env) -> None:
    long_text = " ".join(["word"] * 2000)
    _call, af = await env.run(
        [
            {"type": "talk", "option": {"text": long_text, "async": True}},
            {"type": "variable_set", "option": {"key": "after", "value": "1"}},
        ],
        within=3,
    )
    assert af.variables["after"] == "1"
