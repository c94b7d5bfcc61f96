"""Two of our endpoints on loopback: re-INVITE, INFO, BYE from the callee, CANCEL, OPTIONS,
unknown methods, stray in-dialog requests, UDP retransmission and TCP junk."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from voipbin.sip import Call, IncomingInvite, SipEndpoint, answer_offer, build_sdp, parse_message
from voipbin.sip.message import SipRequest, make_response

pytestmark = pytest.mark.timeout(60)


class Callee:
    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.ctxs: list[IncomingInvite] = []
        self.calls: list[Call] = []
        self.other: list[str] = []
        self.reinvites: list[bytes] = []
        self.infos: list[bytes] = []

    async def __call__(self, ctx) -> None:
        if not isinstance(ctx, IncomingInvite):
            self.other.append(ctx.request.method)
            ctx.respond(200)
            return
        self.ctxs.append(ctx)
        ctx.ringing()
        if not self.answer:
            return
        body, _ = answer_offer(ctx.offer, "127.0.0.1", 41000)
        call = ctx.answer(body)

        def on_reinvite(req: SipRequest) -> bytes:
            self.reinvites.append(req.body)
            return answer_offer(req.body, "127.0.0.1", 41002)[0]

        call.on_reinvite = on_reinvite
        call.on_info = lambda req: self.infos.append(req.body)
        self.calls.append(call)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SipEndpoint, SipEndpoint, Callee]]:
    callee = Callee()
    a = SipEndpoint("127.0.0.1", 0)
    b = SipEndpoint("127.0.0.1", 0, on_request=callee)
    await a.start()
    await b.start()
    try:
        yield a, b, callee
    finally:
        await a.stop()
        await b.stop()


async def dial(a: SipEndpoint, b: SipEndpoint, transport: str = "udp"):
    return await a.invite(
        f"sip:bob@127.0.0.1:{b.port}",
        '"Alice" <sip:alice@127.0.0.1>',
        "<sip:bob@127.0.0.1>",
        build_sdp("127.0.0.1", 30000),
        transport=transport,
        timeout=5,
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_reinvite_info_and_callee_bye(pair, transport: str) -> None:
    a, b, callee = pair
    result = await dial(a, b, transport)
    assert result.ok
    caller = result.call
    assert caller is not None and caller.media is not None
    assert (caller.media.remote_addr, caller.media.remote_port) == ("127.0.0.1", 41000)
    await asyncio.wait_for(callee.calls[0].confirmed.wait(), 2)
    # caller re-INVITEs with a new port: callee's hook gets it, answers with a new port
    resp = await caller.reinvite(build_sdp("127.0.0.1", 30010))
    assert resp.status == 200
    assert b"m=audio 30010" in callee.reinvites[0]
    assert caller.media is not None and caller.media.remote_port == 41002
    await asyncio.wait_for(callee.calls[0].confirmed.wait(), 2)
    # INFO (dtmf-relay) from the caller
    resp = await caller.info(b"Signal=1\r\nDuration=100\r\n")
    assert resp.status == 200 and callee.infos == [b"Signal=1\r\nDuration=100\r\n"]
    # callee re-INVITEs the caller (default hook: keep our SDP)
    callee_call = callee.calls[0]
    resp = await callee_call.reinvite(build_sdp("127.0.0.1", 41004))
    assert resp.status == 200 and resp.body == caller.local_sdp
    # callee hangs up; caller's call ends
    bye = await callee_call.bye()
    assert bye is not None and bye.status == 200
    assert await asyncio.wait_for(caller.ended, 2) == "remote_bye"
    assert callee_call.ended.result() == "local_bye"
    assert not a._dialogs and not b._dialogs


async def test_cancel_between_our_endpoints(pair) -> None:
    a, b, callee = pair
    callee.answer = False
    pending = a.invite(
        f"sip:bob@127.0.0.1:{b.port}",
        "<sip:alice@127.0.0.1>",
        "<sip:bob@127.0.0.1>",
        build_sdp("127.0.0.1", 1),
    )
    pending.cancel()  # before any provisional: CANCEL goes out once 180 arrives
    result = await asyncio.wait_for(pending, 5)
    assert result.status == 487
    assert callee.ctxs[0].cancelled.is_set()
    with pytest.raises(Exception, match="already finished"):
        callee.ctxs[0].answer(b"v=0\r\n")


async def test_options_unknown_methods_and_stray_requests(pair) -> None:
    a, b, callee = pair
    common = {"from_uri": "<sip:alice@127.0.0.1>", "to_uri": "<sip:bob@127.0.0.1>"}
    uri = f"sip:bob@127.0.0.1:{b.port}"
    resp = await a.request("OPTIONS", uri, **common)
    assert resp.status == 200 and "INVITE" in (resp.headers.get("Allow") or "")
    assert (await a.request("FOOBAR", uri, **common)).status == 501
    assert (await a.request("PUBLISH", uri, **common)).status == 405
    assert (await a.request("MESSAGE", uri, **common, body=b"hi", content_type="text/plain")).status == 200
    assert callee.other == ["MESSAGE"]
    stray = await a.request(
        "BYE", uri, from_uri="<sip:alice@127.0.0.1>", to_uri="<sip:bob@127.0.0.1>;tag=nope"
    )
    assert stray.status == 481
    assert (await a.request("INFO", uri, **common)).status == 481  # no dialog


async def test_handler_without_response_gets_500_and_exceptions_are_contained() -> None:
    def bad_handler(ctx) -> None:
        if ctx.request.method == "INVITE":
            raise RuntimeError("app bug")

    a = SipEndpoint("127.0.0.1", 0)
    b = SipEndpoint("127.0.0.1", 0, on_request=bad_handler)
    await a.start()
    await b.start()
    try:
        resp = await a.request(
            "MESSAGE", f"sip:x@127.0.0.1:{b.port}", from_uri="<sip:a@h>", to_uri="<sip:x@h>"
        )
        assert resp.status == 500
        result = await dial(a, b)
        assert result.status == 500
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.serial  # a real-time bound: run with nothing beside it (conftest)
async def test_udp_invite_retransmitted_until_answered(endpoint: SipEndpoint) -> None:
    """A peer that ignores our first INVITE: Timer A resends it after T1 (0.5 s)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    pending = endpoint.invite(
        f"sip:peer@127.0.0.1:{port}",
        "<sip:alice@127.0.0.1>",
        "<sip:peer@127.0.0.1>",
        build_sdp("127.0.0.1", 1),
    )
    try:
        first = await asyncio.wait_for(loop.sock_recv(sock, 65535), 2)
        t0 = time.monotonic()
        second = await asyncio.wait_for(loop.sock_recv(sock, 65535), 2)
        assert 0.3 < time.monotonic() - t0 < 1.5  # Timer A = T1 = 0.5 s (slack for a loaded CI box)
        assert first == second
        inv = parse_message(second)
        assert isinstance(inv, SipRequest)
        resp = make_response(inv, 603, to_tag="p1")
        await loop.sock_sendto(sock, resp.serialize(), ("127.0.0.1", endpoint.port))
        result = await asyncio.wait_for(pending, 2)
        assert result.status == 603
        ack = parse_message(await asyncio.wait_for(loop.sock_recv(sock, 65535), 2))
        assert isinstance(ack, SipRequest) and ack.method == "ACK" and ack.via.branch == inv.via.branch
    finally:
        sock.close()


