"""Fuzzing: parsers raise only their typed error; the endpoint survives random datagrams."""

from __future__ import annotations

import asyncio
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voipbin.sip import SdpParseError, SipEndpoint, SipParseError, parse_message, parse_sdp
from voipbin.sip.errors import SdpNegotiationError
from voipbin.sip.sdp import answer_offer
from voipbin.sip.transport import StreamFramer

VALID = (
    b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n"
    b'From: "A" <sip:alice@127.0.0.1>;tag=a1\r\n'
    b"To: <sip:bob@127.0.0.1>\r\n"
    b"Call-ID: c1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.1:5070>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 30\r\n\r\n"
    b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio"
)

# Tokens that make random input look SIP-ish so the fuzzer reaches deep code paths.
TOKENS = [
    b"INVITE ", b"SIP/2.0", b"sip:", b"@", b":", b";", b",", b"<", b">", b'"', b"\r\n", b"\r\n\r\n", b" ",
    b"\t", b"Via: ", b"SIP/2.0/UDP ", b"branch=z9hG4bK", b"From: ", b"To: ", b"tag=", b"Call-ID: ", b"CSeq: ",
    b"1 ", b"Content-Length: ", b"l: ", b"v: ", b"[", b"]", b"::1", b"65536", b"0", b"99999999999", b"\xff",
    b"Contact: *", b"=", b"?",
]  # fmt: skip

sip_like = st.lists(st.sampled_from(TOKENS) | st.binary(max_size=8), max_size=60).map(b"".join)


def _mutations(data: bytes):
    return st.tuples(st.integers(0, len(data)), st.integers(0, 40), st.binary(max_size=20)).map(
        lambda t: data[: t[0]] + t[2] + data[t[0] + t[1] :]
    )


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), sip_like, _mutations(VALID)))
def test_parser_raises_only_parse_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError:
        return
    # whatever parsed must serialize and re-parse
    again = parse_message(msg.serialize())
    assert type(again) is type(msg)
    assert again.call_id == msg.call_id


SDP_TOKENS = [
    b"v=0\r\n", b"o=- 1 1 IN IP4 1.1.1.1\r\n", b"c=IN IP4 1.2.3.4\r\n", b"m=audio ", b"5000", b" RTP/AVP ",
    b"0 8 101", b"a=rtpmap:", b"101 telephone-event/8000", b"a=ptime:", b"20", b"a=sendonly\r\n", b"\r\n",
    b"x", b"/", b" ", b"c=IN IP6 ::1\r\n", b"m=video 0 RTP/AVP 96\r\n",
]  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.lists(st.sampled_from(SDP_TOKENS), max_size=30).map(b"".join)))
def test_sdp_parser_raises_only_parse_error(data: bytes) -> None:
    try:
        parse_sdp(data)
    except SdpParseError:
        return
    try:
        answer_offer(data, "127.0.0.1", 4000)
    except (SdpParseError, SdpNegotiationError):
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200) | sip_like, max_size=10))
def test_stream_framer_never_crashes(chunks: list[bytes]) -> None:
    framer = StreamFramer()
    try:
        for c in chunks:
            for msg in framer.feed(c):
                assert b"\r\n\r\n" in msg
    except ValueError:
        pass


async def test_endpoint_survives_random_datagrams() -> None:
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        examples = []

        @settings(max_examples=400, deadline=None, database=None)
        @given(st.one_of(st.binary(max_size=300), sip_like, _mutations(VALID)))
        def collect(d: bytes) -> None:
            examples.append(d)

        collect()
        for data in examples:
            sock.sendto(data or b"x", ("127.0.0.1", ep.port))
        await asyncio.sleep(0.3)
        # drain whatever it answered (400s etc.)
        while True:
            try:
                sock.recv(65535)
            except BlockingIOError:
                break
        options = (
            "OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{sock.getsockname()[1]};branch=z9hG4bKping\r\n"
            "From: <sip:t@127.0.0.1>;tag=t1\r\nTo: <sip:ping@127.0.0.1>\r\n"
            "Call-ID: ping-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        sock.sendto(options, ("127.0.0.1", ep.port))
        data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 2)
        while b"ping-1" not in data:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 2)
        resp = parse_message(data)
        assert resp.start_line() == "SIP/2.0 200 OK"
        sock.close()
    finally:
        await ep.stop()


async def test_malformed_request_gets_400() -> None:
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        bad = VALID.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE").replace(
            b"127.0.0.1:5070;branch", f"127.0.0.1:{sock.getsockname()[1]};branch".encode()
        )
        sock.sendto(bad, ("127.0.0.1", ep.port))
        resp = parse_message(await asyncio.wait_for(loop.sock_recv(sock, 65535), 2))
        assert resp.start_line().startswith("SIP/2.0 400")
        assert resp.call_id == "c1"
    finally:
        sock.close()
        await ep.stop()
