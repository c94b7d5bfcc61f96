"""Dialog creation, CSeq spaces and route handling."""

from __future__ import annotations

from voipbin.sip import Dialog, SipRequest, make_response, parse_message

INVITE = (
    "INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
    "Record-Route: <sip:p2.example.com;lr>\r\n"
    "Record-Route: <sip:p1.example.com;lr>\r\n"
    "From: <sip:alice@example.com>;tag=a1\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: d1\r\n"
    "CSeq: 10 INVITE\r\n"
    "Contact: <sip:alice@10.0.0.1:5060>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def invite() -> SipRequest:
    msg = parse_message(INVITE.encode())
    assert isinstance(msg, SipRequest)
    return msg


def test_uas_dialog_route_set_and_cseq() -> None:
    inv = invite()
    d = Dialog.from_uas(inv, "b1")
    assert d.id == ("d1", "b1", "a1")
    assert [str(r.uri) for r in d.route_set] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    assert str(d.remote_target) == "sip:alice@10.0.0.1:5060"
    bye = d.create_request("BYE", via="SIP/2.0/UDP 10.0.0.2:5060")
    assert str(bye.uri) == "sip:alice@10.0.0.1:5060"  # loose routing: target in R-URI
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.from_.tag == "b1" and bye.to.tag == "a1"
    assert bye.cseq.number == d.local_seq
    info = d.create_request("INFO", via="SIP/2.0/UDP 10.0.0.2:5060")
    assert info.cseq.number == bye.cseq.number + 1
    # remote CSeq ordering
    later = parse_message(
        INVITE.replace("CSeq: 10 INVITE", "CSeq: 11 BYE").replace("INVITE sip", "BYE sip").encode()
    )
    assert d.receive_request(later) is None
    assert d.receive_request(later) == 500  # replay / out of order


def test_uac_dialog_reverses_record_route_and_acks_2xx() -> None:
    inv = invite()
    ok = make_response(inv, 200, to_tag="b1", headers=[("Contact", "<sip:bob@10.0.0.2:5062>")])
    d = Dialog.from_uac(inv, ok)
    assert d.id == ("d1", "a1", "b1")
    assert [str(r.uri) for r in d.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    ack = d.create_ack(via="SIP/2.0/UDP 10.0.0.1:5060")
    assert ack.cseq.number == 10 and ack.cseq.method == "ACK"
    assert ack.via.branch != inv.via.branch
    bye = d.create_request("BYE", via="SIP/2.0/UDP 10.0.0.1:5060")
    assert bye.cseq.number == 11
    assert str(d.next_hop()) == "sip:p1.example.com;lr"


def test_strict_route() -> None:
    inv = invite()
    ok = make_response(inv, 200, to_tag="b1", headers=[("Contact", "<sip:bob@10.0.0.2>")])
    ok.headers.set("Record-Route", "<sip:strict.example.com>")
    d = Dialog.from_uac(inv, ok)
    bye = d.create_request("BYE", via="SIP/2.0/UDP 10.0.0.1:5060")
    assert str(bye.uri) == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == ["<sip:bob@10.0.0.2>"]


def test_target_refresh_on_reinvite() -> None:
    d = Dialog.from_uas(invite(), "b1")
    re = parse_message(
        INVITE.replace("CSeq: 10", "CSeq: 12")
        .replace("To: <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=b1")
        .replace("10.0.0.1:5060>", "10.0.0.9:5070>")
        .encode()
    )
    assert d.receive_request(re) is None
    assert str(d.remote_target) == "sip:alice@10.0.0.9:5070"
