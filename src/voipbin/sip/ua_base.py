"""Shared vocabulary of the sans-I/O user agent machines (no asyncio, no sockets, no clock).

The machines (:mod:`.invite_client`, :mod:`.invite_server`, :mod:`.dialog_usage`, :mod:`.non_invite`)
and the dispatcher (:mod:`.user_agent`) exchange these values:

- :class:`Source`: an address + transport, where a message came from or goes to.
- :class:`Send`: "put this message on the wire to that address" (the only output touching I/O).
- :class:`LocalParty`: who we are on the wire (Via sent-by, Contact, User-Agent/Server header).
- :class:`ServerRequest`: one received request with its server transaction; builds our responses.
- :class:`RequestCompleted`: the final response (or ``None``) of a request a machine sent for us.

Every machine method takes ``now`` (seconds, any monotonic origin) and returns a list of events; each
machine has ``next_deadline()`` and ``handle_timer(now)``, and ``finished`` once it can be dropped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .message import SipRequest, SipResponse, make_response, new_tag
from .transaction import Event as TxnEvent
from .transaction import SendMessage, ServerTransaction, State, TimerConfig
from .uri import SipUri

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER"
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK", "UPDATE", "SUBSCRIBE",
     "NOTIFY", "REFER", "MESSAGE", "PUBLISH"}
)  # fmt: skip

Credentials = tuple[str, str]
DialogId = tuple[str, str, str]
HeaderList = Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from (or goes to)."""

    ip: str
    port: int
    transport: str  # "udp" / "tcp"

    @property
    def addr(self) -> tuple[str, int]:
        return (self.ip, self.port)


@dataclass(frozen=True, slots=True)
class Send:
    """Output: serialize ``message`` and send it to ``dest``."""

    message: SipRequest | SipResponse
    dest: Source


@dataclass(frozen=True, slots=True)
class RequestCompleted:
    """Output: the request sent for ``tag`` got its final ``response`` (408 made locally on timeout).

    ``response`` is ``None`` when the request could not be sent at all (e.g. BYE on an ended dialog).
    ``machine`` is the machine that sent it; ``tag`` is whatever the caller passed in (a future, say).
    """

    machine: object
    tag: object
    response: SipResponse | None


class Machine(Protocol):
    """What the dispatcher needs from every machine to run its timers and drop it when done."""

    @property
    def finished(self) -> bool: ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> list[object]: ...


class ClientMachine(Machine, Protocol):
    """A machine that sends requests: gets the responses routed back to it."""

    def receive_response(self, resp: SipResponse, now: float) -> list[object]: ...

    def transport_error(self, dest: Source, now: float) -> list[object]: ...


class ServerMachine(Machine, Protocol):
    """A machine holding server transactions: gets their retransmissions (and non-2xx ACKs)."""

    def receive_request(self, request: SipRequest, now: float) -> list[object]: ...


class LocalParty:
    """Our identity on the wire; the header strings are built once per transport."""

    __slots__ = ("_contact", "_via", "host", "port", "server_header", "ua_header", "user_agent")

    def __init__(self, host: str, port: int, user_agent: str = "voipbin") -> None:
        self.host = f"[{host}]" if ":" in host and not host.startswith("[") else host  # IPv6 reference
        self.port = port
        self.user_agent = user_agent
        self.ua_header = ("User-Agent", user_agent)
        self.server_header = ("Server", user_agent)
        self._via: dict[str, str] = {}
        self._contact: dict[tuple[str, str], str] = {}

    def via(self, transport: str) -> str:
        """``SIP/2.0/UDP host:port;rport`` (without branch)."""
        v = self._via.get(transport)
        if v is None:
            v = self._via[transport] = f"SIP/2.0/{transport.upper()} {self.host}:{self.port};rport"
        return v

    def contact(self, transport: str, user: str = "voipbin") -> str:
        key = (transport, user)
        c = self._contact.get(key)
        if c is None:
            tp = ";transport=tcp" if transport == "tcp" else ""
            c = self._contact[key] = f"<sip:{user}@{self.host}:{self.port}{tp}>"
        return c


def literal_hop(uri: SipUri, transport: str) -> Source | None:
    """The address of ``uri`` if its host is an IP literal (``None`` for names: resolve them)."""
    host = uri.host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return Source(host, uri.port or 5060, hop_transport(uri, transport))


def hop_transport(uri: SipUri, default: str) -> str:
    tp = (uri.params.get("transport") or default or "udp").lower()
    return tp if tp in ("udp", "tcp") else default


def wire(events: list[TxnEvent], dest: Source, out: list[object]) -> list[TxnEvent]:
    """Turn a transaction's SendMessage events into :class:`Send`; returns the other events."""
    rest: list[TxnEvent] = []
    for ev in events:
        if type(ev) is SendMessage:
            out.append(Send(ev.message, dest))
        else:
            rest.append(ev)
    return rest


class ServerRequest:
    """A received request and its server transaction: respond through it.

    ``parent`` is the machine that owns it (an invite server or a dialog usage), ``None`` when the
    request stands alone (out-of-dialog non-INVITE); the dispatcher sends responses through the parent.
    """

    __slots__ = ("dest", "local", "local_tag", "owner", "parent", "request", "source", "txn")

    def __init__(
        self,
        request: SipRequest,
        source: Source,
        dest: Source,
        local: LocalParty,
        *,
        timers: TimerConfig,
        parent: object = None,
    ) -> None:
        self.request = request
        self.source = source
        self.dest = dest  # where responses go (RFC 3261 §18.2.2 / RFC 3581)
        self.local = local
        self.txn = ServerTransaction(request, reliable=source.transport == "tcp", timers=timers)
        self.local_tag = new_tag()
        self.parent = parent
        self.owner: object = None  # the I/O shell's handle

    @property
    def key(self) -> tuple[str, str, str]:
        return self.txn.key

    @property
    def final_sent(self) -> bool:
        return self.txn.final_sent

    @property
    def can_respond(self) -> bool:
        return self.txn.state in (State.TRYING, State.PROCEEDING)

    @property
    def finished(self) -> bool:
        return self.txn.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        return self.txn.next_deadline()

    def handle_timer(self, now: float) -> list[object]:
        out: list[object] = []
        wire(self.txn.poll(now), self.dest, out)
        return out

    def receive_request(self, request: SipRequest, now: float) -> list[object]:
        """A retransmission (answered with our last response) or the ACK for a non-2xx."""
        out: list[object] = []
        wire(self.txn.receive_request(request, now), self.dest, out)
        return out

    def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        headers: HeaderList = (),
        body: bytes = b"",
        content_type: str | None = None,
        now: float,
    ) -> list[object]:
        """Send a response (nothing happens once a final response was sent)."""
        if not self.can_respond:
            return []
        resp = make_response(
            self.request,
            status,
            reason,
            to_tag=self.local_tag,
            headers=[*headers, self.local.server_header],
            body=body,
            content_type=content_type,
        )
        out: list[object] = []
        wire(self.txn.send_response(resp, now), self.dest, out)
        return out


__all__ = [
    "ALLOW",
    "KNOWN_METHODS",
    "ClientMachine",
    "Credentials",
    "DialogId",
    "LocalParty",
    "Machine",
    "RequestCompleted",
    "Send",
    "ServerMachine",
    "ServerRequest",
    "Source",
    "hop_transport",
    "literal_hop",
    "wire",
]
