"""The sans-I/O user agent machines driven by a fake clock and handcrafted messages (no sockets).

InviteClient (UAC), InviteServer + DialogUsage through the UserAgent dispatcher (UAS, in-dialog),
RequestClient (non-INVITE): auth retry, CANCEL rules, late/forked 2xx, 2xx retransmission until
ACK, glare, 481, CSeq order and the RFC 3261 timers. Every assertion looks at real message
contents: method, status, CSeq, branch, tags.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from voipbin.sip import DigestAuthenticator, DigestCredentials, build_sdp
from voipbin.sip.dialog_usage import DialogConfirmed, DialogEnded, DialogUsage, InDialogRequest
from voipbin.sip.digest import AuthResult
from voipbin.sip.invite_client import HopNeeded, InviteClient, InviteFinished, InviteProvisional
from voipbin.sip.invite_server import InviteCancelled
from voipbin.sip.message import SipRequest, SipResponse, make_response, parse_message
from voipbin.sip.non_invite import RequestClient
from voipbin.sip.transaction import TimerConfig
from voipbin.sip.ua_base import LocalParty, RequestCompleted, Send, Source
from voipbin.sip.uri import NameAddr, SipUri
from voipbin.sip.user_agent import NewInvite, NewRequest, UserAgent

T = TimerConfig(t1=0.5, t2=4.0, t4=5.0)
T1 = T.t1
LOCAL = LocalParty("10.0.0.1", 5060, "voipbin-test")
PEER = Source("10.0.0.2", 5080, "udp")
OFFER = build_sdp("10.0.0.1", 30000)
ANSWER = build_sdp("10.0.0.2", 40000)
REALM = "pbx.test"


# --- helpers ---
def sent(events: Iterable[object]) -> list[SipRequest | SipResponse]:
    return [ev.message for ev in events if isinstance(ev, Send)]


def requests(events: Iterable[object]) -> list[SipRequest]:
    return [m for m in sent(events) if isinstance(m, SipRequest)]


def responses(events: Iterable[object]) -> list[SipResponse]:
    return [m for m in sent(events) if isinstance(m, SipResponse)]


def of(events: Iterable[object], kind: type) -> list:
    return [ev for ev in events if isinstance(ev, kind)]


def reparse(msg: SipRequest | SipResponse) -> SipRequest | SipResponse:
    """What the peer would put on the wire (and we would parse)."""
    return parse_message(msg.serialize())


def reply(req: SipRequest, status: int, tag: str | None = "b1", **kw) -> SipResponse:
    headers = list(kw.pop("headers", []))
    if 200 <= status < 300 and req.method == "INVITE":
        headers.append(("Contact", "<sip:bob@10.0.0.2:5080>"))
        kw.setdefault("body", ANSWER)
        kw.setdefault("content_type", "application/sdp")
    resp = reparse(make_response(req, status, to_tag=tag, headers=headers, **kw))
    assert isinstance(resp, SipResponse)
    return resp


def run_timers(machine, until: float) -> list[tuple[float, object]]:
    """Fire a machine's deadlines in order up to ``until`` (fake clock)."""
    out: list[tuple[float, object]] = []
    while True:
        dl = machine.next_deadline()
        if dl is None or dl > until:
            return out
        out.extend((dl, ev) for ev in machine.handle_timer(dl))


def new_client(**kw) -> tuple[InviteClient, SipRequest]:
    frm = NameAddr.parse("<sip:alice@10.0.0.1>")
    frm.params["tag"] = "a1"
    client = InviteClient(
        LOCAL,
        request_uri=SipUri.parse("sip:bob@10.0.0.2:5080"),
        from_addr=frm,
        to_addr=NameAddr.parse("<sip:bob@10.0.0.2>"),
        call_id="call-1",
        sdp=OFFER,
        dest=PEER,
        timers=T,
        **kw,
    )
    (invite,) = requests(client.start(0.0))
    return client, invite


AUTH = DigestAuthenticator(REALM, secret=b"k" * 32)


