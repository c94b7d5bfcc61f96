"""external_media_start/stop in the flow engine with an in-memory call (MemoryCall implements CallAudio):
marks, directions, stopping, refused hosts and unsupported options. The SIP end-to-end tests are beside."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from tests.flow.conftest import Env
from tests.stream.twilio_bot import Bot, tone_ulaw, twilio_bot

pytestmark = pytest.mark.serial  # asserts real time: run with nothing beside it (conftest)

TWILIO = {"transport": "websocket", "encapsulation": "twilio"}


def start(host: str, **option: Any) -> dict[str, Any]:
    return {"type": "external_media_start", "option": {"external_host": host, **option}}


async def test_marks_come_back_in_order_once_played(env: Env) -> None:
    async def speak_twice(bot: Bot, ws: ServerConnection, message: dict[str, Any]) -> bool:
        sid = message.get("streamSid")
        if message["event"] == "start":
            for name in ("first", "second"):
                audio = tone_ulaw(0.4, 500.0)
                payload = base64.b64encode(audio).decode()  # one 400 ms message: any size is fine
                await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}}))
                await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": name}}))
        if message["event"] == "mark":
            bot.changed.set()
            return message["mark"]["name"] != "second"
        return True

    async with twilio_bot(speak_twice) as bot:
        call, af = await env.run(
            [start(bot.url, **TWILIO), {"type": "variable_set", "option": {"key": "a", "value": "1"}}]
        )
    assert af.error == "" and af.variables["a"] == "1"
    assert [m["mark"]["name"] for m in bot.events("mark")] == ["first", "second"]
    played = call.heard_pcm()
    assert len(played) >= 2 * 0.4 * 16000 * 0.95  # both 400 ms tones reached the caller


async def test_direction_in_only_listens(env: Env) -> None:
    async def talk_back(bot: Bot, ws: ServerConnection, message: dict[str, Any]) -> bool:
        if message["event"] == "media":
            back = {"event": "media", "streamSid": message["streamSid"], "media": message["media"]}
            await ws.send(json.dumps(back))
            return int(message["media"]["chunk"]) < 25
        return True

    async with twilio_bot(talk_back) as bot:
        call, af = await env.run([start(bot.url, direction="in", **TWILIO)])
    assert af.error == ""
    assert len(bot.events("media")) >= 25
    assert call.played == []  # the caller hears nothing of the bot


async def test_stopping_the_activeflow_ends_the_stream(env: Env) -> None:
    async with twilio_bot(lambda bot, ws, message: asyncio.sleep(0, True)) as bot:
        call = await env.call([start(bot.url, **TWILIO)])
        af_id = await env.start(call)
        await bot.wait_for(lambda b: len(b.events("media")) > 5)
        await env.platform.flows.stop(af_id)
        await asyncio.wait_for(bot.closed.wait(), 5)
    assert [m["event"] for m in bot.received[:2]] == ["connected", "start"]


async def test_external_media_stop_ends_the_rtp_stream(env: Env) -> None:
    loop = asyncio.get_running_loop()
    got: list[float] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            got.append(loop.time())

    transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        _, af = await env.run(
            [
                start(f"127.0.0.1:{port}", format="alaw"),
                {"type": "sleep", "option": {"duration": 600}},
                {"type": "external_media_stop"},
                {"type": "external_media_stop"},  # nothing left to stop: a no-op
                {"type": "sleep", "option": {"duration": 500}},
            ]
        )
        ended = loop.time()
    finally:
        transport.close()
    assert af.error == ""
    assert len(got) >= 20, len(got)
    assert ended - got[-1] > 0.35  # nothing after external_media_stop
    assert af.variables["voipbin.external_media.local_port"].isdigit()


async def test_hosts_from_variables_are_checked_when_dialled(env: Env) -> None:
    env.platform.settings.outbound_allow = ""  # production default: public addresses only
    async with twilio_bot(lambda bot, ws, message: asyncio.sleep(0, True)) as bot:
        for host in (
            f"ws://127.1:{bot.port}/media",
            f"ws://localhost:{bot.port}/",
            f"ws://[::1]:{bot.port}/",
        ):
            _, af = await env.run([start("${bot}", **TWILIO)], variables={"bot": host})
            assert "VOIPBIN_OUTBOUND_ALLOW" in af.error, af.error
        _, af = await env.run([start("${media}")], variables={"media": "2130706433:5004"})
        assert "VOIPBIN_OUTBOUND_ALLOW" in af.error, af.error
    assert bot.received == []


async def test_unsupported_options_fail_clearly(env: Env) -> None:
    cases = [
        (start("127.0.0.1:5004", transport="tcp"), "transport 'tcp'"),
        (start("127.0.0.1:5004", encapsulation="audiosocket"), "encapsulation 'audiosocket'"),
        (start("127.0.0.1:5004", connection_type="server"), "connection_type 'server'"),
        (start("127.0.0.1:5004", format="opus"), "format 'opus'"),
        (start("http://127.0.0.1:5004/", **TWILIO), "ws:// or wss://"),
    ]
    for action, message in cases:
        call, af = await env.run([action])
        assert message in af.error, af.error
        assert call.hangup_reason == "failed"
