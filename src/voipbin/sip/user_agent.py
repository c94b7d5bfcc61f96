"""The sans-I/O user agent core: routes messages to the machines and runs all their timers.

Modelled on aioquic's ``QuicConnection``: bytes or parsed messages go in with ``now``, events come
out, and one timer covers every machine::

    ua = UserAgent(LocalParty("203.0.113.5", 5060))
    ua.receive_datagram(data, source, now)       # or receive_message(msg, source, now)
    ua.handle_timer(now)                         # when now >= ua.get_timer()
    for ev in ua.take_events(): ...              # Send(message, dest) and application events

Actions go straight to a machine and its events are handed back with :meth:`feed` (or :meth:`add`
for a new client machine)::

    client = InviteClient(ua.local, ...)
    ua.add(client, client.start(now))
    ua.feed(client, client.cancel(now))

Routing: responses by (branch, CSeq method) to the machine that sent the request (learned from the
:class:`~voipbin.sip.ua_base.Send` events it returns); requests by server transaction key (§17.2.3)
to the machine holding the transaction, new in-dialog requests by dialog id to the
:class:`~voipbin.sip.dialog_usage.DialogUsage`, the ACK for a 2xx to its dialog. New out-of-dialog
requests create an :class:`~voipbin.sip.invite_server.InviteServer` (reported as :class:`NewInvite`)
or a :class:`~voipbin.sip.ua_base.ServerRequest` (:class:`NewRequest`, for REGISTER and
``accept_methods``). The core answers the rest itself: CANCEL (200 + 487 to the INVITE, or 481),
``Require`` -> 420, INVITE without Contact -> 400, a request for an unknown dialog -> 481 (OPTIONS
-> 200), OPTIONS -> 200, unknown methods 501, known but unsupported ones 405, and unparseable
requests 400 when the headers needed for a response survived.

Timers: a heap of (deadline, machine) with lazy invalidation, so one re-armed timer in the I/O
shell serves all machines at O(log n) per change.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterable
from typing import cast

from .dialog_usage import DialogUsage
from .errors import SipParseError
from .headers import Via
from .invite_client import InviteFinished
from .invite_server import InviteServer
from .message import SipRequest, SipResponse, make_response, parse_message
from .transaction import TimerConfig, server_key
from .ua_base import (
    ALLOW,
    KNOWN_METHODS,
    ClientMachine,
    DialogId,
    LocalParty,
    Machine,
    Send,
    ServerMachine,
    ServerRequest,
    Source,
)

log = logging.getLogger(__name__)

DEFAULT_ACCEPT = ("INVITE", "REGISTER", "MESSAGE", "NOTIFY", "SUBSCRIBE")
ClientKey = tuple[str, str]
ServerKey = tuple[str, str, str]


class NewInvite:
    """An out-of-dialog INVITE (already answered 100 Trying) for the application."""

    __slots__ = ("server",)

    def __init__(self, server: InviteServer) -> None:
        self.server = server


class NewRequest:
    """An out-of-dialog non-INVITE request (REGISTER, MESSAGE, ...) for the application."""

    __slots__ = ("server",)

    def __init__(self, server: ServerRequest) -> None:
        self.server = server


class UserAgent:
    def __init__(
        self,
        local: LocalParty,
        *,
        timers: TimerConfig = TimerConfig(),
        accept_methods: Iterable[str] = DEFAULT_ACCEPT,
        local6: LocalParty | None = None,
    ) -> None:
        self.local = local
        self.local6 = local6  # our identity towards IPv6 peers (None: the IPv4 one for everyone)
        self.timers = timers
        self.accept_methods = frozenset(accept_methods)
        self.dialogs: dict[DialogId, DialogUsage] = {}  # confirmed dialogs only
        self._client: dict[ClientKey, ClientMachine] = {}
        self._server: dict[ServerKey, ServerMachine] = {}
        self._client_keys: dict[ClientMachine, list[ClientKey]] = {}
        self._server_keys: dict[ServerMachine, list[ServerKey]] = {}
        self._heap: list[tuple[float, int, Machine]] = []
        self._scheduled: dict[Machine, float] = {}
        self._seq = itertools.count()
        self._events: list[object] = []

    def local_for(self, ip: str) -> LocalParty:
        """The identity (Via, Contact) a peer at ``ip`` can reach us by: IPv6 peers get the IPv6 one."""
        return self.local6 if self.local6 is not None and ":" in ip else self.local

    # --- output ---
    def take_events(self) -> list[object]:
        events, self._events = self._events, []
        return events

    def get_timer(self) -> float | None:
        """The earliest deadline of any machine (``None``: nothing pending)."""
        heap, scheduled = self._heap, self._scheduled
        while heap:
            dl, _, m = heap[0]
            if scheduled.get(m) == dl:
                return dl
            heapq.heappop(heap)  # stale entry: the machine moved its deadline or is gone
        return None

    def handle_timer(self, now: float) -> None:
        heap, scheduled = self._heap, self._scheduled
        while heap and heap[0][0] <= now:
            dl, _, m = heapq.heappop(heap)
            if scheduled.get(m) != dl:
                continue
            del scheduled[m]
            self.feed(m, m.handle_timer(now))

    # --- machine bookkeeping ---
    def add(self, machine: ClientMachine, events: list[object]) -> None:
        """A new client machine (InviteClient, RequestClient) and the events of its ``start``."""
        self.feed(machine, events)

    def feed(self, machine: Machine, events: list[object]) -> None:
        """Take the events a machine returned: learn response routes, queue output, re-time it."""
        client = self._client
        for ev in events:
            if isinstance(ev, Send):
                msg = ev.message
                if isinstance(msg, SipRequest) and msg.method != "ACK":
                    key = (msg.via.branch or "", msg.method)
                    if client.get(key) is not machine:
                        sender = cast(ClientMachine, machine)  # only client machines send requests
                        client[key] = sender
                        self._client_keys.setdefault(sender, []).append(key)
            elif isinstance(ev, InviteFinished) and ev.usage is not None:
                self.dialogs[ev.usage.id] = ev.usage
        self._events.extend(events)
        if isinstance(machine, DialogUsage) and not machine.active:
            self._forget_dialog(machine)
        if machine.finished:
            self._drop(machine)
            return
        dl = machine.next_deadline()
        if dl is None:
            self._scheduled.pop(machine, None)
        elif self._scheduled.get(machine) != dl:
            self._scheduled[machine] = dl
            heapq.heappush(self._heap, (dl, next(self._seq), machine))

    def _forget_dialog(self, usage: DialogUsage) -> None:
        if self.dialogs.get(usage.id) is usage:
            del self.dialogs[usage.id]

    def _drop(self, machine: Machine) -> None:
        self._scheduled.pop(machine, None)
        client = self._client
        for ckey in self._client_keys.pop(cast(ClientMachine, machine), ()):
            if client.get(ckey) is machine:
                del client[ckey]
        server = self._server
        for skey in self._server_keys.pop(cast(ServerMachine, machine), ()):
            if server.get(skey) is machine:
                del server[skey]

    def _serve(self, key: ServerKey, machine: ServerMachine) -> None:
        self._server[key] = machine
        self._server_keys.setdefault(machine, []).append(key)

    # --- actions that change routing ---
    def answer(
        self, invite: InviteServer, sdp: bytes, headers: Iterable[tuple[str, str]] = (), *, now: float
    ) -> DialogUsage:
        """2xx to ``invite``; the new dialog usage takes over its transaction (see InviteServer)."""
        usage, events = invite.answer(sdp, headers, now=now)
        if events:
            self._serve(invite.key, usage)  # INVITE retransmissions now get the 2xx from the usage
            self.dialogs[usage.id] = usage
            self.feed(invite, [])
            self.feed(usage, events)
        return usage

    def respond(
        self,
        server: ServerRequest,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        now: float,
    ) -> None:
        """Respond to a received request through the machine that owns it."""
        parent = server.parent
        if isinstance(parent, (InviteServer, DialogUsage)):
            events = parent.respond(
                server, status, reason, headers=headers, body=body, content_type=content_type, now=now
            )
            self.feed(parent, events)
        else:
            events = server.respond(
                status, reason, headers=headers, body=body, content_type=content_type, now=now
            )
            self.feed(server, events)

    def transport_error(self, dest: Source, now: float) -> None:
        """``dest`` is unreachable (TCP connect failed): fail the client transactions going there."""
        for m in list(self._client_keys):
            self.feed(m, m.transport_error(dest, now))

    # --- input ---
    def receive_datagram(self, data: bytes, source: Source, now: float) -> None:
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            partial = exc.partial
            if isinstance(partial, SipRequest) and partial.method != "ACK":
                self._reply_bad_request(partial, source, str(exc))
            else:
                log.info("dropping unparseable SIP from %s: %s", source, exc)
            return
        self.receive_message(msg, source, now)

    def receive_message(self, msg: SipRequest | SipResponse, source: Source, now: float) -> None:
        if type(msg) is SipResponse:
            m = self._client.get((msg.via.branch or "", msg.cseq.method))
            if m is not None:
                self.feed(m, m.receive_response(msg, now))
            return
        assert isinstance(msg, SipRequest)
        self._on_request(msg, source, now)

    def _reply_bad_request(self, req: SipRequest, source: Source, why: str) -> None:
        if not all(req.headers.get(n) for n in ("Via", "From", "To", "Call-ID", "CSeq")):
            log.info("dropping malformed request from %s: %s", source, why)
            return
        resp = make_response(req, 400, f"Bad Request ({why[:60]})".replace("\r", " ").replace("\n", " "))
        self._events.append(Send(resp, source))

    @staticmethod
    def _response_dest(via: Via, source: Source) -> Source:
        if source.transport == "tcp" or "rport" in via.params:
            return source
        return Source(source.ip, via.port or 5060, "udp")

    def _stamp_via(self, req: SipRequest, source: Source) -> Via:
        """RFC 3261 §18.2.1 received / RFC 3581 rport on the top Via, so responses find their way."""
        top = req.via
        params = top.params
        rport = "rport" in params
        same_host = top.host.strip("[]") == source.ip  # an IPv6 sent-by is a bracketed reference
        if same_host and not rport:
            return top
        new = Via(top.transport, top.host, top.port, dict(params), top.protocol)
        if not same_host:
            new.params["received"] = source.ip
        if rport:
            new.params["rport"] = str(source.port)
        req.headers.replace_first("Via", str(new))
        return new

    def _on_request(self, req: SipRequest, source: Source, now: float) -> None:
        top = self._stamp_via(req, source)
        method = req.method
        key = server_key(top.branch or "", top.sent_by, method)
        if method == "ACK":
            m = self._server.get(key)
            if type(m) is InviteServer:
                self.feed(m, m.receive_request(req, now))  # ACK for our non-2xx
                return
            usage = self.dialogs.get((req.call_id, req.to.tag or "", req.from_.tag or ""))
            if usage is not None:
                self.feed(usage, usage.receive_ack(req, now))
            return
        m = self._server.get(key)
        if m is not None:
            self.feed(m, m.receive_request(req, now))  # retransmission
            return
        dest = self._response_dest(top, source)
        if method == "CANCEL":
            self._on_cancel(req, source, dest, top, now)
            return
        require = req.headers.get_all("Require")
        if require:  # we implement no extensions (no 100rel, no timer): RFC 3261 §8.2.2.3
            self._reply(req, source, dest, 420, headers=[("Unsupported", ", ".join(require))], now=now)
            return
        if method == "INVITE" and not req.headers.get("Contact"):
            self._reply(req, source, dest, 400, "Bad Request (missing Contact)", now=now)
            return
        to_tag = req.to.tag
        if to_tag:
            usage = self.dialogs.get((req.call_id, to_tag, req.from_.tag or ""))
            if usage is None:
                if method == "OPTIONS":
                    self._reply(req, source, dest, 200, headers=[("Allow", ALLOW)], now=now)
                else:
                    self._reply(req, source, dest, 481, now=now)
                return
            self._serve(key, usage)
            self.feed(usage, usage.new_request(req, source, dest, now))
            return
        if method == "OPTIONS" and "OPTIONS" not in self.accept_methods:
            allow = [("Allow", ALLOW), ("Accept", "application/sdp")]
            self._reply(req, source, dest, 200, headers=allow, now=now)
            return
        if method == "INVITE":
            inv = InviteServer(self.local_for(source.ip), req, source, dest, timers=self.timers)
            self._serve(key, inv)
            events = inv.start(now)
            events.append(NewInvite(inv))
            self.feed(inv, events)
            return
        if method == "REGISTER" or method in self.accept_methods:
            sr = ServerRequest(req, source, dest, self.local_for(source.ip), timers=self.timers)
            self._serve(key, sr)
            self.feed(sr, [NewRequest(sr)])
            return
        if method in ("BYE", "INFO", "PRACK", "UPDATE"):
            self._reply(req, source, dest, 481, now=now)
        elif method in KNOWN_METHODS:
            self._reply(req, source, dest, 405, headers=[("Allow", ALLOW)], now=now)
        else:
            self._reply(req, source, dest, 501, now=now)

    def _reply(
        self,
        req: SipRequest,
        source: Source,
        dest: Source,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        now: float,
    ) -> ServerRequest:
        """Answer a request ourselves, through a server transaction (retransmissions get it too)."""
        sr = ServerRequest(req, source, dest, self.local_for(source.ip), timers=self.timers)
        self._serve(sr.key, sr)
        self.feed(sr, sr.respond(status, reason, headers=headers, now=now))
        return sr

    def _on_cancel(self, req: SipRequest, source: Source, dest: Source, top: Via, now: float) -> None:
        target = self._server.get(server_key(top.branch or "", top.sent_by, "INVITE"))
        if target is None:
            self._reply(req, source, dest, 481, now=now)
            return
        self._reply(req, source, dest, 200, now=now)
        if type(target) is InviteServer:
            self.feed(target, target.receive_cancel(now=now))


__all__ = ["DEFAULT_ACCEPT", "NewInvite", "NewRequest", "UserAgent"]
