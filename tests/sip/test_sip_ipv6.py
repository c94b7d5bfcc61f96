"""SIP over IPv6: one endpoint listens on IPv4 and IPv6 on the same port, and speaks to each peer with
the identity (Via, Contact) of that peer's address family. Real sockets on 127.0.0.1 and ::1, and
SIPp as an IPv6 peer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from tests.sip.conftest import SippLauncher, requires_ipv6, requires_sipp
from voipbin.sip import SipEndpoint, build_sdp
from voipbin.sip.endpoint import IncomingInvite

pytestmark = requires_ipv6


@pytest.fixture
async def dual() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint("127.0.0.1", 0, host6="::1")
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


@pytest.fixture
async def callee() -> AsyncIterator[tuple[SipEndpoint, list[IncomingInvite]]]:
    """A dual-stack endpoint that answers every INVITE with IPv6 media, and the INVITEs it got."""
    seen: list[IncomingInvite] = []

    async def answer(ctx: IncomingInvite) -> None:
        seen.append(ctx)
        ctx.answer(build_sdp("::1", 40002))

    ep = SipEndpoint("127.0.0.1", 0, host6="::1", on_request=answer)
    await ep.start()
    try:
        yield ep, seen
    finally:
        await ep.stop()


def _bound(host: str, port: int, kind: socket.SocketKind) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


async def test_one_port_for_udp_and_tcp_on_both_families(dual: SipEndpoint) -> None:
    assert dual.ipv6 and dual.public_host6 == "::1"
    for host in ("127.0.0.1", "::1"):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            assert _bound(host, dual.port, kind), (host, kind)


async def test_ipv4_only_endpoint_refuses_an_ipv6_target_at_once() -> None:
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    try:
        assert not ep.ipv6 and ep.public_host6 is None
        res = await asyncio.wait_for(
            ep.invite("sip:bob@[::1]:5999", "sip:alice@127.0.0.1", "sip:bob@[::1]", b""), 5
        )
        assert res.status == 503 and "IPv6" in res.reason, (res.status, res.reason)
    finally:
        await ep.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_call_between_endpoints_over_ipv6(
    dual: SipEndpoint, callee: tuple[SipEndpoint, list[IncomingInvite]], transport: str
) -> None:
    answering, seen = callee
    tp = ";transport=tcp" if transport == "tcp" else ""
    res = await asyncio.wait_for(
        dual.invite(
            f"sip:bob@[::1]:{answering.port}{tp}",
            "sip:alice@[::1]",
            "sip:bob@[::1]",
            build_sdp("::1", 40000),
            transport=transport,
        ),
        10,
    )
    assert res.ok, (res.status, res.reason)
    ctx = seen[0]
    assert ctx.source.ip == "::1" and ctx.source.transport == transport
    # the caller's identity towards an IPv6 peer is its IPv6 one, bracketed
    assert f"[::1]:{dual.port}" in ctx.request.headers.get("Via", "")
    assert f"@[::1]:{dual.port}" in ctx.request.headers.get("Contact", "")
    assert res.response is not None
    assert f"@[::1]:{answering.port}" in (res.response.headers.get("Contact") or "")
    assert res.call is not None and res.call.media is not None
    assert res.call.media.remote_addr == "::1"
    await asyncio.wait_for(res.call.bye(), 5)
    await asyncio.wait_for(res.call.ended, 5)


@requires_sipp
async def test_sipp_uas_over_ipv6_answers_our_invite(dual: SipEndpoint, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-sn", "uas", "-m", "1", host="::1")
    res = await asyncio.wait_for(
        dual.invite(
            f"sip:service@[::1]:{run.port}", "sip:alice@[::1]", "sip:service@[::1]", build_sdp("::1", 40004)
        ),
        10,
    )
    assert res.ok, (res.status, res.reason)
    assert res.call is not None
    await asyncio.wait_for(res.call.bye(), 5)
    assert await run.wait() == 0, run.errors()
    sent = run.messages()
    assert f"SIP/2.0/UDP [::1]:{dual.port}" in sent  # SIPp received our IPv6 Via


@requires_sipp
async def test_sipp_uac_over_ipv6_reaches_the_dual_endpoint(
    sipp: SippLauncher, callee: tuple[SipEndpoint, list[IncomingInvite]]
) -> None:
    ep, calls = callee
    run = await sipp.start("-sn", "uac", "-m", "1", "-d", "200", f"[::1]:{ep.port}", host="::1")
    assert await run.wait() == 0, run.errors()
    assert calls and calls[0].source.ip == "::1"
    assert f"Contact: <sip:voipbin@[::1]:{ep.port}>" in run.messages()  # our 200 OK's Contact


async def test_busy_ipv6_port_is_skipped_only_when_optional() -> None:
    """``VOIPBIN_SIP_HOST6=auto``: an IPv6 side that cannot bind is left out (IPv4 keeps working);
    an explicitly configured one that cannot bind fails the start instead of going unnoticed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    blocker = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    blocker.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    blocker.bind(("::1", port))
    try:
        optional = SipEndpoint("127.0.0.1", port, host6="::1", ipv6_optional=True)
        await optional.start()
        try:
            assert optional.port == port and not optional.ipv6 and optional.public_host6 is None
            assert _bound("127.0.0.1", port, socket.SOCK_DGRAM)
        finally:
            await optional.stop()
        required = SipEndpoint("127.0.0.1", port, host6="::1")
        with pytest.raises(OSError):
            await required.start()
        assert not _bound("127.0.0.1", port, socket.SOCK_STREAM)  # nothing left bound by the failure
    finally:
        blocker.close()
