"""The asyncio user agent: one :class:`SipEndpoint` per process, UDP and TCP on one port.

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
dropped and logged. No exception from the network path reaches the event loop.

Also: ``await call.info(body)``, ``await call.reinvite(sdp)``, ``await ep.request(method, uri, ...)``
for out-of-dialog non-INVITE requests (OPTIONS, MESSAGE, REGISTER; digest retry included). Server
side authentication of INVITEs: :func:`voipbin.sip.digest.authenticate_request` (proxy=True -> 407).

Not implemented (yet): 100rel/PRACK (a ``Require`` gets 420), session timers, UPDATE,
forked 2xx after the first, TLS, DNS SRV/NAPTR (A records and IP literals only), IPv6 sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from .dialog import Dialog, DialogState
from .digest import DigestChallenge, build_authorization
from .errors import SdpNegotiationError, SdpParseError, SipError, SipParseError
from .headers import Via
from .message import (
    REASONS,
    Headers,
    SipRequest,
    SipResponse,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
)
from .sdp import NegotiatedMedia, parse_answer
from .transaction import (
    ClientTransaction,
    ResponseReceived,
    SendMessage,
    ServerTransaction,
    State,
    TimerConfig,
    TransactionTerminated,
    TransactionTimeout,
    server_key,
)
from .transport import SipTransport, Source
from .uri import NameAddr, SipUri

log = logging.getLogger(__name__)
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly"}

KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK", "UPDATE", "SUBSCRIBE",
     "NOTIFY", "REFER", "MESSAGE", "PUBLISH"}
)  # fmt: skip
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER"

Credentials = tuple[str, str]
Handler = Callable[..., Any]


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


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

    def __init__(
        self,
        endpoint: SipEndpoint,
        dialog: Dialog,
        *,
        local_sdp: bytes,
        remote_sdp: bytes,
        peer: Source,
        transport: str,
        outgoing: bool,
    ) -> None:
        self.endpoint = endpoint
        self.dialog = dialog
        self.local_sdp = local_sdp
        self.remote_sdp = remote_sdp
        self.peer = peer  # where in-dialog requests go
        self.transport = transport
        self.outgoing = outgoing
        self.on_bye: Handler | None = None
        self.on_info: Handler | None = None
        self.on_reinvite: Handler | None = None
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.confirmed = asyncio.Event()  # ACK seen (UAS) / sent (UAC)
        self._ack: SipRequest | None = None  # our ACK for the 2xx (UAC), re-sent on 2xx retransmission
        self._invite_txn: ServerTransaction | None = None
        self._reinvite_pending = False
        self.media: NegotiatedMedia | None = None
        if outgoing:
            self.media = self._negotiated(remote_sdp, local_sdp)

    @staticmethod
    def _negotiated(answer: bytes, offer: bytes | None) -> NegotiatedMedia | None:
        if not answer:
            return None
        try:
            return parse_answer(answer, offer or None)
        except (SdpParseError, SdpNegotiationError) as exc:
            log.info("unusable remote SDP: %s", exc)
            return None

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    @property
    def is_active(self) -> bool:
        return not self.ended.done()

    def _end(self, reason: str) -> None:
        self.dialog.state = DialogState.TERMINATED
        self.endpoint._dialogs.pop(self.dialog.id, None)
        if not self.ended.done():
            self.ended.set_result(reason)

    async def request(
        self, method: str, *, body: bytes = b"", content_type: str | None = None, headers=None
    ) -> SipResponse:
        """Send an in-dialog non-INVITE/INVITE request and wait for its final response."""
        ep = self.endpoint
        req = self.dialog.create_request(
            method,
            via=ep._via(self.transport),
            contact=ep._contact(self.transport),
            body=body,
            content_type=content_type,
            headers=[*ep._ua_headers(), *(headers or [])],
        )
        return await ep._send_request(req, self.peer)

    async def bye(self) -> SipResponse | None:
        """Hang up. Returns the BYE's final response (None if the call had already ended)."""
        if self.ended.done():
            return None
        self.dialog.state = DialogState.TERMINATED
        self.endpoint._dialogs.pop(self.dialog.id, None)
        try:
            resp = await self.request("BYE")
        finally:
            self._end("local_bye")
        return resp

    async def info(self, body: bytes, content_type: str = "application/dtmf-relay") -> SipResponse:
        return await self.request("INFO", body=body, content_type=content_type)

    async def reinvite(self, sdp: bytes) -> SipResponse:
        """Send a re-INVITE with a new offer; on 2xx the remote SDP/target are updated and ACKed."""
        ep = self.endpoint
        req = self.dialog.create_request(
            "INVITE",
            via=ep._via(self.transport),
            contact=ep._contact(self.transport),
            body=sdp,
            content_type="application/sdp",
            headers=ep._ua_headers(),
        )
        self._reinvite_pending = True
        try:
            resp = await ep._send_request(req, self.peer)
        finally:
            self._reinvite_pending = False
        if 200 <= resp.status < 300:
            self.dialog.receive_response(resp)
            self.local_sdp = sdp
            if resp.body:
                self.remote_sdp = resp.body
                self.media = self._negotiated(resp.body, sdp)
            ack = self.dialog.create_ack(via=ep._via(self.transport), cseq=req.cseq.number)
            self._ack = ack
            ep._send_msg(ack, self.peer)
        return resp

    # --- incoming, called by the endpoint ---
    def _ack_received(self, ack: SipRequest) -> None:
        if self._invite_txn is not None:
            txn, self._invite_txn = self._invite_txn, None
            self.endpoint._process(txn, txn.ack_2xx_received())
        if ack.body and not self.remote_sdp:  # delayed offer: the answer arrives in the ACK
            self.remote_sdp = ack.body
            self.media = self._negotiated(ack.body, self.local_sdp)
        self.confirmed.set()

    async def _on_request(self, req: SipRequest, ctx: IncomingRequest) -> None:
        err = self.dialog.receive_request(req)
        if err:
            ctx.respond(err, "CSeq out of order")
            return
        method = req.method
        if method == "BYE":
            ctx.respond(200)
            self._end("remote_bye")
            await self._call_hook(self.on_bye, req)
        elif method == "INFO":
            await self._call_hook(self.on_info, req)
            if not ctx.final_sent:
                ctx.respond(200)
        elif method == "INVITE" and (self._reinvite_pending or self._invite_txn is not None):
            ctx.respond(491)  # glare: an offer/answer exchange is already in progress (RFC 3261 §14.2)
        elif method == "INVITE":
            answer: bytes | None = None
            if self.on_reinvite is not None:
                try:
                    answer = await _maybe_await(self.on_reinvite(req))
                except Exception:
                    log.exception("on_reinvite failed")
                    ctx.respond(500)
                    return
            if ctx.final_sent:
                return
            if req.body:
                self.remote_sdp = req.body
            if answer is not None:
                self.local_sdp = answer
            ctx.respond(
                200,
                headers=[("Contact", self.endpoint._contact(self.transport))],
                body=self.local_sdp,
                content_type="application/sdp",
            )
            assert isinstance(ctx.txn, ServerTransaction)
            self._invite_txn = ctx.txn
        elif method == "OPTIONS":
            ctx.respond(200, headers=[("Allow", ALLOW)])
        else:
            ctx.respond(405 if method in KNOWN_METHODS else 501, headers=[("Allow", ALLOW)])

    @staticmethod
    async def _call_hook(hook: Handler | None, req: SipRequest) -> None:
        if hook is None:
            return
        try:
            await _maybe_await(hook(req))
        except Exception:
            log.exception("call hook failed")


