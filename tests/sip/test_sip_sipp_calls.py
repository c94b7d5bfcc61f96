"""Calls against real SIPp on loopback, in both directions, UDP and TCP."""

from __future__ import annotations

import asyncio

import pytest

from voipbin.sip import (
    Call,
    DigestAuthenticator,
    DigestCredentials,
    IncomingInvite,
    SipEndpoint,
    answer_offer,
    build_sdp,
)
from voipbin.sip.digest import AuthResult

from .conftest import SippLauncher, requires_sipp

pytestmark = [requires_sipp, pytest.mark.timeout(60)]


class AnsweringApp:
    """Answers every INVITE with 180 then 200 + SDP; records calls and INFO bodies."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.invites: list[IncomingInvite] = []
        self.calls: list[Call] = []
        self.infos: list[bytes] = []
        self.new_call = asyncio.Event()

    async def __call__(self, ctx) -> None:
        if not isinstance(ctx, IncomingInvite):
            ctx.respond(405)
            return
        self.invites.append(ctx)
        ctx.ringing()
        if not self.answer:
            return
        body, _media = answer_offer(ctx.offer, "127.0.0.1", 40000)
        call = ctx.answer(body)
        call.on_info = lambda req: self.infos.append(req.body)
        self.calls.append(call)
        self.new_call.set()


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_uac_calls_us(endpoint: SipEndpoint, sipp: SippLauncher, transport: str) -> None:
    app = AnsweringApp()
    endpoint.on_request = app
    run = await sipp.start(
        "-sn", "uac", "-t", transport, "-m", "1", "-d", "200", f"127.0.0.1:{endpoint.port}"
    )
    assert await run.wait() == 0, run.errors() + run.messages()[-3000:]
    assert len(app.calls) == 1
    call = app.calls[0]
    assert await asyncio.wait_for(call.ended, 2) == "remote_bye"
    assert call.confirmed.is_set()  # ACK for our 200 was matched to the dialog
    ctx = app.invites[0]
    assert (ctx.source.ip, ctx.source.port) == ("127.0.0.1", run.port)
    assert ctx.source.transport == ("udp" if transport == "u1" else "tcp")
    assert call.media is not None and call.media.codec == "PCMU"
    assert "SIP/2.0 180 Ringing" in run.messages()


async def test_sipp_info_is_delivered(endpoint: SipEndpoint, sipp: SippLauncher) -> None:
    app = AnsweringApp()
    endpoint.on_request = app
    run = await sipp.start("-m", "1", f"127.0.0.1:{endpoint.port}", scenario="uac_info.xml")
    assert await run.wait() == 0, run.errors() + run.messages()[-3000:]
    assert app.infos == [b"Signal=5\r\nDuration=160\r\n"]
    assert app.calls[0].media is not None and app.calls[0].media.dtmf_payload_type == 101


async def test_sipp_cancels_our_ringing_call(endpoint: SipEndpoint, sipp: SippLauncher) -> None:
    app = AnsweringApp(answer=False)
    endpoint.on_request = app
    run = await sipp.start("-m", "1", f"127.0.0.1:{endpoint.port}", scenario="uac_cancel.xml")
    assert await run.wait() == 0, run.errors() + run.messages()[-3000:]
    assert app.invites[0].cancelled.is_set()
    assert "SIP/2.0 487" in run.messages()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_we_call_sipp_uas_then_bye(endpoint: SipEndpoint, sipp: SippLauncher, transport: str) -> None:
    run = await sipp.start_server("-sn", "uas", "-m", "1", transport="u1" if transport == "udp" else "t1")
    provisional: list[int] = []
    offer = build_sdp("127.0.0.1", 30000)
    result = await endpoint.invite(
        f"sip:service@127.0.0.1:{run.port}",
        "<sip:alice@127.0.0.1>",
        f"<sip:service@127.0.0.1:{run.port}>",
        offer,
        transport=transport,
        on_provisional=lambda r: provisional.append(r.status),
        timeout=10,
    )
    assert result.ok, (result.status, result.reason)
    assert result.status == 200
    assert 180 in provisional
    call = result.call
    assert call is not None and call.remote_sdp.startswith(b"v=0")
    assert call.media is not None and call.media.codec == "PCMU"
    bye = await call.bye()
    assert bye is not None and bye.status == 200
    assert await run.wait() == 0, run.errors()
    assert await call.ended == "local_bye"


async def test_we_call_busy_sipp(endpoint: SipEndpoint, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_busy.xml")
    result = await endpoint.invite(
        f"sip:service@127.0.0.1:{run.port}",
        "<sip:alice@127.0.0.1>",
        "<sip:bob@127.0.0.1>",
        build_sdp("127.0.0.1", 30000),
    )
    assert not result.ok and result.status == 486 and result.reason == "Busy Here"
    assert await run.wait() == 0, run.errors()  # SIPp got its ACK from our transaction


async def test_we_cancel_ringing_sipp(endpoint: SipEndpoint, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_ring_cancel.xml")
    ringing = asyncio.Event()
    pending = endpoint.invite(
        f"sip:service@127.0.0.1:{run.port}",
        "<sip:alice@127.0.0.1>",
        "<sip:bob@127.0.0.1>",
        build_sdp("127.0.0.1", 30000),
        on_provisional=lambda r: ringing.set() if r.status == 180 else None,
    )
    await asyncio.wait_for(ringing.wait(), 5)
    pending.cancel()
    result = await asyncio.wait_for(pending, 10)
    assert result.status == 487 and not result.ok
    assert await run.wait() == 0, run.errors()
    assert "CANCEL sip:service@127.0.0.1" in run.messages()


async def test_ring_timeout_cancels(endpoint: SipEndpoint, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_ring_cancel.xml")
    result = await endpoint.invite(
        f"sip:service@127.0.0.1:{run.port}",
        "<sip:alice@127.0.0.1>",
        "<sip:bob@127.0.0.1>",
        build_sdp("127.0.0.1", 30000),
        timeout=1.0,
    )
    assert result.status == 487
    assert await run.wait() == 0, run.errors()


async def test_we_authenticate_to_sipp(endpoint: SipEndpoint, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_auth.xml")
    result = await endpoint.invite(
        f"sip:service@127.0.0.1:{run.port}",
        "<sip:alice@127.0.0.1>",
        "<sip:bob@127.0.0.1>",
        build_sdp("127.0.0.1", 30000),
        credentials=("alice", "secret"),
        timeout=10,
    )
    assert result.ok, (result.status, result.reason)  # SIPp's verifyauth accepted our digest
    assert result.call is not None
    await result.call.bye()
    assert await run.wait() == 0, run.errors()
    log = run.messages()
    assert 'Authorization: Digest username="alice", realm="sipp.test", nonce="a1b2c3d4e5f6"' in log
    assert "CSeq: 2 INVITE" in log


async def test_wrong_password_is_refused_by_sipp(endpoint: SipEndpoint, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_auth.xml")
    result = await endpoint.invite(
        f"sip:service@127.0.0.1:{run.port}",
        "<sip:alice@127.0.0.1>",
        "<sip:bob@127.0.0.1>",
        build_sdp("127.0.0.1", 30000),
        credentials=("alice", "wrong"),
        timeout=10,
    )
    assert result.status == 403


async def test_our_uac_digest_checked_by_our_server(endpoint: SipEndpoint) -> None:
    """Our own server-side digest verifies what our client sends (qop=auth, SHA-256)."""
    auth = DigestAuthenticator("voipbin.test", algorithm="SHA-256")
    seen: list[AuthResult] = []
    server_calls: list[Call] = []
    server = SipEndpoint("127.0.0.1", 0)

    async def on_request(ctx) -> None:
        header = ctx.request.headers.get("Proxy-Authorization")
        if header is None:
            ctx.respond(407, headers=[("Proxy-Authenticate", auth.challenge())])
            return
        result = auth.verify(DigestCredentials.parse(header), "INVITE", password="s3cret")
        seen.append(result)
        if result is AuthResult.OK:
            server_calls.append(ctx.answer(build_sdp("127.0.0.1", 41000)))
        else:
            ctx.reject(403)

    server.on_request = on_request
    await server.start()
    try:
        result = await endpoint.invite(
            f"sip:bob@127.0.0.1:{server.port}",
            "<sip:alice@127.0.0.1>",
            "<sip:bob@127.0.0.1>",
            build_sdp("127.0.0.1", 30000),
            credentials=("alice", "s3cret"),
            timeout=5,
        )
        assert result.ok and seen == [AuthResult.OK]
        assert result.response is not None and result.response.cseq.number == 2  # retried once
        assert result.call is not None
        bye = await result.call.bye()
        assert bye is not None and bye.status == 200
        assert await asyncio.wait_for(server_calls[0].ended, 2) == "remote_bye"
    finally:
        await server.stop()


async def test_sipp_uas_hangs_up_our_call(endpoint: SipEndpoint, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_answer_then_bye.xml")
    byes: list[str] = []
    result = await endpoint.invite(
        f"sip:service@127.0.0.1:{run.port}",
        "<sip:alice@127.0.0.1>",
        "<sip:bob@127.0.0.1>",
        build_sdp("127.0.0.1", 30000),
        timeout=5,
    )
    assert result.ok and result.call is not None
    assert result.call.media is not None and result.call.media.codec == "PCMA"  # answerer chose PCMA
    result.call.on_bye = lambda req: byes.append(req.call_id)
    assert await asyncio.wait_for(result.call.ended, 5) == "remote_bye"
    assert byes == [result.call.call_id]
    assert await run.wait() == 0, run.errors()