def challenge(
    req: SipRequest, status: int = 401, *, stale: bool = False, nonce: str | None = "n1"
) -> SipResponse:
    """A 401/407; ``nonce=None``: a real one from our own server-side authenticator."""
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    if nonce is None:
        value = AUTH.challenge(stale=stale)
    else:
        value = f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth"'
        if stale:
            value += ", stale=true"
    return reply(req, status, headers=[(name, value)])


# --- InviteClient: auth ---
@pytest.mark.parametrize(("status", "header"), [(401, "Authorization"), (407, "Proxy-Authorization")])
def test_challenge_is_answered_once_with_new_cseq_and_branch(status: int, header: str) -> None:
    client, inv1 = new_client(credentials=("alice", "secret"))
    assert inv1.cseq.number == 1 and inv1.headers.get(header) is None
    events = client.receive_response(challenge(inv1, status, nonce=None), 0.1)
    ack, inv2 = requests(events)
    assert (ack.method, ack.cseq.number, ack.cseq.method) == ("ACK", 1, "ACK")
    assert ack.via.branch == inv1.via.branch and ack.to.tag == "b1"  # non-2xx ACK: same transaction
    assert (inv2.method, inv2.cseq.number) == ("INVITE", 2)
    assert inv2.via.branch != inv1.via.branch
    assert inv2.call_id == inv1.call_id and inv2.from_.tag == inv1.from_.tag == "a1"
    assert inv2.to.tag is None
    cred = DigestCredentials.parse(inv2.headers.get(header) or "")
    assert (cred.username, cred.realm, cred.uri, cred.qop) == ("alice", REALM, str(inv2.uri), "auth")
    assert AUTH.verify(cred, "INVITE", password="secret") is AuthResult.OK
    assert not of(events, InviteFinished)
    events = client.receive_response(reply(inv2, 200), 0.2)
    (ack2,) = requests(events)
    assert (ack2.method, ack2.cseq.number, ack2.to.tag) == ("ACK", 2, "b1")
    assert ack2.via.branch != inv2.via.branch  # 2xx ACK is its own transaction
    (done,) = of(events, InviteFinished)
    assert done.status == 200 and done.usage is not None and done.usage.dialog.remote_tag == "b1"


def test_second_challenge_for_the_same_realm_fails_instead_of_looping() -> None:
    client, inv1 = new_client(credentials=("alice", "wrong"))
    (_, inv2) = requests(client.receive_response(challenge(inv1, nonce="n1"), 0.1))
    events = client.receive_response(challenge(inv2, nonce="n2"), 0.2)
    assert [r.method for r in requests(events)] == ["ACK"]  # no third INVITE
    (done,) = of(events, InviteFinished)
    assert done.status == 401 and done.usage is None and done.response is not None


def test_stale_nonce_is_retried_then_a_refusal_ends_it() -> None:
    client, inv1 = new_client(credentials=("alice", "secret"))
    (_, inv2) = requests(client.receive_response(challenge(inv1, nonce="n1"), 0.1))
    (_, inv3) = requests(client.receive_response(challenge(inv2, nonce="n2", stale=True), 0.2))
    assert inv3.cseq.number == 3
    assert DigestCredentials.parse(inv3.headers.get("Authorization") or "").nonce == "n2"
    events = client.receive_response(challenge(inv3, nonce="n3"), 0.3)
    assert [r.method for r in requests(events)] == ["ACK"]
    assert of(events, InviteFinished)[0].status == 401


def test_challenge_without_credentials_is_the_result() -> None:
    client, inv = new_client()
    (done,) = of(client.receive_response(challenge(inv, 407), 0.1), InviteFinished)
    assert done.status == 407


# --- InviteClient: CANCEL ---
def test_cancel_before_provisional_waits_for_one() -> None:
    client, inv = new_client()
    assert client.cancel(0.1) == []  # RFC 3261 §9.1: no CANCEL before a provisional
    events = client.receive_response(reply(inv, 180), 0.2)
    (cancel,) = requests(events)
    assert not of(events, InviteProvisional)  # we are cancelling: not reported
    assert (cancel.method, cancel.cseq.number, cancel.cseq.method) == ("CANCEL", 1, "CANCEL")
    assert cancel.via.branch == inv.via.branch and cancel.to.tag is None
    assert cancel.call_id == inv.call_id and str(cancel.uri) == str(inv.uri)
    assert requests(client.receive_response(reply(cancel, 200), 0.25)) == []
    events = client.receive_response(reply(inv, 487), 0.3)
    (ack,) = requests(events)
    assert (ack.method, ack.via.branch, ack.to.tag) == ("ACK", inv.via.branch, "b1")
    assert of(events, InviteFinished)[0].status == 487