class IncomingRequest:
    """Server context of one received request: respond through it."""

    def __init__(self, endpoint: SipEndpoint, request: SipRequest, source: Source, txn: ServerTransaction):
        self.endpoint = endpoint
        self.request = request
        self.source = source
        self.txn = txn
        self.local_tag = new_tag()

    @property
    def final_sent(self) -> bool:
        return self.txn.final_sent

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
        if self.txn.state not in (State.TRYING, State.PROCEEDING):
            return None
        resp = make_response(
            self.request,
            status,
            reason,
            to_tag=self.local_tag,
            headers=[*headers, ("Server", self.endpoint.user_agent)],
            body=body,
            content_type=content_type,
        )
        self.endpoint._server_send(self.txn, resp)
        return resp


class IncomingInvite(IncomingRequest):
    def __init__(self, endpoint: SipEndpoint, request: SipRequest, source: Source, txn: ServerTransaction):
        super().__init__(endpoint, request, source, txn)
        self.cancelled = asyncio.Event()
        self.call: Call | None = None
        self.transport = source.transport

    @property
    def offer(self) -> bytes:
        return self.request.body

    def ringing(self) -> None:
        self.respond(180, headers=[("Contact", self.endpoint._contact(self.transport))])

    def progress(self, sdp: bytes) -> None:
        self.respond(
            183,
            headers=[("Contact", self.endpoint._contact(self.transport))],
            body=sdp,
            content_type="application/sdp",
        )

    def reject(self, status: int = 486, reason: str | None = None, headers: Iterable[tuple[str, str]] = ()):
        self.respond(status, reason, headers=headers)

    def answer(self, sdp: bytes, headers: Iterable[tuple[str, str]] = ()) -> Call:
        """Send 200 OK with ``sdp`` and return the established :class:`Call` (ACK tracked by it)."""
        if self.call is not None:
            return self.call
        if self.cancelled.is_set() or self.final_sent:
            raise SipError("INVITE already finished (cancelled or answered)")
        ep = self.endpoint
        dialog = Dialog.from_uas(self.request, self.local_tag)
        dialog.state = DialogState.CONFIRMED
        peer = self.source  # symmetric: in-dialog requests go back where the INVITE came from
        if dialog.route_set:
            with contextlib.suppress(ValueError):  # a named proxy: keep the source flow
                peer = ep._resolve_sync(dialog.next_hop(), self.transport)
        call = Call(
            ep,
            dialog,
            local_sdp=sdp,
            remote_sdp=self.request.body,
            peer=peer,
            transport=self.transport,
            outgoing=False,
        )
        if self.request.body:
            call.media = _media_from_offer(self.request.body, sdp)
        call._invite_txn = self.txn
        self.call = call
        ep._dialogs[dialog.id] = call
        self.respond(
            200,
            headers=[("Contact", ep._contact(self.transport)), *headers],
            body=sdp,
            content_type="application/sdp",
        )
        return call

    def _cancel(self) -> None:
        self.respond(487)
        self.cancelled.set()


