"""The UAC side of one outgoing call attempt (RFC 3261 §13.2, §9.1, §22) as a sans-I/O machine.

:class:`InviteClient` sends the INVITE and reports :class:`InviteProvisional` for 1xx and exactly
one :class:`InviteFinished` (status, reason, response, and the new
:class:`~voipbin.sip.dialog_usage.DialogUsage` on success). It handles:

- 401/407: re-sent with digest credentials (CSeq + 1, new branch) under the
  :class:`~voipbin.sip.digest.DigestClient` policy: each realm once, again only for ``stale=true``;
  a refused password ends with the 401/407.
- CANCEL (:meth:`cancel`): only after a provisional response (§9.1). Requested earlier, it is
  deferred until one arrives or the INVITE times out (Timer B -> 408). The final response is then
  normally 487; if none comes within 64*T1 of the CANCEL the attempt ends with 408.
- a ring timeout (``ring_timeout``): CANCEL if the callee is ringing, else give up with 408 (a
  provisional arriving later is CANCELled).
- 2xx: dialog + ACK (to the next hop; :class:`HopNeeded` asks the I/O shell to resolve a host
  name, answered with :meth:`hop_resolved`). Retransmitted 2xx are re-ACKed; a 2xx from another
  fork, or one arriving after we cancelled / gave up, is ACKed and hung up with BYE (§13.2.2.4,
  §15). The machine lingers 64*T1 after the first 2xx to catch those.
- Timer B (408), transport failure (503), a 2xx without tags (502).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .dialog import Dialog
from .dialog_usage import DialogUsage
from .digest import DigestClient
from .errors import SipParseError
from .message import Headers, SipRequest, SipResponse, new_branch
from .transaction import (
    ClientTransaction,
    ResponseReceived,
    State,
    TimerConfig,
    TransactionTerminated,
    TransactionTimeout,
)
from .transaction import Event as TxnEvent
from .ua_base import Credentials, LocalParty, Send, Source, hop_transport, literal_hop, wire
from .uri import NameAddr, SipUri


@dataclass(frozen=True, slots=True)
class InviteProvisional:
    client: InviteClient
    response: SipResponse


@dataclass(frozen=True, slots=True)
class InviteFinished:
    client: InviteClient
    status: int
    reason: str
    response: SipResponse | None = None
    usage: DialogUsage | None = None  # set iff the call was established


@dataclass(frozen=True, slots=True)
class HopNeeded:
    """Resolve ``uri`` (a host name) and call :meth:`InviteClient.hop_resolved`."""

    client: InviteClient
    uri: SipUri
    transport: str


class _Txn:
    __slots__ = ("dest", "txn")

    def __init__(self, txn: ClientTransaction, dest: Source) -> None:
        self.txn = txn
        self.dest = dest


class InviteClient:
    def __init__(
        self,
        local: LocalParty,
        *,
        request_uri: SipUri,
        from_addr: NameAddr,
        to_addr: NameAddr,
        call_id: str,
        sdp: bytes,
        dest: Source,
        credentials: Credentials | None = None,
        headers: Sequence[tuple[str, str]] = (),
        ring_timeout: float | None = None,
        timers: TimerConfig = TimerConfig(),
    ) -> None:
        if not from_addr.tag:
            raise ValueError("from_addr needs a tag")
        self.local = local
        self.request_uri = request_uri
        self.from_header = str(from_addr)
        self.to_header = str(to_addr)
        self.call_id = call_id
        self.sdp = sdp
        self.dest = dest
        self.transport = dest.transport
        self.auth = DigestClient(*credentials) if credentials else None
        self.extra_headers = list(headers)
        self.ring_timeout = ring_timeout
        self.timers = timers
        self.owner: object = None  # the I/O shell's OutgoingInvite
        self.cseq = 1
        self.request: SipRequest | None = None  # the current INVITE
        self.provisional: SipResponse | None = None  # last 1xx to the current INVITE
        self.cancel_requested = False
        self.cancel_sent = False
        self.outcome: InviteFinished | None = None
        self._txns: dict[tuple[str, str], _Txn] = {}
        self._invites: dict[int, SipRequest] = {}  # CSeq -> INVITE (auth retries)
        self._acks: dict[str, Send] = {}  # To tag -> our ACK for that 2xx
        self._hop_wait: tuple[SipResponse, Dialog, str] | None = None
        self._ring_deadline: float | None = None
        self._cancel_deadline: float | None = None
        self._linger_deadline: float | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def finished(self) -> bool:
        return (
            self.outcome is not None
            and not self._txns
            and self._linger_deadline is None
            and self._hop_wait is None
        )

    def next_deadline(self) -> float | None:
        best: float | None = None
        for t in self._txns.values():
            dl = t.txn.next_deadline()
            if dl is not None and (best is None or dl < best):
                best = dl
        for dl in (self._ring_deadline, self._cancel_deadline, self._linger_deadline):
            if dl is not None and (best is None or dl < best):
                best = dl
        return best

    # --- sending ---
    def start(self, now: float) -> list[object]:
        if self.ring_timeout is not None:
            self._ring_deadline = now + self.ring_timeout
        return self._send_invite(now)

    def _send_invite(self, now: float) -> list[object]:
        local = self.local
        h = Headers()
        h.add("Via", f"{local.via(self.transport)};branch={new_branch()}")
        h.add("Max-Forwards", "70")
        h.add("From", self.from_header)
        h.add("To", self.to_header)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self.cseq} INVITE")
        h.add("Contact", local.contact(self.transport))
        for name, value in (local.ua_header, *(self.auth.headers if self.auth else ()), *self.extra_headers):
            h.add(name, value)
        if self.sdp:
            h.add("Content-Type", "application/sdp")
        req = SipRequest(headers=h, body=self.sdp, method="INVITE", uri=self.request_uri)
        self.request = req
        self._invites[self.cseq] = req
        self.provisional = None
        return self._start_txn(req, self.dest, now)

    def _start_txn(self, req: SipRequest, dest: Source, now: float) -> list[object]:
        txn = ClientTransaction(req, reliable=dest.transport == "tcp", timers=self.timers)
        self._txns[txn.key] = _Txn(txn, dest)
        out: list[object] = []
        return self._txn_events(self._txns[txn.key], txn.start(now), now, out)

    def _send_cancel(self, now: float) -> list[object]:
        inv = self.request
        if self.cancel_sent or inv is None:
            return []
        self.cancel_sent = True
        h = Headers()
        h.add("Via", inv.headers.get_all("Via")[0])
        for r in inv.headers.get_all("Route"):
            h.add("Route", r)
        h.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            h.add(name, inv.headers.get(name) or "")
        h.add("CSeq", f"{inv.cseq.number} CANCEL")
        cancel = SipRequest(headers=h, method="CANCEL", uri=inv.uri.copy())
        self._cancel_deadline = now + 64 * self.timers.t1  # §9.1: then consider the INVITE cancelled
        return self._start_txn(cancel, self.dest, now)

    def cancel(self, now: float) -> list[object]:
        """Abort the attempt; the outcome becomes 487 unless the callee answered first."""
        if self.done:
            return []
        self.cancel_requested = True
        if self.provisional is not None:
            return self._send_cancel(now)
        return []  # no provisional yet: CANCEL is not allowed before one (§9.1), send it then

    def _finish(
        self, status: int, reason: str, response: SipResponse | None = None, usage: DialogUsage | None = None
    ) -> list[object]:
        if self.outcome is not None:
            return []
        self._ring_deadline = None
        self._cancel_deadline = None
        self.outcome = InviteFinished(self, status, reason, response, usage)
        return [self.outcome]

    # --- receiving ---
    def receive_response(self, resp: SipResponse, now: float) -> list[object]:
        key = (resp.via.branch or "", resp.cseq.method)
        t = self._txns.get(key)
        if (
            key[1] == "INVITE"
            and 200 <= resp.status < 300
            and (t is None or t.txn.state not in (State.CALLING, State.PROCEEDING))
        ):
            return self._other_2xx(resp, now)
        if t is None:
            return []
        return self._txn_events(t, t.txn.receive_response(resp, now), now, [])

    def _txn_events(self, t: _Txn, events: list[TxnEvent], now: float, out: list[object]) -> list[object]:
        txn = t.txn
        for ev in wire(events, t.dest, out):
            kind = type(ev)
            if kind is TransactionTerminated:
                self._txns.pop(txn.key, None)
            elif txn.request is not self.request:
                continue  # CANCEL, BYE of a hangup, or an INVITE replaced by an auth retry
            elif kind is ResponseReceived:
                assert isinstance(ev, ResponseReceived)
                out.extend(self._invite_response(ev.response, now))
            elif kind is TransactionTimeout:
                assert isinstance(ev, TransactionTimeout)
                if ev.timer == "transport":
                    out.extend(self._finish(503, "Service Unavailable"))
                else:
                    out.extend(self._finish(408, "Request Timeout"))
        return out

    def _invite_response(self, resp: SipResponse, now: float) -> list[object]:
        status = resp.status
        if status < 200:
            self.provisional = resp
            if self.cancel_requested:
                return self._send_cancel(now)
            return [InviteProvisional(self, resp)]
        if status < 300:
            if self.cancel_requested or self.done:
                out = self._hangup(resp, now)  # answered while we were cancelling (§9.1, §15)
                out.extend(self._finish(487, "Request Terminated", resp))
                return out
            return self._answered(resp, now)
        if status in (401, 407) and self.auth is not None and not self.cancel_requested and not self.done:
            assert self.request is not None
            if self.auth.answer(self.request, resp):
                self.cseq += 1
                return self._send_invite(now)
        return self._finish(status, resp.reason, resp)

    def _answered(self, resp: SipResponse, now: float) -> list[object]:
        assert self.request is not None
        try:
            dialog = Dialog.from_uac(self.request, resp)
        except SipParseError:
            return self._finish(502, "Bad Gateway", resp)
        hop = dialog.next_hop()
        tp = hop_transport(hop, self.transport)
        peer = literal_hop(hop, tp)
        if peer is None:
            self._hop_wait = (resp, dialog, tp)
            return [HopNeeded(self, hop, tp)]
        return self._established(resp, dialog, peer, tp, now)

    def hop_resolved(self, peer: Source | None, now: float) -> list[object]:
        """The address :class:`HopNeeded` asked for (``None``: unresolvable, use the INVITE's)."""
        if self._hop_wait is None:
            return []
        resp, dialog, tp = self._hop_wait
        self._hop_wait = None
        return self._established(resp, dialog, peer or self.dest, tp, now)

    def _established(
        self, resp: SipResponse, dialog: Dialog, peer: Source, tp: str, now: float
    ) -> list[object]:
        assert self.request is not None
        ack = dialog.create_ack(via=self.local.via(tp), cseq=self.request.cseq.number)
        send = Send(ack, peer)
        self._acks[dialog.remote_tag] = send
        self._linger(now)
        out: list[object] = [send]
        if self.cancel_requested or self.done:  # cancelled / gave up while resolving
            out.extend(self._bye(dialog, peer, tp, now))
            out.extend(self._finish(487, "Request Terminated", resp))
            return out
        usage = DialogUsage.uac(
            self.local, dialog, peer=peer, transport=tp, offer=self.request.body, answer=resp.body,
            timers=self.timers,
        )  # fmt: skip
        out.extend(self._finish(resp.status, resp.reason, resp, usage))
        return out

    def _other_2xx(self, resp: SipResponse, now: float) -> list[object]:
        """A 2xx after the first: retransmission (re-ACK), another fork or late (ACK + BYE)."""
        tag = resp.to.tag or ""
        known = self._acks.get(tag)
        if known is not None:
            return [known]
        if self._hop_wait is not None and self._hop_wait[1].remote_tag == tag:
            return []  # still resolving where to send the ACK
        return self._hangup(resp, now)

    def _hangup(self, resp: SipResponse, now: float) -> list[object]:
        invite = self._invites.get(resp.cseq.number)
        if invite is None:
            return []
        try:
            dialog = Dialog.from_uac(invite, resp)
        except SipParseError:
            return []
        tp = hop_transport(dialog.next_hop(), self.transport)
        peer = literal_hop(dialog.next_hop(), tp) or self.dest
        ack = Send(dialog.create_ack(via=self.local.via(tp), cseq=invite.cseq.number), peer)
        self._acks[dialog.remote_tag] = ack
        self._linger(now)
        return [ack, *self._bye(dialog, peer, tp, now)]

    def _bye(self, dialog: Dialog, peer: Source, tp: str, now: float) -> list[object]:
        bye = dialog.create_request("BYE", via=self.local.via(tp), headers=[self.local.ua_header])
        return self._start_txn(bye, peer, now)

    def _linger(self, now: float) -> None:
        """Stay 64*T1 after a 2xx for its retransmissions and other forks (§13.2.2.4)."""
        until = now + 64 * self.timers.t1
        if self._linger_deadline is None or until > self._linger_deadline:
            self._linger_deadline = until

    def transport_error(self, dest: Source, now: float) -> list[object]:
        out: list[object] = []
        for t in list(self._txns.values()):
            if t.dest == dest:
                self._txn_events(t, t.txn.transport_error(), now, out)
        return out

    # --- timers ---
    def handle_timer(self, now: float) -> list[object]:
        out: list[object] = []
        for t in list(self._txns.values()):
            dl = t.txn.next_deadline()
            if dl is not None and dl <= now:
                self._txn_events(t, t.txn.poll(now), now, out)
        if self._ring_deadline is not None and now >= self._ring_deadline:
            self._ring_deadline = None
            if not self.done:
                self.cancel_requested = True
                if self.provisional is not None:
                    out.extend(self._send_cancel(now))  # ringing too long: CANCEL, expect 487
                else:
                    out.extend(self._finish(408, "Request Timeout"))  # nothing answers; CANCEL later
        if self._cancel_deadline is not None and now >= self._cancel_deadline:
            self._cancel_deadline = None
            out.extend(self._finish(408, "Request Timeout"))
        if self._linger_deadline is not None and now >= self._linger_deadline:
            self._linger_deadline = None
        return out


__all__ = ["HopNeeded", "InviteClient", "InviteFinished", "InviteProvisional"]
