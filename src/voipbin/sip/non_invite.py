"""Out-of-dialog non-INVITE client procedure (REGISTER, OPTIONS, MESSAGE) as a sans-I/O machine.

:class:`RequestClient` sends one request, answers 401/407 with digest credentials (new CSeq, same
Call-ID and From tag, :class:`~voipbin.sip.digest.DigestClient` retry policy) and reports the final
response as :class:`~voipbin.sip.ua_base.RequestCompleted`; a timeout (Timer F) or a transport
failure is reported as a locally made 408.
"""

from __future__ import annotations

from collections.abc import Sequence

from .digest import DigestClient
from .message import Headers, SipRequest, SipResponse, make_response, new_branch
from .transaction import ClientTransaction, ResponseReceived, TimerConfig, TransactionTimeout
from .transaction import Event as TxnEvent
from .ua_base import Credentials, LocalParty, RequestCompleted, Source, wire
from .uri import NameAddr, SipUri


class RequestClient:
    def __init__(
        self,
        local: LocalParty,
        *,
        method: str,
        request_uri: SipUri,
        from_addr: NameAddr,
        to_uri: str,
        call_id: str,
        dest: Source,
        cseq: int = 1,
        credentials: Credentials | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        timers: TimerConfig = TimerConfig(),
        tag: object = None,
    ) -> None:
        self.local = local
        self.method = method
        self.request_uri = request_uri
        self.from_addr = str(from_addr)
        self.to_uri = to_uri
        self.call_id = call_id
        self.dest = dest
        self.cseq = cseq
        self.auth = DigestClient(*credentials) if credentials else None
        self.extra_headers = list(headers)
        self.body = body
        self.content_type = content_type
        self.timers = timers
        self.tag = tag
        self.owner: object = None
        self.request: SipRequest | None = None
        self.response: SipResponse | None = None
        self._txn: ClientTransaction | None = None

    @property
    def finished(self) -> bool:
        return self.response is not None

    def next_deadline(self) -> float | None:
        return self._txn.next_deadline() if self._txn is not None else None

    def _build(self) -> SipRequest:
        h = Headers()
        h.add("Via", f"{self.local.via(self.dest.transport)};branch={new_branch()}")
        h.add("Max-Forwards", "70")
        h.add("From", self.from_addr)
        h.add("To", self.to_uri)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self.cseq} {self.method}")
        extra = [self.local.ua_header, *(self.auth.headers if self.auth else ()), *self.extra_headers]
        for name, value in extra:
            h.add(name, value)
        if self.body:
            h.add("Content-Type", self.content_type or "application/octet-stream")
        return SipRequest(headers=h, body=self.body, method=self.method, uri=self.request_uri)

    def start(self, now: float) -> list[object]:
        self.request = self._build()
        self._txn = ClientTransaction(self.request, reliable=self.dest.transport == "tcp", timers=self.timers)
        out: list[object] = []
        wire(self._txn.start(now), self.dest, out)
        return out

    def _run(self, txn: ClientTransaction, events: list[TxnEvent], now: float) -> list[object]:
        out: list[object] = []
        for ev in wire(events, self.dest, out):
            if isinstance(ev, ResponseReceived) and ev.response.status >= 200:
                out.extend(self._final(ev.response, now))
            elif isinstance(ev, TransactionTimeout) and self.request is not None:
                out.extend(self._done(make_response(self.request, 408)))
        return out

    def _final(self, resp: SipResponse, now: float) -> list[object]:
        auth, req = self.auth, self.request
        if resp.status in (401, 407) and auth is not None and req is not None and auth.answer(req, resp):
            self.cseq += 1
            return self.start(now)
        return self._done(resp)

    def _done(self, resp: SipResponse) -> list[object]:
        self.response = resp
        self._txn = None  # the transaction's Completed state only absorbs retransmissions: drop it
        return [RequestCompleted(self, self.tag, resp)]

    def receive_response(self, resp: SipResponse, now: float) -> list[object]:
        txn = self._txn
        if txn is None or resp.via.branch != txn.branch:
            return []  # retransmission for an earlier attempt
        return self._run(txn, txn.receive_response(resp, now), now)

    def handle_timer(self, now: float) -> list[object]:
        txn = self._txn
        if txn is None:
            return []
        return self._run(txn, txn.poll(now), now)

    def transport_error(self, dest: Source, now: float) -> list[object]:
        txn = self._txn
        if txn is None or dest != self.dest:
            return []
        return self._run(txn, txn.transport_error(), now)