async def test_tcp_junk_closes_only_that_connection(endpoint: SipEndpoint) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    writer.write(b"x" * 20000)  # no end of headers: unframeable
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the endpoint
    writer.close()
    # a fresh TCP connection still works, including a message split across writes
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    lport = writer.get_extra_info("sockname")[1]
    options = (
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:{lport};branch=z9hG4bKtcp1\r\n"
        "From: <sip:t@127.0.0.1>;tag=t1\r\nTo: <sip:x@127.0.0.1>\r\n"
        "Call-ID: tcp-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    writer.write(b"\r\n\r\n" + options[:40])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(options[40:])
    data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert data.startswith(b"SIP/2.0 200 OK") and b"tcp-1" in data
    writer.close()


async def test_tcp_connect_refused_fails_fast(endpoint: SipEndpoint) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there
    t0 = time.monotonic()
    result = await endpoint.invite(
        f"sip:x@127.0.0.1:{port}", "<sip:a@127.0.0.1>", "<sip:x@127.0.0.1>", b"", transport="tcp", timeout=10
    )
    assert result.status == 503 and time.monotonic() - t0 < 2


async def test_require_extension_and_missing_contact(pair) -> None:
    _a, b, callee = pair
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    lport = sock.getsockname()[1]

    def invite(extra: str, contact: bool = True) -> bytes:
        return (
            "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{extra[:3]}{int(contact)}\r\n"
            "From: <sip:t@127.0.0.1>;tag=t1\r\nTo: <sip:bob@127.0.0.1>\r\n"
            f"Call-ID: req-{extra[:3]}\r\nCSeq: 1 INVITE\r\n"
            + (f"Contact: <sip:t@127.0.0.1:{lport}>\r\n" if contact else "")
            + extra
            + "Content-Length: 0\r\n\r\n"
        ).encode()

    async def final(data: bytes) -> str:
        await loop.sock_sendto(sock, data, ("127.0.0.1", b.port))
        while True:
            resp = parse_message(await asyncio.wait_for(loop.sock_recv(sock, 65535), 2))
            if resp.start_line() != "SIP/2.0 100 Trying":
                return resp.start_line()

    try:
        assert await final(invite("Require: 100rel\r\n")) == "SIP/2.0 420 Bad Extension"
        assert (await final(invite("X: y\r\n", contact=False))).startswith("SIP/2.0 400")
        assert callee.ctxs == []
    finally:
        sock.close()


async def test_early_media_183_reaches_caller() -> None:
    async def on_request(ctx) -> None:
        body, _ = answer_offer(ctx.offer, "127.0.0.1", 42000)
        ctx.progress(body)
        await asyncio.sleep(0.05)
        ctx.answer(body)

    a = SipEndpoint("127.0.0.1", 0)
    b = SipEndpoint("127.0.0.1", 0, on_request=on_request)
    await a.start()
    await b.start()
    early: list[tuple[int, bytes]] = []
    try:
        result = await a.invite(
            f"sip:bob@127.0.0.1:{b.port}",
            "<sip:alice@127.0.0.1>",
            "<sip:bob@127.0.0.1>",
            build_sdp("127.0.0.1", 30000),
            on_provisional=lambda r: early.append((r.status, r.body)),
        )
        assert result.ok
        assert [s for s, _ in early if s == 183] == [183]
        assert b"m=audio 42000" in next(body for s, body in early if s == 183)
        assert result.call is not None
        await result.call.bye()
    finally:
        await a.stop()
        await b.stop()


async def test_2xx_retransmitted_until_ack_then_bye_without_ack() -> None:
    """A raw UDP caller: late ACK stops the 2xx retransmissions; no ACK at all -> we send BYE."""
    from voipbin.sip import TimerConfig

    answered: list[Call] = []

    def on_request(ctx) -> None:
        answered.append(ctx.answer(answer_offer(ctx.offer, "127.0.0.1", 43000)[0]))

    ep = SipEndpoint("127.0.0.1", 0, on_request=on_request, timers=TimerConfig(t1=0.05, t2=0.4, t4=0.5))
    await ep.start()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    lport = sock.getsockname()[1]
    offer = build_sdp("127.0.0.1", 30000)

    def invite(call_id: str) -> bytes:
        return (
            "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:t@127.0.0.1>;tag=t1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 INVITE\r\nContact: <sip:t@127.0.0.1:{lport}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(offer)}\r\n\r\n"
        ).encode() + offer

    async def recv() -> SipRequest | object:
        return parse_message(await asyncio.wait_for(loop.sock_recv(sock, 65535), 3))

    try:
        await loop.sock_sendto(sock, invite("late-ack"), ("127.0.0.1", ep.port))
        oks = []
        while len(oks) < 3:  # the 200 and at least two retransmissions
            msg = await recv()
            if getattr(msg, "status", 0) == 200:
                oks.append(msg)
        ok = oks[0]
        ack = (
            f"ACK sip:voipbin@127.0.0.1:{ep.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bKack1\r\n"
            f"From: <sip:t@127.0.0.1>;tag=t1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: late-ack\r\n"
            "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        await loop.sock_sendto(sock, ack, ("127.0.0.1", ep.port))
        await asyncio.wait_for(answered[0].confirmed.wait(), 1)
        await asyncio.sleep(0.5)
        while True:  # drain anything sent before the ACK landed, then expect silence
            try:
                sock.recv(65535)
            except BlockingIOError:
                break
        await asyncio.sleep(0.5)
        with pytest.raises(BlockingIOError):
            sock.recv(65535)
        assert answered[0].is_active
        # second call: never ACK -> after 64*T1 the endpoint hangs up with BYE
        await loop.sock_sendto(sock, invite("no-ack"), ("127.0.0.1", ep.port))
        while True:
            msg = await recv()
            if isinstance(msg, SipRequest) and msg.method == "BYE":
                break
        assert msg.call_id == "no-ack"
        await loop.sock_sendto(sock, make_response(msg, 200).serialize(), ("127.0.0.1", ep.port))
        assert await asyncio.wait_for(answered[1].ended, 2) == "local_bye"
    finally:
        sock.close()
        await ep.stop()


async def test_late_2xx_after_giving_up_is_acked_and_hung_up(endpoint: SipEndpoint) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    try:
        result = await endpoint.invite(
            f"sip:peer@127.0.0.1:{port}", "<sip:a@127.0.0.1>", "<sip:peer@127.0.0.1>", b"", timeout=0.3
        )
        assert result.status == 408  # nothing answered within the ring timeout
        inv = parse_message(await asyncio.wait_for(loop.sock_recv(sock, 65535), 1))
        assert isinstance(inv, SipRequest)
        ok = make_response(inv, 200, to_tag="late", headers=[("Contact", f"<sip:peer@127.0.0.1:{port}>")])
        await loop.sock_sendto(sock, ok.serialize(), ("127.0.0.1", endpoint.port))
        methods = []
        while "BYE" not in methods:
            msg = parse_message(await asyncio.wait_for(loop.sock_recv(sock, 65535), 2))
            if isinstance(msg, SipRequest):
                methods.append(msg.method)
                if msg.method == "BYE":
                    assert msg.to.tag == "late"
                    await loop.sock_sendto(
                        sock, make_response(msg, 200).serialize(), ("127.0.0.1", endpoint.port)
                    )
        assert methods[methods.index("ACK") :] == ["ACK", "BYE"] or methods[-2:] == ["ACK", "BYE"]
    finally:
        sock.close()


async def test_reinvite_glare_gets_491(pair) -> None:
    a, b, callee = pair
    result = await dial(a, b)
    assert result.ok and result.call is not None
    caller = result.call
    await asyncio.wait_for(callee.calls[0].confirmed.wait(), 2)
    slow = asyncio.Event()

    async def slow_reinvite(req: SipRequest) -> bytes:
        await slow.wait()
        return callee.calls[0].local_sdp

    callee.calls[0].on_reinvite = slow_reinvite
    first = asyncio.ensure_future(caller.reinvite(build_sdp("127.0.0.1", 30020)))
    await asyncio.sleep(0.1)  # callee is now busy answering the caller's re-INVITE
    glare = await callee.calls[0].reinvite(build_sdp("127.0.0.1", 41010))
    assert glare.status == 491
    slow.set()
    assert (await asyncio.wait_for(first, 3)).status == 200
    await caller.bye()
