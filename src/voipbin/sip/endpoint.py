"""The asyncio user agent: one :class:`SipEndpoint` per process, UDP and TCP on one port.

Why hand-written: there is no production-grade asyncio SIP stack on PyPI (the options are bindings
to C stacks with their own threads and event loops, or unmaintained toys), so voipbin has its own.
Like h11 and aioquic it is split into a sans-I/O core and this thin I/O shell:

- sans-I/O (no asyncio, no sockets, no clock; fed parsed messages and ``now``, tested with a fake
  clock): :mod:`.transaction` (RFC 3261 §17), :mod:`.invite_client` (outgoing INVITE: auth retry,
  CANCEL, late and forked 2xx), :mod:`.invite_server` (incoming INVITE: 1xx, 2xx, CANCEL),
  :mod:`.dialog_usage` (BYE, INFO, re-INVITE and glare, ACK, CSeq), :mod:`.non_invite` (REGISTER,
  OPTIONS, MESSAGE client), and :mod:`.user_agent`, which routes messages to those machines,
  answers what needs no application (481, 405, 420, ...) and keeps one heap of their deadlines.
- this shell: the transports (:mod:`.transport`), DNS resolution, ONE asyncio timer re-armed to
  the core's earliest deadline, and the awaitable API below, made from the machines' events.

Public API (everything else in this module is internal)::

    ep = SipEndpoint("127.0.0.1", 5060, public_host=None, user_agent="voipbin", on_request=handler)
    await ep.start()                       # binds UDP + TCP on the same port (0 = any free port)
    ...
    await ep.stop()

Outgoing calls::

    pending = ep.invite(request_uri, from_uri, to_uri, sdp_offer, credentials=("user", "pw"),
                        headers=[("X-Foo", "1")], transport="udp", on_provisional=cb, timeout=60)
    pending.cancel()                       # CANCEL (sent as soon as a provisional response arrived)
    result = await pending                 # InviteResult: .ok, .status, .reason, .call, .response
    if result.ok:
        call = result.call                 # Call: .remote_sdp, .media, .dialog, .ended (future)
        await call.bye()

401/407 challenges are answered automatically when ``credentials`` are given. A ring ``timeout``
cancels the INVITE; if nothing at all answers, Timer B gives 408.

Incoming requests go to ``on_request(ctx)`` (sync or async) for out-of-dialog INVITE, REGISTER and
the methods in ``accept_methods``. ``ctx.source`` is the :class:`~voipbin.sip.transport.Source`
(ip, port, transport) the request came from. For INVITE ``ctx`` is an :class:`IncomingInvite`:
``ctx.ringing()``, ``ctx.progress(sdp)``, ``ctx.answer(sdp) -> Call``, ``ctx.reject(486)``;
``ctx.cancelled`` (asyncio.Event) is set when the caller sends CANCEL (we answer 200 to the CANCEL and
487 to the INVITE). Other requests get ``ctx.respond(status, ...)``; a non-INVITE handler that returns
without responding gets 500.

In-dialog requests are handled by the :class:`Call`: BYE -> 200 + ``on_bye(request)`` and
``call.ended`` resolves; INFO -> ``on_info(request)`` (e.g. application/dtmf-relay) then 200;
re-INVITE -> ``on_reinvite(request)`` returns the answer SDP (None = keep the current one).
OPTIONS is answered 200 automatically; unknown methods get 501, known but unhandled ones 405.
Malformed requests are answered 400 when the headers needed for a response survived, otherwise
dropped and logged. No exception from the network path reaches the event loop. Hooks may be sync
or async; sync ones run inline (no task per message).

Also: ``await call.info(body)``, ``await call.reinvite(sdp)``, ``await ep.request(method, uri, ...)``
for out-of-dialog non-INVITE requests (OPTIONS, MESSAGE, REGISTER; digest retry included). Server
side authentication of INVITEs: :func:`voipbin.sip.digest.authenticate_request` (proxy=True -> 407).

Not implemented (yet): 100rel/PRACK (a ``Require`` gets 420), session timers, UPDATE, TLS,
DNS SRV/NAPTR (A/AAAA records and IP literals only).

IPv6: with ``host6`` (e.g. ``"::"`` or ``"::1"``) the endpoint also listens on IPv6, same port;
requests and responses to IPv6 peers carry ``public_host6`` (bracketed) in Via and Contact.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from .dialog import Dialog
from .dialog_usage import DialogConfirmed, DialogEnded, DialogUsage, InDialogRequest
from .errors import SipError
from .invite_client import HopNeeded, InviteClient, InviteFinished, InviteProvisional
from .invite_server import InviteCancelled, InviteServer
from .message import REASONS, SipRequest, SipResponse, new_call_id, new_tag
from .non_invite import RequestClient
from .sdp import NegotiatedMedia
from .transaction import ServerTransaction, TimerConfig
from .transport import SipTransport
from .ua_base import (
    ALLOW,
    KNOWN_METHODS,
    Credentials,
    LocalParty,
    RequestCompleted,
    Send,
    ServerRequest,
    Source,
    hop_transport,
    literal_hop,
)
from .uri import NameAddr, SipUri
from .user_agent import DEFAULT_ACCEPT, NewInvite, NewRequest, UserAgent

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
_Reply = asyncio.Future[SipResponse | None]

__all__ = [
    "ALLOW",
    "KNOWN_METHODS",
    "REASONS",
    "Call",
    "Credentials",
    "IncomingInvite",
    "IncomingRequest",
    "InviteResult",
    "OutgoingInvite",
    "SipEndpoint",
]


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("SIP hook failed", exc_info=task.exception())


@dataclass
class InviteResult:
    status: int
    reason: str
    call: Call | None = None
    response: SipResponse | None = None

    @property
    def ok(self) -> bool:
        return self.call is not None


class Call:
    """An established dialog (either direction) plus its SDP and in-dialog event hooks."""

    def __init__(self, endpoint: SipEndpoint, usage: DialogUsage) -> None:
        self.endpoint = endpoint
        self.usage = usage
        usage.owner = self
        self.on_bye: Handler | None = None
        self.on_info: Handler | None = None
        self.on_reinvite: Handler | None = None
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.confirmed = asyncio.Event()  # ACK seen (UAS) / sent (UAC)
        if usage.confirmed:
            self.confirmed.set()

    # --- state, kept by the dialog usage ---
    @property
    def dialog(self) -> Dialog:
        return self.usage.dialog

    @property
    def call_id(self) -> str:
        return self.usage.call_id

    @property
    def peer(self) -> Source:
        return self.usage.peer

    @property
    def transport(self) -> str:
        return self.usage.transport

    @property
    def outgoing(self) -> bool:
        return self.usage.outgoing

    @property
    def local_sdp(self) -> bytes:
        return self.usage.local_sdp

    @property
    def remote_sdp(self) -> bytes:
        return self.usage.remote_sdp

    @property
    def media(self) -> NegotiatedMedia | None:
        return self.usage.media

    @property
    def is_active(self) -> bool:
        return not self.ended.done()

    def _end(self, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)

    # --- outgoing requests ---
    async def _wait(self, action: Callable[[_Reply, float], list[object]]) -> SipResponse | None:
        ep = self.endpoint
        fut: _Reply = asyncio.get_running_loop().create_future()
        ep._ua.feed(self.usage, action(fut, ep._now()))
        ep._pump()
        return await fut

    async def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] | None = None,
    ) -> SipResponse:
        """Send an in-dialog request and wait for its final response (408 on timeout, 481 once ended)."""
        extra = list(headers or [])
        resp = await self._wait(
            lambda fut, now: self.usage.request(
                method, body=body, content_type=content_type, headers=extra, tag=fut, now=now
            )
        )
        if resp is None:
            raise SipError(f"call {self.call_id} has ended")
        return resp

    async def bye(self) -> SipResponse | None:
        """Hang up. Returns the BYE's final response (None if the call had already ended)."""
        if self.ended.done() or not self.usage.active:
            return None
        try:
            return await self._wait(lambda fut, now: self.usage.bye(tag=fut, now=now))
        finally:
            self._end("local_bye")

    async def info(self, body: bytes, content_type: str = "application/dtmf-relay") -> SipResponse:
        return await self.request("INFO", body=body, content_type=content_type)

    async def reinvite(self, sdp: bytes) -> SipResponse:
        """Send a re-INVITE with a new offer; on 2xx the remote SDP/target are updated and ACKed."""
        resp = await self._wait(lambda fut, now: self.usage.reinvite(sdp, tag=fut, now=now))
        if resp is None:
            raise SipError(f"call {self.call_id} has ended")
        return resp

    # --- incoming, from the endpoint ---
    def _on_request(self, server: ServerRequest) -> None:
        req = server.request
        method = req.method
        if method == "BYE":
            self.endpoint._run_hook(self.on_bye, req, None)
        elif method == "INFO":

            def info_done(_value: Any, _failed: bool) -> None:
                self.endpoint._respond(server, 200)

            self.endpoint._run_hook(self.on_info, req, info_done)
        elif method == "INVITE":

            def reinvite_done(answer: Any, failed: bool) -> None:
                ep = self.endpoint
                if failed:
                    ep._respond(server, 500)
                elif server.can_respond:
                    ep._ua.feed(self.usage, self.usage.answer_reinvite(server, answer, now=ep._now()))
                    ep._pump()

            if self.on_reinvite is None:
                reinvite_done(None, False)
            else:
                self.endpoint._run_hook(self.on_reinvite, req, reinvite_done, log_errors=True)


