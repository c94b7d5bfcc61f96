"""RFC 3261 §17 state machines driven by a fake clock (no sockets)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from voipbin.sip import SipRequest, SipResponse, make_response, parse_message
from voipbin.sip.transaction import (
    ClientTransaction,
    ResponseReceived,
    SendMessage,
    ServerTransaction,
    State,
    TimerConfig,
    TransactionTerminated,
    TransactionTimeout,
)

T = TimerConfig(t1=0.5, t2=4.0, t4=5.0)


def req(method: str = "INVITE", branch: str = "z9hG4bKabc") -> SipRequest:
    msg = parse_message(
        (
            f"{method} sip:bob@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n"
            "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
            "To: <sip:bob@127.0.0.1>\r\n"
            "Call-ID: c1\r\n"
            f"CSeq: 1 {method}\r\n"
            "Contact: <sip:alice@127.0.0.1:5070>\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(msg, SipRequest)
    return msg


def resp(request: SipRequest, status: int) -> SipResponse:
    return make_response(request, status, to_tag="b1")


def run_until(txn, until: float, step: float = 0.01) -> list[tuple[float, object]]:
    """Advance a fake clock, firing timers exactly at their deadlines."""
    out = []
    while True:
        dl = txn.next_deadline()
        if dl is None or dl > until:
            return out
        out.extend((dl, ev) for ev in txn.poll(dl))


def sends(events) -> list[float]:
    return [t for t, ev in events if isinstance(ev, SendMessage)]


def test_client_invite_timer_a_doubles_and_b_times_out() -> None:
    txn = ClientTransaction(req(), timers=T)
    assert isinstance(txn.start(0.0)[0], SendMessage)
    events = run_until(txn, 100)
    # A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 ; B at 32
    assert sends(events) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert any(isinstance(ev, TransactionTimeout) and ev.timer == "B" for _, ev in events)
    assert txn.state is State.TERMINATED


def test_client_invite_no_retransmit_on_tcp() -> None:
    txn = ClientTransaction(req(), reliable=True, timers=T)
    txn.start(0.0)
    events = run_until(txn, 100)
    assert sends(events) == []
    assert [ev.timer for _, ev in events if isinstance(ev, TransactionTimeout)] == ["B"]


def test_client_invite_non_2xx_generates_ack_and_timer_d() -> None:
    r = req()
    txn = ClientTransaction(r, timers=T)
    txn.start(0.0)
    ev = txn.receive_response(resp(r, 180), 0.2)
    assert ev == [ResponseReceived(ev[0].response)] and txn.state is State.PROCEEDING
    assert run_until(txn, 10) == []  # no retransmission while proceeding
    busy = resp(r, 486)
    ev = txn.receive_response(busy, 11)
    ack = ev[0].message
    assert isinstance(ack, SipRequest) and ack.method == "ACK"
    assert ack.via.branch == r.via.branch and ack.cseq.number == 1 and ack.cseq.method == "ACK"
    assert ack.to.tag == "b1"
    assert isinstance(ev[1], ResponseReceived) and txn.state is State.COMPLETED
    # retransmitted 486 is absorbed and re-ACKed
    again = txn.receive_response(busy, 12)
    assert len(again) == 1 and isinstance(again[0], SendMessage)
    events = run_until(txn, 100)
    assert [t for t, e in events if isinstance(e, TransactionTerminated)] == [43.0]  # D = 32 s


def test_client_invite_2xx_terminates() -> None:
    r = req()
    txn = ClientTransaction(r, timers=T)
    txn.start(0)
    ev = txn.receive_response(resp(r, 200), 0.1)
    assert isinstance(ev[0], ResponseReceived) and isinstance(ev[1], TransactionTerminated)


def test_client_non_invite_timer_e_caps_at_t2_and_k() -> None:
    r = req("OPTIONS")
    txn = ClientTransaction(r, timers=T)
    txn.start(0)
    events = run_until(txn, 8)
    assert sends(events) == [0.5, 1.5, 3.5, 7.5]  # intervals 0.5,1,2,4(=T2)
    events = run_until(txn, 100)
    assert sends(events) == [11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert any(isinstance(e, TransactionTimeout) and e.timer == "F" for _, e in events)


def test_client_non_invite_proceeding_and_timer_k() -> None:
    r = req("BYE")
    txn = ClientTransaction(r, timers=T)
    txn.start(0)
    txn.receive_response(resp(r, 100), 0.1)
    assert txn.state is State.PROCEEDING
    assert sends(run_until(txn, 5)) == [0.5, 4.5]  # E: first T1, then T2 while proceeding
    txn.receive_response(resp(r, 200), 5)
    assert txn.state is State.COMPLETED
    assert txn.receive_response(resp(r, 200), 5.5) == []  # absorbed
    events = run_until(txn, 100)
    assert [t for t, e in events if isinstance(e, TransactionTerminated)] == [10.0]  # K = T4


def test_server_invite_error_response_g_h_and_ack_i() -> None:
    r = req()
    txn = ServerTransaction(r, timers=T)
    assert txn.state is State.PROCEEDING
    trying = resp(r, 100)
    assert txn.send_response(trying, 0) == [SendMessage(trying)]
    assert txn.receive_request(r, 0.1) == [SendMessage(trying)]  # retransmitted INVITE
    busy = resp(r, 486)
    txn.send_response(busy, 1)
    assert txn.state is State.COMPLETED
    assert sends(run_until(txn, 9)) == [1.5, 2.5, 4.5, 8.5]  # G: 0.5,1,2,4 (T2 cap)
    ack_req = req("ACK")
    assert txn.receive_request(ack_req, 9) == []
    assert txn.state is State.CONFIRMED
    events = run_until(txn, 100)
    assert [t for t, e in events if isinstance(e, TransactionTerminated)] == [14.0]  # I = T4


def test_server_invite_timer_h_without_ack() -> None:
    r = req()
    txn = ServerTransaction(r, timers=T)
    txn.send_response(resp(r, 480), 0)
    events = run_until(txn, 100)
    assert any(isinstance(e, TransactionTimeout) and e.timer == "H" for _, e in events)
    assert [t for t, e in events if isinstance(e, TransactionTimeout)] == [32.0]


def test_server_invite_2xx_retransmitted_until_ack() -> None:
    r = req()
    txn = ServerTransaction(r, timers=T)
    ok = resp(r, 200)
    txn.send_response(ok, 0)
    assert txn.state is State.ACCEPTED
    assert sends(run_until(txn, 4)) == [0.5, 1.5, 3.5]
    assert txn.receive_request(r, 4) == [SendMessage(ok)]  # INVITE retransmission answered with 2xx
    assert isinstance(txn.ack_2xx_received()[0], TransactionTerminated)


def test_server_non_invite_timer_j_and_retransmission() -> None:
    r = req("BYE")
    txn = ServerTransaction(r, timers=T)
    assert txn.state is State.TRYING
    assert txn.receive_request(r, 0) == []  # nothing sent yet -> nothing to repeat
    ok = resp(r, 200)
    txn.send_response(ok, 1)
    assert txn.state is State.COMPLETED
    assert txn.receive_request(r, 2) == [SendMessage(ok)]
    events = run_until(txn, 100)
    assert [t for t, e in events if isinstance(e, TransactionTerminated)] == [33.0]  # J = 64*T1


def test_server_non_invite_tcp_terminates_at_once() -> None:
    r = req("BYE")
    txn = ServerTransaction(r, reliable=True, timers=T)
    ev = txn.send_response(resp(r, 200), 0)
    assert isinstance(ev[0], SendMessage) and isinstance(ev[-1], TransactionTerminated)


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("resp"), st.sampled_from([100, 180, 200, 202, 401, 486, 500, 603])),
        st.tuples(st.just("tick"), st.floats(0, 40)),
        st.tuples(st.just("req"), st.sampled_from(["same", "ACK"])),
        st.tuples(st.just("ack2xx"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["INVITE", "BYE"]), st.booleans(), st.booleans(), STEPS)
def test_random_event_sequences_keep_machines_consistent(method, reliable, client, steps) -> None:
    """Any order of responses, requests and timer ticks: no exception, sane states, no stray timers."""
    r = req(method)
    now = 0.0
    if client:
        txn = ClientTransaction(r, reliable=reliable, timers=T)
        txn.start(now)
    else:
        txn = ServerTransaction(r, reliable=reliable, timers=T)
    finals = 0
    for kind, arg in steps:
        if kind == "tick":
            now += arg
            events = txn.poll(now)
        elif kind == "resp":
            events = (
                txn.receive_response(resp(r, arg), now) if client else txn.send_response(resp(r, arg), now)
            )
        elif kind == "req":
            events = [] if client else txn.receive_request(req("ACK") if arg == "ACK" else r, now)
        else:
            events = [] if client else txn.ack_2xx_received()
        finals += sum(1 for e in events if isinstance(e, ResponseReceived) and e.response.status >= 200)
        if reliable and kind == "tick":
            assert not any(isinstance(e, SendMessage) for e in events)  # no retransmission on TCP
        if txn.state is State.TERMINATED:
            assert txn.next_deadline() is None
    assert finals <= 1  # the TU sees at most one final response
    if txn.state is not State.TERMINATED:
        assert txn.next_deadline() is not None or txn.state in (State.PROCEEDING, State.TRYING)
