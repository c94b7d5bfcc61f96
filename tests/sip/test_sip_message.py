"""Parser/serializer: round trips, compact and folded headers, multiple Via, case-insensitivity."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voipbin.sip import NameAddr, SipParseError, SipRequest, SipResponse, SipUri, make_response, parse_message
from voipbin.sip.headers import CSeq, Via

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKproxy1, SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Bob" <sip:bob@biloxi.example.com>\r\n'
    b'From: "Alice, A." <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com;transport=tcp>;expires=60\r\n"
    b"Subject: folded\r\n"
    b"  continuation here\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_parse_request_basics() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.uri.user == "bob" and msg.uri.host == "biloxi.example.com"
    assert [v.branch for v in msg.vias] == ["z9hG4bK776asdhds", "z9hG4bKproxy1", "z9hG4bKx"]
    assert msg.vias[1].transport == "TCP" and msg.vias[2].port == 5070
    assert "rport" in msg.via.params and msg.via.params["rport"] is None
    assert msg.cseq == CSeq(314159, "INVITE")
    assert msg.from_.tag == "1928301774"
    assert msg.from_.display_name == "Alice, A."
    assert msg.to.tag is None
    assert msg.contacts[0].uri.params["transport"] == "tcp"
    assert msg.contacts[0].params["expires"] == "60"
    assert msg.headers.get("subject") == "folded continuation here"
    assert msg.body == b"v=0\n"


def test_round_trip_is_stable() -> None:
    msg = parse_message(INVITE)
    again = parse_message(msg.serialize())
    assert again.serialize() == msg.serialize()
    assert again.headers.get_all("Via") == msg.headers.get_all("Via")
    assert again.body == msg.body


def test_compact_and_case_insensitive_names() -> None:
    data = (
        b"BYE sip:a@127.0.0.1 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa\r\n"
        b"f: <sip:b@127.0.0.1>;tag=x\r\n"
        b"t: <sip:a@127.0.0.1>;tag=y\r\n"
        b"i: cid-1\r\n"
        b"cSeQ: 2 BYE\r\n"
        b"m: <sip:b@127.0.0.1:5070>\r\n"
        b"l: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert msg.call_id == "cid-1"
    assert msg.headers.get("CALL-ID") == "cid-1"
    assert msg.headers.get("i") == "cid-1"
    assert msg.cseq.method == "BYE"
    out = msg.serialize()
    assert b"Call-ID: cid-1\r\n" in out and b"CSeq: 2 BYE\r\n" in out and b"Via: SIP/2.0/UDP" in out


def test_response_and_make_response() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, SipRequest)
    resp = make_response(req, 180, to_tag="abc", headers=[("Contact", "<sip:bob@127.0.0.1>")])
    parsed = parse_message(resp.serialize())
    assert isinstance(parsed, SipResponse)
    assert parsed.status == 180 and parsed.reason == "Ringing"
    assert parsed.to.tag == "abc"
    assert parsed.headers.get_all("Via") == req.headers.get_all("Via")
    assert parsed.cseq == req.cseq
    trying = make_response(req, 100, to_tag="abc")
    assert trying.to.tag is None  # 100 Trying never carries a To tag


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"INVITE sip:a@b SIP/2.0\r\n\r\n",  # no mandatory headers
        b"INVITE sip:a@b SIP/3.0\r\nVia: x\r\n\r\n",
        b"SIP/2.0 99 Bad\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
        INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: abc INVITE"),
        INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 1 BYE"),
        INVITE.replace(b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060", b"Via: SIP/2.0/UDP :5060"),
        b"INVITE http://x SIP/2.0\r\n\r\n",
        b" leading continuation\r\n\r\n",
    ],
)
def test_bad_messages_raise_parse_error(data: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(data)


def test_partial_message_kept_for_400() -> None:
    bad = INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 1 BYE")
    with pytest.raises(SipParseError) as info:
        parse_message(bad)
    assert isinstance(info.value.partial, SipRequest)
    resp = make_response(info.value.partial, 400)
    assert resp.headers.get("Call-ID") == "a84b4c76e66710@pc33.atlanta.example.com"


def test_uri_and_name_addr() -> None:
    uri = SipUri.parse("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=x")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "[2001:db8::1]",
        5061,
    )
    assert uri.params == {"transport": "tcp", "lr": None}
    assert SipUri.parse(str(uri)) == uri
    na = NameAddr.parse("sip:bob@example.com;tag=88")  # addr-spec: params belong to the header
    assert na.tag == "88" and na.uri.params == {}
    star = NameAddr.parse("*")
    assert star.wildcard
    tel = SipUri.parse("tel:+15551234567")
    assert tel.user == "+15551234567"
    assert SipUri.parse("sip:1001@Example.COM:5070").aor() == "sip:1001@example.com"


def test_via_tolerates_spaces() -> None:
    v = Via.parse("SIP / 2.0 / UDP 10.0.0.1:5060 ; branch=z9hG4bK1")
    assert v.transport == "UDP" and v.host == "10.0.0.1" and v.branch == "z9hG4bK1"


_token = st.text(alphabet=string.ascii_letters + string.digits + "-_.!~*'", min_size=1, max_size=12)
_host = st.one_of(
    st.from_regex(r"[a-z][a-z0-9\-]{0,10}(\.[a-z][a-z0-9\-]{0,10}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_uris = st.builds(
    SipUri,
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | _token,
    host=_host,
    port=st.none() | st.integers(1, 65535),
    params=st.dictionaries(_token.map(str.lower), st.none() | _token, max_size=3),
)


@given(_uris, st.none() | st.text(alphabet=string.ascii_letters + ' ,"\\', max_size=10), st.none() | _token)
def test_uri_and_name_addr_round_trip(uri: SipUri, display: str | None, tag: str | None) -> None:
    assert SipUri.parse(str(uri)) == uri
    na = NameAddr(uri, display or None, {"tag": tag} if tag else {})
    again = NameAddr.parse(str(na))
    assert again.uri == uri and again.tag == tag
    assert again.display_name == (display or None)