class IncomingRequest:
    """Server context of one received request: respond through it."""

    def __init__(self, endpoint: SipEndpoint, server: ServerRequest) -> None:
        self.endpoint = endpoint
        self.server = server
        server.owner = self

    @property
    def request(self) -> SipRequest:
        return self.server.request

    @property
    def source(self) -> Source:
        return self.server.source

    @property
    def txn(self) -> ServerTransaction:
        return self.server.txn

    @property
    def local_tag(self) -> str:
        return self.server.local_tag

    @property
    def final_sent(self) -> bool:
        return self.server.final_sent

    def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipResponse | None:
        """Send a response (ignored, returns None, if a final response was already sent)."""
        server = self.server
        if not server.can_respond:
            return None
        self.endpoint._respond(server, status, reason, headers=headers, body=body, content_type=content_type)
        return server.txn.last_response


class IncomingInvite(IncomingRequest):
    def __init__(self, endpoint: SipEndpoint, invite: InviteServer) -> None:
        super().__init__(endpoint, invite.server)
        self.invite = invite
        invite.owner = self
        self.cancelled = asyncio.Event()
        self.call: Call | None = None
        self.transport = invite.source.transport

    @property
    def offer(self) -> bytes:
        return self.server.request.body

    def _act(self, events: list[object]) -> None:
        ep = self.endpoint
        ep._ua.feed(self.invite, events)
        ep._pump()

    def ringing(self) -> None:
        self._act(self.invite.ringing(now=self.endpoint._now()))

    def progress(self, sdp: bytes) -> None:
        self._act(self.invite.progress(sdp, now=self.endpoint._now()))

    def reject(
        self, status: int = 486, reason: str | None = None, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        self._act(self.invite.reject(status, reason, headers, now=self.endpoint._now()))

    def answer(self, sdp: bytes, headers: Iterable[tuple[str, str]] = ()) -> Call:
        """Send 200 OK with ``sdp`` and return the established :class:`Call` (ACK tracked by it)."""
        if self.call is not None:
            return self.call
        if self.cancelled.is_set() or self.final_sent:
            raise SipError("INVITE already finished (cancelled or answered)")
        ep = self.endpoint
        usage = ep._ua.answer(self.invite, sdp, headers, now=ep._now())
        self.call = Call(ep, usage)
        ep._pump()
        return self.call


class OutgoingInvite:
    """A pending outgoing INVITE: ``await`` it for the :class:`InviteResult`, ``cancel()`` to abort."""

    def __init__(self, endpoint: SipEndpoint, **kwargs: Any) -> None:
        self.endpoint = endpoint
        self._kw = kwargs
        self._client: InviteClient | None = None
        self._cancel_requested = False
        self._callbacks: list[asyncio.Future[Any]] = []
        loop = asyncio.get_running_loop()
        self._result: asyncio.Future[InviteResult] = loop.create_future()
        self.call_id: str = kwargs.get("call_id") or new_call_id(endpoint.public_host)
        self._task = loop.create_task(self._run())
        endpoint._tasks.add(self._task)  # cancelled by endpoint.stop()
        self._task.add_done_callback(endpoint._tasks.discard)

    def __await__(self) -> Generator[Any, None, InviteResult]:
        return self._task.__await__()

    def cancel(self) -> None:
        """Request cancellation; the result becomes 487 unless the callee answered first."""
        self._cancel_requested = True
        client = self._client
        if client is not None:
            ep = self.endpoint
            ep._ua.feed(client, client.cancel(ep._now()))
            ep._pump()

    async def _run(self) -> InviteResult:
        try:
            result = await self._invite()
            for cb in self._callbacks:  # async on_provisional callbacks finish before the result
                with contextlib.suppress(Exception):
                    await cb
            return result
        except asyncio.CancelledError:
            self.cancel()
            raise

    async def _invite(self) -> InviteResult:
        ep = self.endpoint
        kw = self._kw
        uri = kw["request_uri"]
        request_uri = SipUri.parse(uri) if isinstance(uri, str) else uri
        try:
            dest = await ep._resolve(request_uri, kw["transport"])
        except SipError as exc:  # e.g. an IPv6 hop without SIP over IPv6
            log.info("cannot send to %s: %s", request_uri, exc)
            return InviteResult(503, f"Service Unavailable ({exc})")
        except OSError as exc:
            log.info("cannot resolve %s: %s", request_uri, exc)
            return InviteResult(503, "Service Unavailable (cannot resolve)")
        from_addr = NameAddr.parse(kw["from_uri"])
        from_addr.params["tag"] = new_tag()
        client = InviteClient(
            ep._local_for(dest),
            request_uri=request_uri,
            from_addr=from_addr,
            to_addr=NameAddr.parse(kw["to_uri"]),
            call_id=self.call_id,
            sdp=kw["sdp_offer"],
            dest=dest,
            credentials=kw["credentials"],
            headers=kw["headers"] or (),
            ring_timeout=kw["timeout"],
            timers=ep.timers,
        )
        client.owner = self
        self._client = client
        now = ep._now()
        events = client.start(now)
        if self._cancel_requested:
            events.extend(client.cancel(now))
        ep._ua.add(client, events)
        ep._pump()
        return await self._result

    # --- from the endpoint ---
    def _provisional(self, resp: SipResponse) -> None:
        cb = self._kw["on_provisional"]
        if cb is None:
            return
        try:
            value = cb(resp)
        except Exception:
            log.exception("on_provisional failed")
            return
        if inspect.isawaitable(value):
            fut = asyncio.ensure_future(value)
            fut.add_done_callback(_log_failure)
            self._callbacks.append(fut)

    def _finished(self, ev: InviteFinished) -> None:
        ep = self.endpoint
        call = Call(ep, ev.usage) if ev.usage is not None else None
        if self._result.done():  # nobody waits any more (task cancelled): do not leave a call up
            if call is not None:
                ep._spawn(call.bye())
            return
        self._result.set_result(InviteResult(ev.status, ev.reason, call, ev.response))


class SipEndpoint:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5060,
        *,
        public_host: str | None = None,
        host6: str | None = None,
        public_host6: str | None = None,
        ipv6_optional: bool = False,
        user_agent: str = "voipbin",
        on_request: Handler | None = None,
        accept_methods: Iterable[str] = DEFAULT_ACCEPT,
        timers: TimerConfig = TimerConfig(),
    ) -> None:
        self.host = host
        self.port = port
        self._public_host = public_host
        self.host6 = host6
        self._public_host6 = public_host6
        self.user_agent = user_agent
        self.on_request = on_request
        self.timers = timers
        self.transport = SipTransport(
            host, port, self._on_message, self._on_transport_error, host6=host6, host6_optional=ipv6_optional
        )
        self._local = LocalParty(self.public_host, port, user_agent)
        self._local6: LocalParty | None = None
        self._ua = UserAgent(self._local, timers=timers, accept_methods=accept_methods)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._pumping = False
        self._dispatch: dict[type, Callable[[Any], None]] = {
            NewInvite: self._on_new_invite,
            NewRequest: self._on_new_request,
            InviteCancelled: lambda ev: ev.server.owner.cancelled.set(),
            InviteProvisional: lambda ev: ev.client.owner._provisional(ev.response),
            InviteFinished: lambda ev: ev.client.owner._finished(ev),
            HopNeeded: self._on_hop_needed,
            RequestCompleted: self._on_completed,
            InDialogRequest: lambda ev: ev.usage.owner._on_request(ev.server),
            DialogConfirmed: lambda ev: ev.usage.owner.confirmed.set(),
            DialogEnded: lambda ev: ev.usage.owner._end(ev.reason),
        }

    @property
    def public_host(self) -> str:
        if self._public_host:
            return self._public_host
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    @property
    def public_host6(self) -> str | None:
        """Our address for IPv6 peers (None when we do not listen on IPv6)."""
        if not self.host6 or not self.transport.ipv6:
            return None
        if self._public_host6:
            return self._public_host6
        return "::1" if self.host6 == "::" else self.host6

    @property
    def sdp_host6(self) -> str | None:
        """``public_host6`` as configured, for SDP (None: callers use their route's source address)."""
        return self._public_host6

    @property
    def ipv6(self) -> bool:
        """Whether IPv6 peers can be reached (an IPv6 socket is bound)."""
        return self.transport.ipv6

    @property
    def accept_methods(self) -> frozenset[str]:
        return self._ua.accept_methods

    @accept_methods.setter
    def accept_methods(self, methods: Iterable[str]) -> None:
        self._ua.accept_methods = frozenset(methods)

    @property
    def _dialogs(self) -> dict[tuple[str, str, str], DialogUsage]:
        return self._ua.dialogs

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.port = await self.transport.start()
        self._local = LocalParty(self.public_host, self.port, self.user_agent)
        self._ua.local = self._local
        six = self.public_host6 if self.transport.ipv6 else None
        self._local6 = LocalParty(six, self.port, self.user_agent) if six else None
        self._ua.local6 = self._local6

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        self._loop = None
        await self.transport.stop()

    # --- helpers used by calls / registration ---
    def _via(self, transport: str) -> str:
        return self._local.via(transport)

    def _contact(self, transport: str, user: str = "voipbin", towards: str = "") -> str:
        """Our Contact for requests to the host ``towards`` (an IPv6 literal gets our IPv6 one)."""
        return self._ua.local_for(towards.strip("[]")).contact(transport, user)

    def _local_for(self, dest: Source) -> LocalParty:
        return self._ua.local_for(dest.ip)

    def _ua_headers(self) -> list[tuple[str, str]]:
        return [("User-Agent", self.user_agent)]

    def _resolve_sync(self, uri: SipUri, transport: str) -> Source:
        src = literal_hop(uri, transport)
        if src is None:
            raise ValueError(f"{uri.host} is not an IP address")
        return src

    async def _resolve(self, uri: SipUri, transport: str) -> Source:
        """The next hop for ``uri``; an IPv6 hop only when we listen on IPv6 (else SipError)."""
        src = literal_hop(uri, transport)
        if src is None:
            loop = asyncio.get_running_loop()
            family = socket.AF_UNSPEC if self.transport.ipv6 else socket.AF_INET
            infos = await loop.getaddrinfo(uri.host, uri.port or 5060, family=family, type=socket.SOCK_DGRAM)
            if not infos:
                raise SipError(f"cannot resolve {uri.host}")
            infos.sort(key=lambda info: info[0] != socket.AF_INET)  # no SRV/NAPTR; IPv4 first
            src = Source(str(infos[0][4][0]), uri.port or 5060, hop_transport(uri, transport))
        if ":" in src.ip and not self.transport.ipv6:
            raise SipError(f"{uri.host} is an IPv6 address and SIP over IPv6 is not enabled")
        return src

    async def resolve(self, uri: str | SipUri, transport: str = "udp") -> Source:
        """Where a request to ``uri`` would go (the dialer picks the SDP's address family by it)."""
        return await self._resolve(SipUri.parse(uri) if isinstance(uri, str) else uri, transport)

    # --- public API ---
    def invite(
        self,
        request_uri: str | SipUri,
        from_uri: str,
        to_uri: str,
        sdp_offer: bytes,
        *,
        credentials: Credentials | None = None,
        headers: list[tuple[str, str]] | None = None,
        transport: str = "udp",
        on_provisional: Handler | None = None,
        timeout: float | None = None,
        call_id: str | None = None,
    ) -> OutgoingInvite:
        return OutgoingInvite(
            self,
            request_uri=request_uri,
            from_uri=from_uri,
            to_uri=to_uri,
            sdp_offer=sdp_offer,
            credentials=credentials,
            headers=headers,
            transport=transport.lower(),
            on_provisional=on_provisional,
            timeout=timeout,
            call_id=call_id,
        )

    async def request(
        self,
        method: str,
        request_uri: str | SipUri,
        *,
        from_uri: str,
        to_uri: str,
        credentials: Credentials | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        transport: str = "udp",
        call_id: str | None = None,
        cseq: int = 1,
        from_tag: str | None = None,
    ) -> SipResponse:
        """Out-of-dialog non-INVITE request (REGISTER, OPTIONS, MESSAGE) with digest retry.

        Returns the final response; a timeout is reported as a locally made 408 response. The CSeq
        actually used last is in the response's CSeq header (auth retries increment it).
        """
        uri = SipUri.parse(request_uri) if isinstance(request_uri, str) else request_uri
        dest = await self._resolve(uri, transport)
        frm = NameAddr.parse(from_uri)
        frm.params["tag"] = from_tag or new_tag()
        fut: asyncio.Future[SipResponse | None] = asyncio.get_running_loop().create_future()
        client = RequestClient(
            self._local_for(dest),
            method=method,
            request_uri=uri,
            from_addr=frm,
            to_uri=to_uri,
            call_id=call_id or new_call_id(self.public_host),
            dest=dest,
            cseq=cseq,
            credentials=credentials,
            headers=headers or (),
            body=body,
            content_type=content_type,
            timers=self.timers,
            tag=fut,
        )
        self._ua.add(client, client.start(self._now()))
        self._pump()
        resp = await fut
        assert resp is not None
        return resp

    # --- the one timer and the event pump ---
    def _now(self) -> float:
        return (self._loop or asyncio.get_running_loop()).time()

    def _pump(self) -> None:
        """Send what the core queued and turn its events into futures/callbacks; re-arm the timer."""
        if self._pumping:
            return  # an event handler acted on a machine: the outer loop picks the new events up
        self._pumping = True
        ua = self._ua
        send = self.transport.send
        dispatch = self._dispatch
        try:
            while True:
                events = ua.take_events()
                if not events:
                    break
                for ev in events:
                    if type(ev) is Send:
                        send(ev.message.serialize(), ev.dest)
                        continue
                    try:
                        dispatch[type(ev)](ev)
                    except Exception:
                        log.exception("SIP event handler failed for %s", type(ev).__name__)
        finally:
            self._pumping = False
        self._arm()

    def _arm(self) -> None:
        loop = self._loop
        when = self._ua.get_timer()
        if when is None or loop is None:
            return
        if self._timer is not None:
            if self._timer_at <= when:
                return  # fires first anyway; it re-arms for the rest
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = max(self._now(), self._timer_at)  # call_at may fire a clock tick early
        try:
            self._ua.handle_timer(now)
        except Exception:
            log.exception("SIP timer failed")
        self._pump()

    def _on_message(self, data: bytes, source: Source) -> None:
        self._ua.receive_datagram(data, source, self._now())
        self._pump()

    def _on_transport_error(self, dest: Source) -> None:
        self._ua.transport_error(dest, self._now())
        self._pump()

    def _respond(
        self,
        server: ServerRequest,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        ct = content_type
        self._ua.respond(server, status, reason, headers=headers, body=body, content_type=ct, now=self._now())
        self._pump()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run_hook(
        self,
        hook: Handler | None,
        arg: Any,
        then: Callable[[Any, bool], None] | None,
        *,
        log_errors: bool = True,
    ) -> None:
        """Call a sync-or-async hook; ``then(value, failed)`` runs when it is done."""
        if hook is None:
            if then is not None:
                then(None, False)
            return
        try:
            value = hook(arg)
        except Exception:
            log.exception("SIP hook failed")
            if then is not None:
                then(None, True)
            return
        if not inspect.isawaitable(value):
            if then is not None:
                then(value, False)
            return

        async def finish(awaitable: Awaitable[Any]) -> None:
            try:
                result = await awaitable
            except Exception:
                log.exception("SIP hook failed")
                if then is not None:
                    then(None, True)
                return
            if then is not None:
                then(result, False)

        self._spawn(finish(value))

    # --- events from the core ---
    def _on_new_invite(self, ev: NewInvite) -> None:
        ctx = IncomingInvite(self, ev.server)
        if self.on_request is None:
            ctx.respond(480, headers=[("Allow", ALLOW)])
            return

        def done(_value: Any, failed: bool) -> None:
            if failed:
                ctx.respond(500)

        self._run_hook(self.on_request, ctx, done)

    def _on_new_request(self, ev: NewRequest) -> None:
        ctx = IncomingRequest(self, ev.server)
        if self.on_request is None:
            ctx.respond(405, headers=[("Allow", ALLOW)])
            return

        def done(_value: Any, failed: bool) -> None:
            if failed:
                ctx.respond(500)
            elif not ctx.final_sent:
                ctx.respond(500, "Not Handled")

        self._run_hook(self.on_request, ctx, done)

    def _on_hop_needed(self, ev: HopNeeded) -> None:
        client = ev.client

        async def resolve() -> None:
            try:
                peer: Source | None = await self._resolve(ev.uri, ev.transport)
            except (OSError, SipError) as exc:
                log.info("cannot resolve %s: %s", ev.uri, exc)
                peer = None
            self._ua.feed(client, client.hop_resolved(peer, self._now()))
            self._pump()

        self._spawn(resolve())

    def _on_completed(self, ev: RequestCompleted) -> None:
        fut = ev.tag
        if isinstance(fut, asyncio.Future) and not fut.done():
            fut.set_result(ev.response)