def _media_from_offer(offer: bytes, answer: bytes) -> NegotiatedMedia | None:
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


class OutgoingInvite:
    """A pending outgoing INVITE: ``await`` it for the :class:`InviteResult`, ``cancel()`` to abort."""

    def __init__(self, endpoint: SipEndpoint, **kwargs: Any) -> None:
        self.endpoint = endpoint
        self._kw = kwargs
        self._cancel_requested = False
        self._cancel_sent = False
        self._finished = False
        self._provisional: SipResponse | None = None
        self._request: SipRequest | None = None
        self._dest: Source | None = None
        self.call_id: str = kwargs.get("call_id") or new_call_id(endpoint.public_host)
        self._task = asyncio.get_running_loop().create_task(self._run())
        endpoint._tasks.add(self._task)  # cancelled by endpoint.stop()
        self._task.add_done_callback(endpoint._tasks.discard)

    def __await__(self) -> Generator[Any, None, InviteResult]:
        return self._task.__await__()

    def cancel(self) -> None:
        """Request cancellation; the result becomes 487 unless the callee answered first."""
        self._cancel_requested = True
        if self._provisional is not None:
            self._send_cancel()

    def _send_cancel(self) -> None:
        if self._cancel_sent or self._request is None or self._dest is None:
            return
        self._cancel_sent = True
        inv = self._request
        h = Headers()
        h.add("Via", inv.headers.get_all("Via")[0])
        for r in inv.headers.get_all("Route"):
            h.add("Route", r)
        h.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            h.add(name, inv.headers.get(name) or "")
        h.add("CSeq", f"{inv.cseq.number} CANCEL")
        cancel = SipRequest(headers=h, method="CANCEL", uri=inv.uri.copy())
        self.endpoint._start_client(cancel, self._dest, lambda ev: None)

    async def _run(self) -> InviteResult:
        try:
            return await self._invite()
        except asyncio.CancelledError:
            self.cancel()
            raise
        finally:
            self._finished = True

    def _owner(self, req: SipRequest, queue: asyncio.Queue) -> Callable[[Any], None]:
        def owner(ev: Any) -> None:
            if not self._finished:
                queue.put_nowait(ev)
            elif isinstance(ev, ResponseReceived) and 200 <= ev.response.status < 300:
                # answered after we gave up (ring timeout / cancel race): ACK and hang up (§15)
                self.endpoint._spawn(self._hangup_late(req, ev.response))

        return owner

    async def _hangup_late(self, req: SipRequest, resp: SipResponse) -> None:
        try:
            result = await self._established(req, resp, self._kw["transport"])
            if result.call is not None:
                await result.call.bye()
        except (SipError, OSError) as exc:
            log.info("could not hang up late 2xx: %s", exc)

    async def _invite(self) -> InviteResult:
        ep = self.endpoint
        kw = self._kw
        request_uri = (
            SipUri.parse(kw["request_uri"]) if isinstance(kw["request_uri"], str) else kw["request_uri"]
        )
        transport: str = kw["transport"]
        try:
            self._dest = await ep._resolve(request_uri, transport)
        except (OSError, SipError) as exc:
            log.info("cannot resolve %s: %s", request_uri, exc)
            return InviteResult(503, "Service Unavailable (cannot resolve)")
        from_addr = NameAddr.parse(kw["from_uri"])
        from_addr.params["tag"] = new_tag()
        to_addr = NameAddr.parse(kw["to_uri"])
        credentials: Credentials | None = kw["credentials"]
        on_provisional = kw["on_provisional"]
        deadline = None if kw["timeout"] is None else time.monotonic() + kw["timeout"]
        cseq = 1
        auth_headers: list[tuple[str, str]] = []
        auth_tries = 0
        while True:
            h = Headers()
            h.add("Via", f"{ep._via(transport)};branch={new_branch()}")
            h.add("Max-Forwards", "70")
            h.add("From", str(from_addr))
            h.add("To", str(to_addr))
            h.add("Call-ID", self.call_id)
            h.add("CSeq", f"{cseq} INVITE")
            h.add("Contact", ep._contact(transport))
            for name, value in [*ep._ua_headers(), *auth_headers, *(kw["headers"] or [])]:
                h.add(name, value)
            if kw["sdp_offer"]:
                h.add("Content-Type", "application/sdp")
            req = SipRequest(headers=h, body=kw["sdp_offer"], method="INVITE", uri=request_uri)
            self._request = req
            self._provisional = None
            queue: asyncio.Queue = asyncio.Queue()
            ep._start_client(req, self._dest, self._owner(req, queue))
            while True:
                timeout = None
                if deadline is not None:
                    timeout = deadline - time.monotonic()
                    if self._cancel_sent:
                        timeout = max(timeout, 0) + 64 * ep.timers.t1
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    if self._cancel_sent or self._provisional is None:
                        return InviteResult(408, "Request Timeout")
                    self.cancel()
                    continue
                if isinstance(ev, TransactionTimeout):
                    if ev.timer == "transport":
                        return InviteResult(503, "Service Unavailable")
                    return InviteResult(408, "Request Timeout")
                assert isinstance(ev, ResponseReceived)
                resp = ev.response
                if resp.status < 200:
                    self._provisional = resp
                    if self._cancel_requested:
                        self._send_cancel()
                    elif on_provisional is not None:
                        try:
                            await _maybe_await(on_provisional(resp))
                        except Exception:
                            log.exception("on_provisional failed")
                    continue
                if resp.status < 300:
                    return await self._established(req, resp, transport)
                if (
                    resp.status in (401, 407)
                    and credentials
                    and auth_tries < 2
                    and not self._cancel_requested
                ):
                    new_auth = ep._authorize(req, resp, credentials)
                    if new_auth is not None:
                        auth_tries += 1
                        auth_headers = [new_auth]
                        cseq += 1
                        break
                return InviteResult(resp.status, resp.reason, None, resp)

    async def _established(self, req: SipRequest, resp: SipResponse, transport: str) -> InviteResult:
        ep = self.endpoint
        try:
            dialog = Dialog.from_uac(req, resp)
        except SipParseError as exc:
            log.info("bad 2xx to INVITE: %s", exc)
            return InviteResult(502, "Bad Gateway", None, resp)
        tp = dialog.next_hop().params.get("transport", transport).lower()
        tp = tp if tp in ("udp", "tcp") else transport
        peer = await ep._resolve(dialog.next_hop(), tp)
        call = Call(
            ep,
            dialog,
            local_sdp=req.body,
            remote_sdp=resp.body,
            peer=peer,
            transport=tp,
            outgoing=True,
        )
        ep._dialogs[dialog.id] = call
        call._ack = dialog.create_ack(via=ep._via(tp), cseq=req.cseq.number)
        ep._send_msg(call._ack, peer)
        call.confirmed.set()
        if self._cancel_requested:
            # answered while we were cancelling: hang up (RFC 3261 §9.1)
            await call.bye()
            return InviteResult(487, "Request Terminated", None, resp)
        return InviteResult(resp.status, resp.reason, call, resp)


