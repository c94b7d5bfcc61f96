"""Interop with baresip (a real softphone) on loopback: digest REGISTER to our registrar, calls in
both directions with RTP actually flowing to the negotiated address, BYE from either side."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.sip.baresip import Baresip, start_baresip
from voipbin.sip import Call, IncomingInvite, Registrar, SipEndpoint, answer_offer, build_sdp

pytestmark = [
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip not installed"),
    pytest.mark.timeout(60),
]


@pytest.fixture
async def rtp_sock() -> AsyncIterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))  # baresip sends from its primary interface address
    s.setblocking(False)
    yield s
    s.close()


async def rtp_packets(sock: socket.socket, n: int = 5) -> list[bytes]:
    loop = asyncio.get_running_loop()
    return [await asyncio.wait_for(loop.sock_recv(sock, 2048), 3) for _ in range(n)]


@pytest.fixture
async def procs() -> AsyncIterator[list[Baresip]]:
    started: list[Baresip] = []
    yield started
    for b in started:
        if b.proc.returncode is None:
            b.proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(b.proc.wait(), 5)


async def test_baresip_registers_then_we_call_it(tmp_path: Path, procs, rtp_sock) -> None:
    async def lookup(user: str, realm: str) -> str | None:
        return {"1001": "pw1001"}.get(user)

    registrar = Registrar("voipbin.test", lookup)

    async def on_request(ctx) -> None:
        if ctx.request.method == "REGISTER":
            await registrar.handle(ctx)
        else:
            ctx.respond(405)

    ep = SipEndpoint("127.0.0.1", 0, on_request=on_request)
    await ep.start()
    try:
        account = (
            f"<sip:1001@127.0.0.1:{ep.port}>;auth_pass=pw1001;regint=60;answermode=auto;audio_codecs=PCMU"
        )
        procs.append(await start_baresip(tmp_path, account))
        for _ in range(60):
            bindings = registrar.bindings.lookup("sip:1001@127.0.0.1")
            if bindings:
                break
            await asyncio.sleep(0.05)
        assert bindings, procs[0].log.read_text(errors="replace")
        binding = bindings[0]
        assert binding.source.port == procs[0].sip_port and binding.username == "1001"
        rtp_port = rtp_sock.getsockname()[1]
        offer = build_sdp("127.0.0.1", rtp_port)
        result = await ep.invite(
            binding.contact, "<sip:alice@127.0.0.1>", "<sip:1001@127.0.0.1>", offer, timeout=5
        )
        assert result.ok, (result.status, result.reason)
        call = result.call
        assert call is not None and call.media is not None and call.media.codec == "PCMU"
        packets = await rtp_packets(rtp_sock)
        assert all(p[0] >> 6 == 2 and p[1] & 0x7F == 0 for p in packets)  # RTP v2, PT 0 (PCMU)
        bye = await call.bye()
        assert bye is not None and bye.status == 200
    finally:
        await ep.stop()


async def test_baresip_calls_us_and_hangs_up(tmp_path: Path, procs, rtp_sock) -> None:
    calls: list[Call] = []
    rtp_port = rtp_sock.getsockname()[1]

    def on_request(ctx) -> None:
        assert isinstance(ctx, IncomingInvite)
        ctx.ringing()
        body, _ = answer_offer(ctx.offer, "127.0.0.1", rtp_port)
        calls.append(ctx.answer(body))

    ep = SipEndpoint("127.0.0.1", 0, on_request=on_request)
    await ep.start()
    try:
        bs = await start_baresip(tmp_path, "<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMU")
        procs.append(bs)
        resp = await bs.command("dial", f"sip:agent@127.0.0.1:{ep.port}")
        assert resp.get("ok"), resp
        for _ in range(60):
            if calls:
                break
            await asyncio.sleep(0.05)
        assert calls, bs.log.read_text(errors="replace")
        call = calls[0]
        await asyncio.wait_for(call.confirmed.wait(), 3)
        assert call.media is not None and call.media.codec == "PCMU"
        packets = await rtp_packets(rtp_sock)
        assert all(p[1] & 0x7F == 0 for p in packets)
        resp = await bs.command("hangup")
        assert resp.get("ok"), resp
        assert await asyncio.wait_for(call.ended, 3) == "remote_bye"
    finally:
        await ep.stop()
