"""The INVITE dialog usage (RFC 3261 §12-§15) as a sans-I/O machine: in-dialog requests both ways.

A :class:`DialogUsage` exists once a dialog is established (we sent the ACK for a 2xx as UAC, or
sent a 2xx as UAS). It owns every transaction inside the dialog and the session state (our and the
peer's SDP, the negotiated media):

Incoming (``new_request``; retransmissions are absorbed by the server transactions)
    CSeq lower than the last one -> 500. BYE -> 200, :class:`DialogEnded` ("remote_bye") and an
    :class:`InDialogRequest` for the application's hook. INFO -> :class:`InDialogRequest` (the
    application answers). re-INVITE -> 100, then :class:`InDialogRequest` (answer with
    :meth:`answer_reinvite`); while our own re-INVITE is pending, or our 2xx awaits its ACK, it gets
    491 (glare, §14.2); a second re-INVITE while the first is unanswered gets 500 + Retry-After.
    OPTIONS -> 200, other methods 405/501. The ACK for our 2xx (``receive_ack``) stops its
    retransmission (Timer G) and emits :class:`DialogConfirmed`; without ACK for 64*T1 (Timer L/H)
    the usage hangs up with BYE (§13.3.1.4).

Outgoing (``request``, ``reinvite``, ``bye``)
    The final response comes back as :class:`~voipbin.sip.ua_base.RequestCompleted` carrying the
    caller's ``tag`` (a timeout is a locally made 408). A re-INVITE while another INVITE transaction
    is in progress either way is refused locally with 491 (§14.1), any request on an ended dialog
    with a local 481. A 2xx to our re-INVITE refreshes
    the target, updates the SDP/media and is ACKed; its retransmissions are re-ACKed. A BYE ends the
    usage with :class:`DialogEnded` ("local_bye") once answered or timed out.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from .dialog import Dialog, DialogState
from .errors import SdpNegotiationError, SdpParseError
from .message import SipRequest, SipResponse, make_response
from .sdp import NegotiatedMedia, parse_answer
from .transaction import (
    ClientTransaction,
    ResponseReceived,
    TimerConfig,
    TransactionTerminated,
    TransactionTimeout,
    server_key,
)
from .transaction import Event as TxnEvent
from .ua_base import (
    ALLOW,
    KNOWN_METHODS,
    DialogId,
    HeaderList,
    LocalParty,
    RequestCompleted,
    Send,
    ServerRequest,
    Source,
    wire,
)

log = logging.getLogger(__name__)


class UsageState(Enum):
    CONFIRMED = "confirmed"  # requests flow both ways
    CLOSING = "closing"  # our BYE is out
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class InDialogRequest:
    """A BYE (already answered 200), INFO or re-INVITE for the application."""

    usage: DialogUsage
    server: ServerRequest


@dataclass(frozen=True, slots=True)
class DialogConfirmed:
    """The ACK for our 2xx arrived (UAS side)."""

    usage: DialogUsage


@dataclass(frozen=True, slots=True)
class DialogEnded:
    usage: DialogUsage
    reason: str  # "remote_bye" / "local_bye"


def negotiated(answer: bytes, offer: bytes | None) -> NegotiatedMedia | None:
    """The media of an exchange where we made ``offer`` and the peer answered ``answer``."""
    if not answer:
        return None
    try:
        return parse_answer(answer, offer or None)
    except (SdpParseError, SdpNegotiationError) as exc:
        log.info("unusable remote SDP: %s", exc)
        return None


def media_from_offer(offer: bytes, answer: bytes) -> NegotiatedMedia | None:
    """What we negotiated as answerer: the codec of our answer, the remote address of the offer."""
    try:
        ours = parse_answer(answer)
        theirs = parse_answer(offer, answer)
    except (SdpParseError, SdpNegotiationError):
        return None
    return NegotiatedMedia(
        ours.codec,
        ours.payload_type,
        ours.clock_rate,
        theirs.remote_addr,
        theirs.remote_port,
        theirs.ptime,
        theirs.dtmf_payload_type,
        {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly"}.get(
            ours.direction, "inactive"
        ),
    )


class _Outgoing:
    __slots__ = ("tag", "txn")

    def __init__(self, txn: ClientTransaction, tag: object) -> None:
        self.txn = txn
        self.tag = tag


class DialogUsage:
    def __init__(
        self,
        local: LocalParty,
        dialog: Dialog,
        *,
        peer: Source,
        transport: str,
        local_sdp: bytes,
        remote_sdp: bytes,
        outgoing: bool,
        timers: TimerConfig = TimerConfig(),
    ) -> None:
        self.local = local
        self.dialog = dialog
        self.peer = peer  # where in-dialog requests go
        self.transport = transport
        self.local_sdp = local_sdp
        self.remote_sdp = remote_sdp
        self.outgoing = outgoing
        self.timers = timers
        self._media: NegotiatedMedia | None = None
        self._media_from: tuple[bool, bytes, bytes] | None = None  # negotiate on first use (cheap setup)
        self.state = UsageState.CONFIRMED
        self.confirmed = False  # ACK sent (UAC) / received (UAS)
        self.owner: object = None  # the I/O shell's Call
        self._client: dict[tuple[str, str], _Outgoing] = {}
        self._server: dict[tuple[str, str, str], ServerRequest] = {}
        self._reinvite_out: _Outgoing | None = None  # our re-INVITE in progress
        self._invite_in: ServerRequest | None = None  # a received re-INVITE the application answers
        self._invite_acking: ServerRequest | None = None  # our 2xx to an INVITE, awaiting the ACK
        self._offer_in_2xx = False  # that INVITE had no SDP: our 2xx offered, the ACK answers
        self._ack: SipRequest | None = None  # our ACK for the last 2xx, re-sent on retransmissions

    # --- construction ---
    @classmethod
    def uac(
        cls,
        local: LocalParty,
        dialog: Dialog,
        *,
        peer: Source,
        transport: str,
        offer: bytes,
        answer: bytes,
        timers: TimerConfig,
    ) -> DialogUsage:
        """From our INVITE (``offer``) and the 2xx we ACKed (``answer``)."""
        usage = cls(
            local,
            dialog,
            peer=peer,
            transport=transport,
            local_sdp=offer,
            remote_sdp=answer,
            outgoing=True,
            timers=timers,
        )
        usage._media_from = (True, answer, offer)
        usage.confirmed = True
        return usage

    @classmethod
    def uas(
        cls, local: LocalParty, server: ServerRequest, dialog: Dialog, *, peer: Source, answer: bytes,
        timers: TimerConfig,
    ) -> DialogUsage:  # fmt: skip
        """From the INVITE in ``server`` whose 2xx (with ``answer``) was just sent; awaits the ACK."""
        offer = server.request.body
        usage = cls(
            local,
            dialog,
            peer=peer,
            transport=server.source.transport,
            local_sdp=answer,
            remote_sdp=offer,
            outgoing=False,
            timers=timers,
        )
        if offer:
            usage._media_from = (False, offer, answer)
        else:
            usage._offer_in_2xx = True
        server.parent = usage
        usage._invite_acking = server
        usage._server[server.key] = server
        return usage

    # --- properties ---
    @property
    def media(self) -> NegotiatedMedia | None:
        """The negotiated media (worked out from the SDP the first time it is asked for)."""
        pending = self._media_from
        if pending is not None:
            self._media_from = None
            we_offered, first, second = pending
            self._media = negotiated(first, second) if we_offered else media_from_offer(first, second)
        return self._media

    @media.setter
    def media(self, value: NegotiatedMedia | None) -> None:
        self._media_from = None
        self._media = value

    @property
    def id(self) -> DialogId:
        return self.dialog.id

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    @property
    def active(self) -> bool:
        return self.state is UsageState.CONFIRMED

    @property
    def finished(self) -> bool:
        return self.state is UsageState.ENDED and not self._client and not self._server

    @property
    def invite_in_progress(self) -> bool:
        return not (self._reinvite_out is None and self._invite_in is None and self._invite_acking is None)

    def next_deadline(self) -> float | None:
        best: float | None = None
        for p in self._client.values():
            dl = p.txn.next_deadline()
            if dl is not None and (best is None or dl < best):
                best = dl
        for sr in self._server.values():
            dl = sr.txn.next_deadline()
            if dl is not None and (best is None or dl < best):
                best = dl
        return best

    # --- outgoing requests ---
    def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        tag: object = None,
        now: float,
    ) -> list[object]:
        """Send an in-dialog request (BYE/INVITE have their own methods)."""
        if method == "INVITE":
            return self.reinvite(body, tag=tag, now=now)
        if method == "BYE":
            return self.bye(tag=tag, now=now)
        req = self.dialog.create_request(
            method,
            via=self.local.via(self.transport),
            body=body,
            content_type=content_type,
            headers=[self.local.ua_header, *headers],
        )
        if not self.active:
            return [RequestCompleted(self, tag, make_response(req, 481))]  # the dialog is gone
        return self._start(req, tag, now)

    def reinvite(self, sdp: bytes, *, tag: object = None, now: float) -> list[object]:
        """Send a re-INVITE offering ``sdp``; refused locally (491) while an INVITE is in progress."""
        req = self.dialog.create_request(
            "INVITE",
            via=self.local.via(self.transport),
            contact=self.local.contact(self.transport),
            body=sdp,
            content_type="application/sdp",
            headers=[self.local.ua_header],
        )
        if not self.active:
            return [RequestCompleted(self, tag, make_response(req, 481))]  # the dialog is gone
        if self.invite_in_progress:
            return [RequestCompleted(self, tag, make_response(req, 491))]  # RFC 3261 §14.1
        out = self._start(req, tag, now)
        self._reinvite_out = self._client[(req.via.branch or "", "INVITE")]
        return out

    def bye(self, *, tag: object = None, now: float) -> list[object]:
        """Hang up: BYE now, :class:`DialogEnded` when it is answered (or timed out)."""
        if not self.active:
            return [RequestCompleted(self, tag, None)]
        self.state = UsageState.CLOSING
        self.dialog.state = DialogState.TERMINATED
        acking = self._invite_acking
        if acking is not None:  # stop retransmitting a 2xx nobody ACKs any more
            self._invite_acking = None
            self._server.pop(acking.key, None)
        req = self.dialog.create_request(
            "BYE", via=self.local.via(self.transport), headers=[self.local.ua_header]
        )
        return self._start(req, tag, now)

    def _start(self, req: SipRequest, tag: object, now: float) -> list[object]:
        txn = ClientTransaction(req, reliable=self.peer.transport == "tcp", timers=self.timers)
        self._client[txn.key] = _Outgoing(txn, tag)
        out: list[object] = []
        wire(txn.start(now), self.peer, out)
        return out

    def receive_response(self, resp: SipResponse, now: float) -> list[object]:
        p = self._client.get((resp.via.branch or "", resp.cseq.method))
        if p is None:
            ack = self._ack
            if (
                ack is not None
                and 200 <= resp.status < 300
                and resp.cseq.method == "INVITE"
                and resp.cseq.number == ack.cseq.number
            ):
                return [Send(ack, self.peer)]  # 2xx retransmission: our ACK got lost (§13.2.2.4)
            return []
        return self._outgoing_events(p, p.txn.receive_response(resp, now))

    def _outgoing_events(self, p: _Outgoing, events: list[TxnEvent]) -> list[object]:
        out: list[object] = []
        for ev in wire(events, self.peer, out):
            t = type(ev)
            if t is ResponseReceived:
                assert isinstance(ev, ResponseReceived)
                if ev.response.status >= 200:
                    out.extend(self._completed(p, ev.response))
            elif t is TransactionTimeout:
                out.extend(self._completed(p, make_response(p.txn.request, 408)))
            elif t is TransactionTerminated:
                self._client.pop(p.txn.key, None)
        return out

    def _completed(self, p: _Outgoing, resp: SipResponse) -> list[object]:
        req = p.txn.request
        out: list[object] = []
        if not p.txn.is_invite:
            self._client.pop(p.txn.key, None)  # Completed only absorbs retransmissions: drop it now
        if req.method == "INVITE":
            if self._reinvite_out is p:
                self._reinvite_out = None
            if 200 <= resp.status < 300:
                self.dialog.receive_response(resp)
                self.local_sdp = req.body
                if resp.body:
                    self.remote_sdp = resp.body
                    self.media = negotiated(resp.body, req.body)
                ack = self.dialog.create_ack(via=self.local.via(self.transport), cseq=req.cseq.number)
                self._ack = ack
                out.append(Send(ack, self.peer))
        elif req.method == "BYE" and self.state is not UsageState.ENDED:
            self.state = UsageState.ENDED
            out.append(DialogEnded(self, "local_bye"))
        out.append(RequestCompleted(self, p.tag, resp))
        return out

    def transport_error(self, dest: Source, now: float) -> list[object]:
        if dest != self.peer:
            return []
        out: list[object] = []
        for p in list(self._client.values()):
            out.extend(self._outgoing_events(p, p.txn.transport_error()))
        return out

    # --- incoming requests ---
    def receive_request(self, req: SipRequest, now: float) -> list[object]:
        """A retransmission of a request we have a server transaction for (absorbed)."""
        via = req.via
        sr = self._server.get(server_key(via.branch or "", via.sent_by, req.method))
        if sr is None:
            return []
        out = sr.receive_request(req, now)
        if sr.finished:
            self._server.pop(sr.key, None)
        return out

    def new_request(self, req: SipRequest, source: Source, dest: Source, now: float) -> list[object]:
        """A new request inside this dialog (To tag = ours)."""
        sr = ServerRequest(req, source, dest, self.local, timers=self.timers, parent=self)
        self._server[sr.key] = sr
        method = req.method
        out: list[object] = []
        if method == "INVITE":
            out.extend(sr.respond(100, now=now))
        if not self.active:
            out.extend(self.respond(sr, 481, now=now))
            return out
        if self.dialog.receive_request(req):
            out.extend(self.respond(sr, 500, "CSeq out of order", now=now))
            return out
        if method == "BYE":
            out.extend(self.respond(sr, 200, now=now))
            self._ended_by_peer()
            out.append(DialogEnded(self, "remote_bye"))
            out.append(InDialogRequest(self, sr))
        elif method == "INFO":
            out.append(InDialogRequest(self, sr))
        elif method == "INVITE":
            if self._reinvite_out is not None or self._invite_acking is not None:
                out.extend(self.respond(sr, 491, now=now))  # glare (§14.2)
            elif self._invite_in is not None:
                retry = ("Retry-After", str(secrets.randbelow(11)))
                out.extend(self.respond(sr, 500, headers=[retry], now=now))  # §14.2
            else:
                self._invite_in = sr
                out.append(InDialogRequest(self, sr))
        elif method == "OPTIONS":
            out.extend(self.respond(sr, 200, headers=[("Allow", ALLOW)], now=now))
        else:
            status = 405 if method in KNOWN_METHODS else 501
            out.extend(self.respond(sr, status, headers=[("Allow", ALLOW)], now=now))
        return out

    def _ended_by_peer(self) -> None:
        self.state = UsageState.ENDED
        self.dialog.state = DialogState.TERMINATED
        acking = self._invite_acking
        if acking is not None:
            self._invite_acking = None
            self._server.pop(acking.key, None)

    def respond(
        self,
        sr: ServerRequest,
        status: int,
        reason: str | None = None,
        *,
        headers: HeaderList = (),
        body: bytes = b"",
        content_type: str | None = None,
        now: float,
    ) -> list[object]:
        out = sr.respond(status, reason, headers=headers, body=body, content_type=content_type, now=now)
        if status >= 200 and sr is self._invite_in:
            self._invite_in = None
            if status < 300 and self.state is not UsageState.ENDED:
                self._invite_acking = sr
        if sr.finished:
            self._server.pop(sr.key, None)
        return out

    def answer_reinvite(self, sr: ServerRequest, sdp: bytes | None, *, now: float) -> list[object]:
        """200 to a received re-INVITE with ``sdp`` (``None``: keep our current SDP)."""
        if not sr.can_respond:
            return []
        offer = sr.request.body
        if sdp is not None:
            self.local_sdp = sdp
        if offer:
            self.remote_sdp = offer
            media = media_from_offer(offer, self.local_sdp)
            if media is not None:
                self.media = media
        else:
            self._offer_in_2xx = True  # delayed offer: our SDP is the offer, the ACK answers
        return self.respond(
            sr,
            200,
            headers=[("Contact", self.local.contact(self.transport))],
            body=self.local_sdp,
            content_type="application/sdp",
            now=now,
        )

    def receive_ack(self, ack: SipRequest, now: float) -> list[object]:
        """The ACK for a 2xx we sent (matched by dialog, §13.3.1.4)."""
        out: list[object] = []
        sr = self._invite_acking
        if sr is not None and ack.cseq.number == sr.request.cseq.number:
            self._invite_acking = None
            wire(sr.txn.ack_2xx_received(), sr.dest, out)
            self._server.pop(sr.key, None)
        if ack.body and self._offer_in_2xx:
            self._offer_in_2xx = False
            self.remote_sdp = ack.body
            self.media = negotiated(ack.body, self.local_sdp)
        self.confirmed = True
        out.append(DialogConfirmed(self))
        return out

    # --- timers ---
    def handle_timer(self, now: float) -> list[object]:
        out: list[object] = []
        for p in list(self._client.values()):
            dl = p.txn.next_deadline()
            if dl is not None and dl <= now:
                out.extend(self._outgoing_events(p, p.txn.poll(now)))
        for sr in list(self._server.values()):
            dl = sr.txn.next_deadline()
            if dl is None or dl > now:
                continue
            for ev in wire(sr.txn.poll(now), sr.dest, out):
                if type(ev) is TransactionTimeout and sr is self._invite_acking:
                    self._invite_acking = None
                    if self.active:
                        log.info("no ACK for 2xx on %s: hanging up", self.call_id)
                        out.extend(self.bye(now=now))
            if sr.finished:
                self._server.pop(sr.key, None)
        return out


__all__ = [
    "DialogConfirmed",
    "DialogEnded",
    "DialogUsage",
    "InDialogRequest",
    "UsageState",
    "media_from_offer",
    "negotiated",
]