class SipEndpoint:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5060,
        *,
        public_host: str | None = None,
        user_agent: str = "voipbin",
        on_request: Handler | None = None,
        accept_methods: Iterable[str] = ("INVITE", "REGISTER", "MESSAGE", "NOTIFY", "SUBSCRIBE"),
        timers: TimerConfig = TimerConfig(),
    ) -> None:
        self.host = host
        self.port = port
        self._public_host = public_host
        self.user_agent = user_agent
        self.on_request = on_request
        self.accept_methods = frozenset(accept_methods)
        self.timers = timers
        self.transport = SipTransport(host, port, self._on_message, self._on_transport_error)
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        self._server: dict[tuple[str, str, str], ServerTransaction] = {}
        self._txn_dest: dict[Any, Source] = {}
        self._txn_owner: dict[Any, Callable[[Any], None]] = {}
        self._txn_timer: dict[Any, asyncio.TimerHandle] = {}
        self._invites: dict[tuple[str, str, str], IncomingInvite] = {}
        self._dialogs: dict[tuple[str, str, str], Call] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def public_host(self) -> str:
        if self._public_host:
            return self._public_host
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.port = await self.transport.start()

    async def stop(self) -> None:
        for handle in self._txn_timer.values():
            handle.cancel()
        self._txn_timer.clear()
        for task in list(self._tasks):
            task.cancel()
        await self.transport.stop()

    # --- helpers used by calls / registration ---
    def _via(self, transport: str) -> str:
        return f"SIP/2.0/{transport.upper()} {self.public_host}:{self.port};rport"

    def _contact(self, transport: str, user: str = "voipbin") -> str:
        tp = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{user}@{self.public_host}:{self.port}{tp}>"

    def _ua_headers(self) -> list[tuple[str, str]]:
        return [("User-Agent", self.user_agent)]

    def _resolve_sync(self, uri: SipUri, transport: str) -> Source:
        host = uri.host.strip("[]")
        ipaddress.ip_address(host)  # ValueError for names: use _resolve
        tp = uri.params.get("transport", transport)
        tp = (tp or "udp").lower()
        return Source(host, uri.port or 5060, tp if tp in ("udp", "tcp") else transport)

    async def _resolve(self, uri: SipUri, transport: str) -> Source:
        try:
            return self._resolve_sync(uri, transport)
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(uri.host, uri.port or 5060, family=socket.AF_INET)  # no SRV/NAPTR
        if not infos:
            raise SipError(f"cannot resolve {uri.host}")
        tp = (uri.params.get("transport") or transport).lower()
        return Source(infos[0][4][0], uri.port or 5060, tp if tp in ("udp", "tcp") else transport)

    def _authorize(
        self, req: SipRequest, resp: SipResponse, credentials: Credentials
    ) -> tuple[str, str] | None:
        header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        out = "Authorization" if resp.status == 401 else "Proxy-Authorization"
        value = resp.headers.get(header)
        if not value:
            return None
        try:
            challenge = DigestChallenge.parse(value)
            return out, build_authorization(
                challenge,
                method=req.method,
                uri=str(req.uri),
                username=credentials[0],
                password=credentials[1],
                body=req.body,
            )
        except SipParseError as exc:
            log.info("cannot answer challenge: %s", exc)
            return None

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
        call_id = call_id or new_call_id(self.public_host)
        auth: list[tuple[str, str]] = []
        for _attempt in range(3):
            h = Headers()
            h.add("Via", f"{self._via(transport)};branch={new_branch()}")
            h.add("Max-Forwards", "70")
            h.add("From", str(frm))
            h.add("To", to_uri)
            h.add("Call-ID", call_id)
            h.add("CSeq", f"{cseq} {method}")
            for name, value in [*self._ua_headers(), *auth, *(headers or [])]:
                h.add(name, value)
            if body:
                h.add("Content-Type", content_type or "application/octet-stream")
            req = SipRequest(headers=h, body=body, method=method, uri=uri)
            resp = await self._send_request(req, dest)
            if resp.status in (401, 407) and credentials:
                new_auth = self._authorize(req, resp, credentials)
                if new_auth is not None and _attempt < 2:
                    auth = [new_auth]
                    cseq += 1
                    continue
            return resp
        return resp

    # --- transaction plumbing ---
    async def _send_request(self, req: SipRequest, dest: Source) -> SipResponse:
        """Run a client transaction to its final response (synthesises 408 on timeout)."""
        fut: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()

        def owner(ev: Any) -> None:
            if fut.done():
                return
            if isinstance(ev, ResponseReceived) and ev.response.status >= 200:
                fut.set_result(ev.response)
            elif isinstance(ev, TransactionTimeout):
                fut.set_result(make_response(req, 408))

        self._start_client(req, dest, owner)
        return await fut

    def _start_client(self, req: SipRequest, dest: Source, owner: Callable[[Any], None]) -> ClientTransaction:
        txn = ClientTransaction(req, reliable=dest.transport == "tcp", timers=self.timers)
        self._client[txn.key] = txn
        self._txn_dest[txn] = dest
        self._txn_owner[txn] = owner
        self._process(txn, txn.start(self._now()))
        return txn

    def _server_send(self, txn: ServerTransaction, resp: SipResponse) -> None:
        self._process(txn, txn.send_response(resp, self._now()))

    def _now(self) -> float:
        return (self._loop or asyncio.get_running_loop()).time()

    def _process(self, txn: Any, events: list) -> None:
        for ev in events:
            if isinstance(ev, SendMessage):
                dest = self._txn_dest.get(txn)
                if dest is not None:
                    self._send_msg(ev.message, dest)
            elif isinstance(ev, TransactionTerminated):
                self._forget(txn)
                return
            else:
                owner = self._txn_owner.get(txn)
                if owner is not None:
                    try:
                        owner(ev)
                    except Exception:
                        log.exception("transaction owner failed")
        self._schedule(txn)

    def _forget(self, txn: Any) -> None:
        handle = self._txn_timer.pop(txn, None)
        if handle:
            handle.cancel()
        if isinstance(txn, ClientTransaction):
            if self._client.get(txn.key) is txn:
                del self._client[txn.key]
        elif self._server.get(txn.key) is txn:
            del self._server[txn.key]
            self._invites.pop(txn.key, None)
        owner = self._txn_owner.pop(txn, None)
        self._txn_dest.pop(txn, None)
        if owner is not None and isinstance(txn, ServerTransaction):
            with contextlib.suppress(Exception):
                owner(TransactionTerminated())

    def _schedule(self, txn: Any) -> None:
        handle = self._txn_timer.pop(txn, None)
        if handle:
            handle.cancel()
        deadline = txn.next_deadline()
        if deadline is not None and self._loop is not None:
            self._txn_timer[txn] = self._loop.call_at(deadline, self._on_timer, txn)

    def _on_timer(self, txn: Any) -> None:
        self._txn_timer.pop(txn, None)
        try:
            self._process(txn, txn.poll(self._now()))
        except Exception:
            log.exception("transaction timer failed")

    def _on_transport_error(self, dest: Source) -> None:
        for txn, d in list(self._txn_dest.items()):
            if d == dest and isinstance(txn, ClientTransaction):
                self._process(txn, txn.transport_error())

    def _send_msg(self, msg: SipRequest | SipResponse, dest: Source) -> None:
        self.transport.send(msg.serialize(), dest)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- receive path ---
    def _on_message(self, data: bytes, source: Source) -> None:
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            partial = exc.partial
            if isinstance(partial, SipRequest) and partial.method != "ACK":
                self._reply_bad_request(partial, source, str(exc))
            else:
                log.info("dropping unparseable SIP from %s: %s", source, exc)
            return
        if isinstance(msg, SipResponse):
            self._on_response(msg)
        else:
            self._on_request(msg, source)

    def _reply_bad_request(self, req: SipRequest, source: Source, why: str) -> None:
        if not all(req.headers.get(n) for n in ("Via", "From", "To", "Call-ID", "CSeq")):
            log.info("dropping malformed request from %s: %s", source, why)
            return
        resp = make_response(req, 400, f"Bad Request ({why[:60]})".replace("\r", " ").replace("\n", " "))
        self._send_msg(resp, source)

    def _on_response(self, resp: SipResponse) -> None:
        via = resp.via
        txn = self._client.get((via.branch or "", resp.cseq.method))
        if txn is not None:
            self._process(txn, txn.receive_response(resp, self._now()))
            return
        if resp.cseq.method == "INVITE" and 200 <= resp.status < 300:
            # 2xx retransmission: our ACK got lost; re-send it (§13.2.2.4)
            call = self._dialogs.get((resp.call_id, resp.from_.tag or "", resp.to.tag or ""))
            if call is not None and call._ack is not None:
                self._send_msg(call._ack, call.peer)

    def _response_dest(self, req: SipRequest, source: Source) -> Source:
        if source.transport == "tcp":
            return source
        via = req.via
        if "rport" in via.params:
            return source
        return Source(source.ip, via.port or 5060, "udp")

    def _on_request(self, req: SipRequest, source: Source) -> None:
        # RFC 3261 §18.2.1 received / RFC 3581 rport on the top Via so responses find their way back
        vias = req.headers.get_all("Via")
        top = Via.parse(vias[0])  # a fresh object: we modify it
        changed = False
        if top.host != source.ip:
            top.params["received"] = source.ip
            changed = True
        if "rport" in top.params:
            top.params["rport"] = str(source.port)
            changed = True
        if changed:
            req.headers.remove("Via")
            for i, v in enumerate(vias):
                req.headers.add("Via", str(top) if i == 0 else v, first=False)
        key = server_key(top.branch or "", top.sent_by, req.method)
        now = self._now()
        if req.method == "ACK":
            txn = self._server.get(key)
            if txn is not None and txn.state is not State.ACCEPTED:
                self._process(txn, txn.receive_request(req, now))
                return
            call = self._dialogs.get((req.call_id, req.to.tag or "", req.from_.tag or ""))
            if call is not None:
                call._ack_received(req)
            return
        txn = self._server.get(key)
        if txn is not None:
            self._process(txn, txn.receive_request(req, now))  # retransmission
            return
        txn = ServerTransaction(req, reliable=source.transport == "tcp", timers=self.timers)
        self._server[txn.key] = txn
        self._txn_dest[txn] = self._response_dest(req, source)
        method = req.method
        if method == "INVITE":
            ctx: IncomingRequest = IncomingInvite(self, req, source, txn)
        else:
            ctx = IncomingRequest(self, req, source, txn)
        if method == "CANCEL":
            self._on_cancel(ctx, top.branch or "", top.sent_by)
            return
        require = req.headers.get_all("Require")
        if require and method != "CANCEL":
            # we implement no extensions (no 100rel, no timer): RFC 3261 §8.2.2.3
            ctx.respond(420, headers=[("Unsupported", ", ".join(require))])
            return
        if method == "INVITE" and not req.headers.get("Contact"):
            ctx.respond(400, "Bad Request (missing Contact)")
            return
        to_tag = req.to.tag
        if to_tag:
            call = self._dialogs.get((req.call_id, to_tag, req.from_.tag or ""))
            if call is None:
                if method == "OPTIONS":
                    ctx.respond(200, headers=[("Allow", ALLOW)])
                else:
                    ctx.respond(481)
                return
            if method == "INVITE":
                ctx.respond(100)
            self._spawn(call._on_request(req, ctx))
            return
        if method == "OPTIONS" and "OPTIONS" not in self.accept_methods:
            ctx.respond(200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")])
            return
        if method in ("INVITE", "REGISTER") or method in self.accept_methods:
            if method == "INVITE":
                assert isinstance(ctx, IncomingInvite)
                self._invites[txn.key] = ctx
                self._txn_owner[txn] = self._invite_owner(ctx)
                ctx.respond(100)
            if self.on_request is None:
                ctx.respond(480 if method == "INVITE" else 405, headers=[("Allow", ALLOW)])
                return
            self._spawn(self._run_handler(ctx))
            return
        if method in ("BYE", "INFO", "PRACK", "UPDATE"):
            ctx.respond(481)
        elif method in KNOWN_METHODS:
            ctx.respond(405, headers=[("Allow", ALLOW)])
        else:
            ctx.respond(501)

    def _invite_owner(self, ctx: IncomingInvite) -> Callable[[Any], None]:
        def owner(ev: Any) -> None:
            if isinstance(ev, TransactionTimeout) and ev.timer == "L" and ctx.call is not None:
                call = ctx.call
                if call._invite_txn is not None and not call.ended.done():
                    log.info("no ACK for 2xx on %s: hanging up", call.call_id)
                    call._invite_txn = None
                    self._spawn(call.bye())

        return owner

    async def _run_handler(self, ctx: IncomingRequest) -> None:
        try:
            await _maybe_await(self.on_request(ctx))  # type: ignore[misc]
        except Exception:
            log.exception("on_request handler failed for %s", ctx.request.method)
            ctx.respond(500)
            return
        if not isinstance(ctx, IncomingInvite) and not ctx.final_sent:
            ctx.respond(500, "Not Handled")

    def _on_cancel(self, ctx: IncomingRequest, branch: str, sent_by: str) -> None:
        inv = self._invites.get(server_key(branch, sent_by, "INVITE"))
        if inv is None:
            ctx.respond(481)
            return
        ctx.respond(200)
        if not inv.final_sent:
            inv._cancel()


__all__ = [
    "REASONS",
    "Call",
    "IncomingInvite",
    "IncomingRequest",
    "InviteResult",
    "OutgoingInvite",
    "SipEndpoint",
]
