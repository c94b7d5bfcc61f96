"""The UAS side of one incoming INVITE (RFC 3261 §13.3) as a sans-I/O machine.

:class:`InviteServer` is created for an out-of-dialog INVITE and answers it 100 Trying at once.
The application then sends provisional responses (:meth:`ringing` 180, :meth:`progress` 183 with
early media SDP), :meth:`reject` s it, or :meth:`answer` s it: the 2xx creates the dialog and hands
the server transaction to a new :class:`~voipbin.sip.dialog_usage.DialogUsage`, which retransmits the
2xx (Timer G) until the ACK arrives and hangs up with BYE if it never does (Timer L, 64*T1).

A CANCEL for the INVITE (``receive_cancel``; the dispatcher answers the CANCEL itself with 200) is
answered 487 and reported as :class:`InviteCancelled` if no final response was sent yet. The ACK
for a non-2xx final response and retransmitted INVITEs are absorbed by the transaction (Timer H
bounds the wait for that ACK).
"""

from __future__ import annotations

from dataclasses import dataclass

from .dialog import Dialog, DialogState
from .dialog_usage import DialogUsage
from .errors import SipError
from .message import SipRequest
from .transaction import TimerConfig
from .ua_base import HeaderList, LocalParty, ServerRequest, Source, literal_hop


@dataclass(frozen=True, slots=True)
class InviteCancelled:
    server: InviteServer


class InviteServer:
    def __init__(
        self,
        local: LocalParty,
        request: SipRequest,
        source: Source,
        dest: Source,
        *,
        timers: TimerConfig = TimerConfig(),
    ) -> None:
        self.local = local
        self.timers = timers
        self.server = ServerRequest(request, source, dest, local, timers=timers, parent=self)
        self.cancelled = False
        self.usage: DialogUsage | None = None
        self.owner: object = None  # the I/O shell's IncomingInvite

    @property
    def request(self) -> SipRequest:
        return self.server.request

    @property
    def source(self) -> Source:
        return self.server.source

    @property
    def key(self) -> tuple[str, str, str]:
        return self.server.key

    @property
    def final_sent(self) -> bool:
        return self.server.final_sent

    @property
    def finished(self) -> bool:
        """Answered (the dialog usage took over) or the transaction ended."""
        return self.usage is not None or self.server.finished

    def next_deadline(self) -> float | None:
        return None if self.usage is not None else self.server.next_deadline()

    def handle_timer(self, now: float) -> list[object]:
        return [] if self.usage is not None else self.server.handle_timer(now)

    def start(self, now: float) -> list[object]:
        return self.server.respond(100, now=now)

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
        return sr.respond(status, reason, headers=headers, body=body, content_type=content_type, now=now)

    def _contact(self) -> tuple[str, str]:
        return ("Contact", self.local.contact(self.server.source.transport))

    def ringing(self, *, now: float) -> list[object]:
        return self.server.respond(180, headers=[self._contact()], now=now)

    def progress(self, sdp: bytes, *, now: float) -> list[object]:
        return self.server.respond(
            183, headers=[self._contact()], body=sdp, content_type="application/sdp", now=now
        )

    def reject(
        self, status: int = 486, reason: str | None = None, headers: HeaderList = (), *, now: float
    ) -> list[object]:
        return self.server.respond(status, reason, headers=headers, now=now)

    def answer(self, sdp: bytes, headers: HeaderList = (), *, now: float) -> tuple[DialogUsage, list[object]]:
        """2xx with ``sdp``; returns the dialog usage (raises SipError once cancelled/answered)."""
        if self.usage is not None:
            return self.usage, []
        server = self.server
        if self.cancelled or server.final_sent:
            raise SipError("INVITE already finished (cancelled or answered)")
        dialog = Dialog.from_uas(server.request, server.local_tag)  # SipParseError: no tag/Contact
        dialog.state = DialogState.CONFIRMED
        peer = server.source  # symmetric: in-dialog requests go back where the INVITE came from
        if dialog.route_set:
            peer = literal_hop(dialog.next_hop(), peer.transport) or peer  # a named proxy: keep the flow
        out = server.respond(
            200,
            headers=[self._contact(), *headers],
            body=sdp,
            content_type="application/sdp",
            now=now,
        )
        self.usage = DialogUsage.uas(self.local, server, dialog, peer=peer, answer=sdp, timers=self.timers)
        return self.usage, out

    def receive_request(self, request: SipRequest, now: float) -> list[object]:
        """A retransmitted INVITE, or the ACK for our non-2xx final response."""
        return self.server.receive_request(request, now)

    def receive_cancel(self, *, now: float) -> list[object]:
        if self.usage is not None or self.server.final_sent:
            return []  # too late: the CANCEL has no effect (§9.2)
        self.cancelled = True
        out = self.server.respond(487, now=now)
        out.append(InviteCancelled(self))
        return out


__all__ = ["InviteCancelled", "InviteServer"]