def test_cancel_before_provisional_then_timer_b() -> None:
    client, _ = new_client()
    client.cancel(0.1)
    fired = run_timers(client, 64 * T1)
    methods = [m.method for _, ev in fired for m in requests([ev])]
    assert methods and set(methods) == {"INVITE"}  # Timer A retransmissions, never a CANCEL
    finished = [(t, ev) for t, ev in fired if isinstance(ev, InviteFinished)]
    assert [(t, ev.status) for t, ev in finished] == [(64 * T1, 408)]


def test_cancel_after_provisional_is_immediate() -> None:
    client, inv = new_client()
    events = client.receive_response(reply(inv, 180), 0.1)
    assert of(events, InviteProvisional)[0].response.status == 180
    (cancel,) = requests(client.cancel(0.2))
    assert cancel.method == "CANCEL" and cancel.via.branch == inv.via.branch
    assert requests(client.cancel(0.3)) == []  # once


def test_cancel_racing_a_200_acks_and_byes() -> None:
    client, inv = new_client()
    client.receive_response(reply(inv, 180), 0.1)
    (cancel,) = requests(client.cancel(0.2))
    events = client.receive_response(reply(inv, 200, tag="late"), 0.3)
    ack, bye = requests(events)
    assert (ack.method, ack.cseq.number, ack.to.tag) == ("ACK", 1, "late")
    assert (bye.method, bye.cseq.number, bye.to.tag, bye.from_.tag) == ("BYE", 2, "late", "a1")
    assert str(bye.uri) == "sip:bob@10.0.0.2:5080"  # the 2xx's Contact
    (done,) = of(events, InviteFinished)
    assert done.status == 487 and done.usage is None
    assert requests(client.receive_response(reply(cancel, 200), 0.35)) == []
    assert of(client.receive_response(reply(bye, 200, tag=None), 0.4), InviteFinished) == []


def test_no_final_response_after_cancel_ends_with_408() -> None:
    client, inv = new_client()
    client.receive_response(reply(inv, 180), 0.1)
    client.cancel(1.0)
    finished = [(t, ev.status) for t, ev in run_timers(client, 100) if isinstance(ev, InviteFinished)]
    assert finished == [(1.0 + 64 * T1, 408)]


def test_ring_timeout_cancels_a_ringing_callee() -> None:
    client, inv = new_client(ring_timeout=5.0)
    client.receive_response(reply(inv, 180), 0.1)
    fired = run_timers(client, 5.0)
    assert [(t, m.method) for t, ev in fired for m in requests([ev])] == [(5.0, "CANCEL")]
    assert of(client.receive_response(reply(inv, 487), 5.1), InviteFinished)[0].status == 487


def test_ring_timeout_without_answer_gives_408_then_late_200_is_hung_up() -> None:
    client, inv = new_client(ring_timeout=0.3)
    fired = run_timers(client, 0.3)
    assert [ev.status for _, ev in fired if isinstance(ev, InviteFinished)] == [408]
    events = client.receive_response(reply(inv, 200, tag="late"), 1.0)
    assert [(r.method, r.to.tag) for r in requests(events)] == [("ACK", "late"), ("BYE", "late")]
    assert not of(events, InviteFinished)  # the result was already given


# --- InviteClient: 2xx handling, timers ---
def test_2xx_retransmission_is_reacked_and_a_second_fork_is_hung_up() -> None:
    client, inv = new_client()
    ok = reply(inv, 200, tag="f1")
    (ack,) = requests(client.receive_response(ok, 0.1))
    (again,) = requests(client.receive_response(reply(inv, 200, tag="f1"), 0.6))
    assert again.serialize() == ack.serialize()  # the same ACK, re-sent
    events = client.receive_response(reply(inv, 200, tag="f2"), 0.7)
    assert [(r.method, r.to.tag) for r in requests(events)] == [("ACK", "f2"), ("BYE", "f2")]
    assert not of(events, InviteFinished)
    assert not client.finished  # lingers 64*T1 for more forks
    run_timers(client, 0.7 + 64 * T1)  # the fork's BYE times out (Timer F) and the linger ends
    assert client.finished


def test_timer_a_doubles_and_timer_b_gives_408() -> None:
    client, _ = new_client()
    fired = run_timers(client, 100)
    sends = [t for t, ev in fired if isinstance(ev, Send)]
    assert sends[:4] == [T1, 3 * T1, 7 * T1, 15 * T1]  # intervals T1, 2T1, 4T1, 8T1
    assert [(t, ev.status) for t, ev in fired if isinstance(ev, InviteFinished)] == [(64 * T1, 408)]
    assert client.finished


def test_transport_error_gives_503() -> None:
    client, _ = new_client()
    assert of(client.transport_error(PEER, 0.1), InviteFinished)[0].status == 503


def test_provisional_stops_timer_a() -> None:
    client, inv = new_client()
    client.receive_response(reply(inv, 100, tag=None), 0.1)
    assert client.next_deadline() is None  # proceeding: no retransmission, no Timer B


def test_2xx_with_a_host_name_contact_asks_for_resolution() -> None:
    client, inv = new_client()
    ok = reparse(
        make_response(
            inv, 200, to_tag="b1", headers=[("Contact", "<sip:bob@gw.example.net:5090>")], body=ANSWER,
            content_type="application/sdp",
        )
    )  # fmt: skip
    events = client.receive_response(ok, 0.1)
    (need,) = of(events, HopNeeded)
    assert need.uri.host == "gw.example.net" and requests(events) == []
    gw = Source("192.0.2.9", 5090, "udp")
    events = client.hop_resolved(gw, 0.2)
    (ack,) = [ev for ev in events if isinstance(ev, Send)]
    assert ack.dest == gw and ack.message.method == "ACK"  # type: ignore[union-attr]
    done = of(events, InviteFinished)[0]
    assert done.usage is not None and done.usage.peer == gw


# --- UAS through the dispatcher ---
def peer_request(
    method: str,
    *,
    branch: str,
    cseq: int,
    call_id: str = "in-1",
    to_tag: str | None = None,
    body: bytes = b"",
    extra: str = "",
) -> bytes:
    to = "<sip:bob@10.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    ct = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"{method} sip:bob@10.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.2:5080;branch={branch}\r\n"
        f"From: <sip:alice@10.0.0.2>;tag=a1\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\nContact: <sip:alice@10.0.0.2:5080>\r\n{extra}{ct}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def ua_events(ua: UserAgent) -> list[object]:
    return ua.take_events()


def ring_in(ua: UserAgent, now: float = 0.0) -> NewInvite:
    ua.receive_datagram(peer_request("INVITE", branch="z9hG4bKinv1", cseq=1, body=OFFER), PEER, now)
    events = ua.take_events()
    (trying,) = responses(events)
    assert (trying.status, trying.cseq.method, trying.to.tag) == (100, "INVITE", None)
    (new,) = of(events, NewInvite)
    return new


def answered(ua: UserAgent, now: float = 0.0) -> tuple[DialogUsage, SipResponse]:
    new = ring_in(ua, now)
    usage = ua.answer(new.server, ANSWER, now=now)
    (ok,) = responses(ua.take_events())
    return usage, ok


def ack_for(ok: SipResponse, branch: str = "z9hG4bKack1") -> bytes:
    return (
        f"ACK sip:voipbin@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5080;branch={branch}\r\n"
        f"From: <sip:alice@10.0.0.2>;tag=a1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: {ok.call_id}\r\n"
        f"CSeq: {ok.cseq.number} ACK\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def run_ua(ua: UserAgent, until: float) -> list[tuple[float, object]]:
    out: list[tuple[float, object]] = []
    while (dl := ua.get_timer()) is not None and dl <= until:
        ua.handle_timer(dl)
        out.extend((dl, ev) for ev in ua.take_events())
    return out


def test_2xx_is_retransmitted_until_the_ack() -> None:
    ua = UserAgent(LOCAL, timers=T)
    usage, ok = answered(ua)
    assert ok.status == 200 and ok.to.tag == usage.dialog.local_tag and ok.body == ANSWER
    assert ok.headers.get("Contact") == "<sip:voipbin@10.0.0.1:5060>"
    fired = run_ua(ua, 3.6)
    retrans = [(t, m) for t, ev in fired for m in responses([ev])]
    assert [t for t, _ in retrans] == [T1, 3 * T1, 7 * T1]  # Timer G: T1, 2T1, 4T1 (capped at T2)
    assert all(m.status == 200 and m.to.tag == ok.to.tag for _, m in retrans)
    ua.receive_datagram(ack_for(ok), PEER, 3.7)
    assert of(ua.take_events(), DialogConfirmed)[0].usage is usage
    assert [ev for _, ev in run_ua(ua, 100) if isinstance(ev, Send)] == []  # silence after the ACK
    assert usage.active and ua.dialogs[usage.id] is usage


def test_no_ack_hangs_up_with_bye_after_64_t1() -> None:
    ua = UserAgent(LOCAL, timers=T)
    usage, ok = answered(ua)
    fired = run_ua(ua, 64 * T1)
    (bye,) = [m for _, ev in fired for m in requests([ev])]
    assert (bye.method, bye.call_id) == ("BYE", "in-1")
    assert bye.from_.tag == ok.to.tag and bye.to.tag == "a1"  # our tag is From now
    assert str(bye.uri) == "sip:alice@10.0.0.2:5080"  # the INVITE's Contact
    assert usage.id not in ua.dialogs
    ua.receive_message(reply(bye, 200, tag=None), PEER, 64 * T1 + 0.1)
    (ended,) = of(ua.take_events(), DialogEnded)
    assert ended.reason == "local_bye"


def test_cancel_gets_200_and_the_invite_487() -> None:
    ua = UserAgent(LOCAL, timers=T)
    ring_in(ua)
    ua.receive_datagram(peer_request("CANCEL", branch="z9hG4bKinv1", cseq=1), PEER, 1.0)
    events = ua.take_events()
    ok, terminated = responses(events)
    assert (ok.status, ok.cseq.method, ok.cseq.number) == (200, "CANCEL", 1)
    assert (terminated.status, terminated.cseq.method) == (487, "INVITE")
    assert of(events, InviteCancelled)
    # the ACK for the 487 (same branch as the INVITE) is absorbed; no retransmissions after it
    ua.receive_datagram(
        ack_for(terminated, branch="z9hG4bKinv1").replace(b"sip:voipbin@10.0.0.1:5060", b"sip:bob@10.0.0.1"),
        PEER,
        1.1,
    )
    assert ua.take_events() == []
    assert [ev for _, ev in run_ua(ua, 100) if isinstance(ev, Send)] == []


def test_cancel_for_an_unknown_invite_gets_481() -> None:
    ua = UserAgent(LOCAL, timers=T)
    ua.receive_datagram(peer_request("CANCEL", branch="z9hG4bKnone", cseq=1), PEER, 0.0)
    assert [(r.status, r.cseq.method) for r in responses(ua.take_events())] == [(481, "CANCEL")]


def test_rejected_invite_is_retransmitted_until_ack_then_timer_h() -> None:
    ua = UserAgent(LOCAL, timers=T)
    new = ring_in(ua)
    ua.respond(new.server.server, 486, now=0.0)
    (busy,) = responses(ua.take_events())
    assert busy.status == 486 and busy.to.tag
    fired = run_ua(ua, 100)
    times = [t for t, ev in fired if isinstance(ev, Send)]
    assert times[:3] == [T1, 3 * T1, 7 * T1] and max(times) < 64 * T1  # Timer G until Timer H
    assert ua.get_timer() is None


def test_retransmitted_invite_is_absorbed() -> None:
    ua = UserAgent(LOCAL, timers=T)
    new = ring_in(ua)
    ua.feed(new.server, new.server.ringing(now=0.1))  # act on the machine, hand its events over
    (ringing,) = responses(ua.take_events())
    assert ringing.status == 180
    ua.receive_datagram(peer_request("INVITE", branch="z9hG4bKinv1", cseq=1, body=OFFER), PEER, 0.5)
    events = ua.take_events()
    assert not of(events, NewInvite)
    assert [r.status for r in responses(events)] == [180]  # the last response, again


def test_bye_for_an_unknown_dialog_gets_481() -> None:
    ua = UserAgent(LOCAL, timers=T)
    ua.receive_datagram(peer_request("BYE", branch="z9hG4bKb1", cseq=2, to_tag="nope"), PEER, 0.0)
    (resp,) = responses(ua.take_events())
    assert (resp.status, resp.cseq.method, resp.cseq.number, resp.to.tag) == (481, "BYE", 2, "nope")
    ua.receive_datagram(peer_request("INFO", branch="z9hG4bKi1", cseq=2), PEER, 0.0)
    assert [r.status for r in responses(ua.take_events())] == [481]  # out-of-dialog INFO too


def reinvite_from_peer(branch: str, cseq: int, to_tag: str) -> bytes:
    return peer_request("INVITE", branch=branch, cseq=cseq, to_tag=to_tag, body=ANSWER)


def confirmed(ua: UserAgent) -> tuple[DialogUsage, SipResponse]:
    usage, ok = answered(ua)
    ua.receive_datagram(ack_for(ok), PEER, 0.1)
    ua.take_events()
    return usage, ok


def test_remote_bye_ends_the_dialog_and_retransmissions_are_absorbed() -> None:
    ua = UserAgent(LOCAL, timers=T)
    usage, _ = confirmed(ua)
    bye = peer_request("BYE", branch="z9hG4bKbye1", cseq=2, to_tag=usage.dialog.local_tag)
    ua.receive_datagram(bye, PEER, 1.0)
    events = ua.take_events()
    assert [(r.status, r.cseq.method) for r in responses(events)] == [(200, "BYE")]
    assert [e.reason for e in of(events, DialogEnded)] == ["remote_bye"]
    assert of(events, InDialogRequest)[0].server.request.method == "BYE"
    assert usage.id not in ua.dialogs
    ua.receive_datagram(bye, PEER, 1.5)
    events = ua.take_events()
    assert [r.status for r in responses(events)] == [200] and not of(events, DialogEnded)


def test_cseq_out_of_order_gets_500() -> None:
    ua = UserAgent(LOCAL, timers=T)
    usage, _ = confirmed(ua)
    tag = usage.dialog.local_tag
    ua.receive_datagram(peer_request("INFO", branch="z9hG4bKi5", cseq=5, to_tag=tag), PEER, 1.0)
    (info,) = of(ua.take_events(), InDialogRequest)
    ua.respond(info.server, 200, now=1.0)
    assert [r.status for r in responses(ua.take_events())] == [200]
    ua.receive_datagram(peer_request("INFO", branch="z9hG4bKi4", cseq=4, to_tag=tag), PEER, 1.1)
    events = ua.take_events()
    assert [(r.status, r.reason, r.cseq.number) for r in responses(events)] == [(500, "CSeq out of order", 4)]
    assert not of(events, InDialogRequest)


def test_glare_incoming_reinvite_while_ours_is_pending_gets_491() -> None:
    ua = UserAgent(LOCAL, timers=T)
    usage, _ = confirmed(ua)
    tag = usage.dialog.local_tag
    ua.feed(usage, usage.reinvite(OFFER, tag="ours", now=1.0))
    (ours,) = requests(ua.take_events())
    assert (ours.method, ours.to.tag, ours.from_.tag) == ("INVITE", "a1", tag)
    ua.receive_datagram(
        peer_request("INVITE", branch="z9hG4bKre1", cseq=2, to_tag=tag, body=ANSWER), PEER, 1.1
    )
    events = ua.take_events()
    assert [(r.status, r.cseq.number) for r in responses(events)] == [(100, 2), (491, 2)]
    assert not of(events, InDialogRequest)
    # our re-INVITE's 200: ACKed, the session updated; then the peer may re-INVITE again
    ua.receive_message(reply(ours, 200, tag="a1"), PEER, 1.2)
    events = ua.take_events()
    (ack,) = requests(events)
    assert (ack.method, ack.cseq.number) == ("ACK", ours.cseq.number)
    assert of(events, RequestCompleted)[0].response.status == 200  # type: ignore[union-attr]
    ua.receive_datagram(
        peer_request("INVITE", branch="z9hG4bKre2", cseq=3, to_tag=tag, body=ANSWER), PEER, 1.3
    )
    assert of(ua.take_events(), InDialogRequest)[0].server.request.cseq.number == 3


def test_our_reinvite_while_the_peer_s_is_unanswered_is_refused_locally() -> None:
    ua = UserAgent(LOCAL, timers=T)
    usage, _ = confirmed(ua)
    tag = usage.dialog.local_tag
    ua.receive_datagram(
        peer_request("INVITE", branch="z9hG4bKre1", cseq=2, to_tag=tag, body=ANSWER), PEER, 1.0
    )
    (theirs,) = of(ua.take_events(), InDialogRequest)
    events = usage.reinvite(OFFER, tag="mine", now=1.1)
    assert requests(events) == []  # §14.1: not while an INVITE transaction is in progress
    (done,) = of(events, RequestCompleted)
    assert done.tag == "mine" and done.response is not None and done.response.status == 491
    # a second re-INVITE from the peer before we answered the first: 500 + Retry-After (§14.2)
    ua.receive_datagram(
        peer_request("INVITE", branch="z9hG4bKre2", cseq=3, to_tag=tag, body=ANSWER), PEER, 1.2
    )
    (_trying, err) = responses(ua.take_events())
    assert err.status == 500 and 0 <= int(err.headers.get("Retry-After") or "-1") <= 10
    ua.feed(usage, usage.answer_reinvite(theirs.server, None, now=1.3))
    (ok,) = responses(ua.take_events())
    assert (ok.status, ok.cseq.number, ok.body) == (200, 2, ANSWER)


def test_in_dialog_options_and_unknown_methods() -> None:
    ua = UserAgent(LOCAL, timers=T)
    usage, _ = confirmed(ua)
    tag = usage.dialog.local_tag
    ua.receive_datagram(peer_request("OPTIONS", branch="z9hG4bKo1", cseq=2, to_tag=tag), PEER, 1.0)
    ua.receive_datagram(peer_request("REFER", branch="z9hG4bKr1", cseq=3, to_tag=tag), PEER, 1.0)
    ua.receive_datagram(peer_request("FOO", branch="z9hG4bKf1", cseq=4, to_tag=tag), PEER, 1.0)
    assert [r.status for r in responses(ua.take_events())] == [200, 405, 501]


def test_out_of_dialog_requests_reach_the_application() -> None:
    ua = UserAgent(LOCAL, timers=T)
    ua.receive_datagram(peer_request("MESSAGE", branch="z9hG4bKm1", cseq=1, body=b"hi"), PEER, 0.0)
    (new,) = of(ua.take_events(), NewRequest)
    ua.respond(new.server, 202, now=0.0)
    assert [r.status for r in responses(ua.take_events())] == [202]
    ua.receive_datagram(
        peer_request("INVITE", branch="z9hG4bKr", cseq=1, extra="Require: 100rel\r\n"), PEER, 0
    )
    (bad,) = responses(ua.take_events())
    assert bad.status == 420 and bad.headers.get("Unsupported") == "100rel"


def test_one_timer_is_the_earliest_deadline_of_all_machines() -> None:
    ua = UserAgent(LOCAL, timers=T)
    frm = NameAddr.parse("<sip:alice@10.0.0.1>;tag=a1")
    for start in (0.3, 0.1, 0.2):
        c = RequestClient(
            LOCAL, method="OPTIONS", request_uri=SipUri.parse("sip:x@10.0.0.2"), from_addr=frm,
            to_uri="<sip:x@10.0.0.2>", call_id=f"o{start}", dest=PEER, timers=T,
        )  # fmt: skip
        ua.add(c, c.start(start))
    assert ua.get_timer() == pytest.approx(0.1 + T1)
    ua.take_events()
    ua.handle_timer(0.1 + T1)
    assert len(requests(ua.take_events())) == 1  # only the due one retransmits
    assert ua.get_timer() == pytest.approx(0.2 + T1)


# --- RequestClient ---
def test_request_timer_e_and_f() -> None:
    frm = NameAddr.parse("<sip:alice@10.0.0.1>;tag=a1")
    c = RequestClient(
        LOCAL, method="OPTIONS", request_uri=SipUri.parse("sip:x@10.0.0.2"), from_addr=frm,
        to_uri="<sip:x@10.0.0.2>", call_id="o1", dest=PEER, timers=T, tag="t",
    )  # fmt: skip
    assert [r.method for r in requests(c.start(0.0))] == ["OPTIONS"]
    fired = run_timers(c, 100)
    sends = [t for t, ev in fired if isinstance(ev, Send)]
    assert sends[:4] == [T1, 3 * T1, 7 * T1, 7 * T1 + T.t2]  # E doubles up to T2
    (done,) = [ev for t, ev in fired if isinstance(ev, RequestCompleted)]
    assert done.tag == "t" and done.response is not None
    assert (done.response.status, done.response.cseq.number) == (408, 1)
    assert [t for t, ev in fired if isinstance(ev, RequestCompleted)] == [64 * T1]
    assert c.finished


def test_request_auth_retry_then_refusal() -> None:
    frm = NameAddr.parse("<sip:alice@10.0.0.1>;tag=a1")
    c = RequestClient(
        LOCAL, method="REGISTER", request_uri=SipUri.parse("sip:10.0.0.2"), from_addr=frm,
        to_uri="<sip:alice@10.0.0.2>", call_id="r1", dest=PEER, cseq=7, credentials=("alice", "pw"),
        timers=T,
    )  # fmt: skip
    (r1,) = requests(c.start(0.0))
    (r2,) = requests(c.receive_response(challenge(r1, nonce="n1"), 0.1))
    assert r2.cseq.number == 8 and r2.headers.get("Authorization")
    assert requests(c.receive_response(challenge(r1, nonce="n1"), 0.15)) == []  # late copy: ignored
    (done,) = of(c.receive_response(challenge(r2, nonce="n2"), 0.2), RequestCompleted)
    assert done.response is not None and (done.response.status, done.response.cseq.number) == (401, 8)


def test_requests_on_an_ended_dialog_are_refused_locally() -> None:
    ua = UserAgent(LOCAL, timers=T)
    usage, _ = confirmed(ua)
    ua.receive_datagram(
        peer_request("BYE", branch="z9hG4bKbye9", cseq=2, to_tag=usage.dialog.local_tag), PEER, 1
    )
    ua.take_events()
    events = usage.request("INFO", body=b"Signal=1", tag="info", now=2.0)
    assert requests(events) == []
    (done,) = of(events, RequestCompleted)
    assert done.response is not None and (done.response.status, done.response.cseq.method) == (481, "INFO")
    assert of(usage.bye(tag="bye", now=2.0), RequestCompleted)[0].response is None  # already ended


def test_delayed_offer_answer_arrives_in_the_ack() -> None:
    ua = UserAgent(LOCAL, timers=T)
    ua.receive_datagram(peer_request("INVITE", branch="z9hG4bKlate", cseq=1), PEER, 0.0)
    (new,) = of(ua.take_events(), NewInvite)
    usage = ua.answer(new.server, OFFER, now=0.0)  # no offer came: our SDP is the offer
    (ok,) = responses(ua.take_events())
    assert ok.body == OFFER and usage.media is None
    ua.receive_datagram(ack_for(ok)[: -len(b"Content-Length: 0\r\n\r\n")] + (
        f"Content-Type: application/sdp\r\nContent-Length: {len(ANSWER)}\r\n\r\n".encode() + ANSWER
    ), PEER, 0.1)  # fmt: skip
    assert of(ua.take_events(), DialogConfirmed)
    assert usage.remote_sdp == ANSWER and usage.media is not None and usage.media.remote_port == 40000
