"""RFC 3261 §17 transactions as sans-I/O state machines.

A transaction never touches a socket or a clock. Every input carries ``now`` (seconds, any monotonic
origin) and every method returns a list of events for the owner to act on:
:class:`SendMessage` (put on the wire), :class:`ResponseReceived` (pass up to the TU),
:class:`TransactionTimeout` and :class:`TransactionTerminated`. Timers are plain deadlines: the owner
asks :meth:`next_deadline` and calls :meth:`poll` when it is reached. This makes every timer of the RFC
(A, B, D, E, F, G, H, I, J, K) testable with a fake clock.

Retransmission timers (A, E, G) only run on unreliable transports (UDP); on TCP the wait timers
D, I, J, K are zero as the RFC prescribes. The client INVITE transaction builds the ACK for a non-2xx
final response itself (§17.1.1.3). For 2xx the server INVITE transaction keeps retransmitting the
response until the dialog layer reports the ACK (§13.3.1.4), bounded by 64*T1 (RFC 6026 "Accepted").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .message import Headers, SipRequest, SipResponse


@dataclass(frozen=True)
class TimerConfig:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


class State(Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class SendMessage:
    message: SipRequest | SipResponse


@dataclass(frozen=True)
class ResponseReceived:
    response: SipResponse


@dataclass(frozen=True)
class TransactionTimeout:
    timer: str


@dataclass(frozen=True)
class TransactionTerminated:
    pass


Event = SendMessage | ResponseReceived | TransactionTimeout | TransactionTerminated


class _Base:
    def __init__(self, reliable: bool, timers: TimerConfig) -> None:
        self.reliable = reliable
        self.cfg = timers
        self.state = State.TERMINATED
        self.deadlines: dict[str, float] = {}
        self.intervals: dict[str, float] = {}

    def next_deadline(self) -> float | None:
        return min(self.deadlines.values()) if self.deadlines else None

    def _start(self, name: str, now: float, delay: float) -> None:
        self.deadlines[name] = now + delay
        self.intervals[name] = delay

    def _stop(self, *names: str) -> None:
        for n in names:
            self.deadlines.pop(n, None)

    def _terminate(self) -> list[Event]:
        self.state = State.TERMINATED
        self.deadlines.clear()
        return [TransactionTerminated()]

    def poll(self, now: float) -> list[Event]:
        """Fire every timer whose deadline is <= now (in deadline order)."""
        events: list[Event] = []
        while self.deadlines and self.state is not State.TERMINATED:
            name = min(self.deadlines, key=self.deadlines.__getitem__)
            if self.deadlines[name] > now:
                break
            del self.deadlines[name]
            events.extend(self._fire(name, now))
        return events

    def _fire(self, name: str, now: float) -> list[Event]:  # pragma: no cover - overridden
        raise NotImplementedError


class ClientTransaction(_Base):
    """Client INVITE (§17.1.1) or non-INVITE (§17.1.2) transaction for one request."""

    def __init__(self, request: SipRequest, *, reliable: bool = False, timers: TimerConfig = TimerConfig()):
        super().__init__(reliable, timers)
        self.request = request
        self.is_invite = request.method == "INVITE"
        self.branch = request.via.branch or ""
        self.method = request.method
        self.last_response: SipResponse | None = None
        self._ack: SipRequest | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.branch, self.method)

    def start(self, now: float) -> list[Event]:
        t1 = self.cfg.t1
        if self.is_invite:
            self.state = State.CALLING
            if not self.reliable:
                self._start("A", now, t1)
            self._start("B", now, 64 * t1)
        else:
            self.state = State.TRYING
            if not self.reliable:
                self._start("E", now, t1)
            self._start("F", now, 64 * t1)
        return [SendMessage(self.request)]

    def receive_response(self, response: SipResponse, now: float) -> list[Event]:
        code = response.status
        st = self.state
        if st is State.TERMINATED:
            return []
        if self.is_invite:
            if st in (State.CALLING, State.PROCEEDING):
                self.last_response = response
                if code < 200:
                    self.state = State.PROCEEDING
                    self._stop("A", "B")  # no timeout once the far end is proceeding (§17.1.1.2)
                    return [ResponseReceived(response)]
                if code < 300:
                    # ACK for 2xx belongs to the dialog (TU); transaction ends (§17.1.1.2).
                    return [ResponseReceived(response), *self._terminate()]
                self.state = State.COMPLETED
                self._stop("A", "B")
                self._ack = self.build_ack(response)
                self._start("D", now, 0 if self.reliable else 32.0)
                return [SendMessage(self._ack), ResponseReceived(response)]
            if st is State.COMPLETED and code >= 300 and self._ack is not None:
                return [SendMessage(self._ack)]  # final response retransmitted: re-ACK, absorb
            return []
        if st in (State.TRYING, State.PROCEEDING):
            self.last_response = response
            if code < 200:
                self.state = State.PROCEEDING
                return [ResponseReceived(response)]
            self.state = State.COMPLETED
            self._stop("E", "F")
            self._start("K", now, 0 if self.reliable else self.cfg.t4)
            return [ResponseReceived(response)]
        return []

    def build_ack(self, response: SipResponse) -> SipRequest:
        """ACK for a non-2xx final response: same branch, To from the response (§17.1.1.3)."""
        req = self.request
        h = Headers()
        h.add("Via", req.headers.get_all("Via")[0])
        for r in req.headers.get_all("Route"):
            h.add("Route", r)
        h.add("Max-Forwards", "70")
        h.add("From", req.headers.get("From") or "")
        h.add("To", response.headers.get("To") or "")
        h.add("Call-ID", req.headers.get("Call-ID") or "")
        h.add("CSeq", f"{req.cseq.number} ACK")
        return SipRequest(headers=h, method="ACK", uri=req.uri.copy())

    def transport_error(self) -> list[Event]:
        if self.state is State.TERMINATED:
            return []
        return [TransactionTimeout("transport"), *self._terminate()]

    def _fire(self, name: str, now: float) -> list[Event]:
        t2 = self.cfg.t2
        if name == "A" and self.state is State.CALLING:
            self._start("A", now, self.intervals["A"] * 2)
            return [SendMessage(self.request)]
        if name == "E" and self.state in (State.TRYING, State.PROCEEDING):
            nxt = t2 if self.state is State.PROCEEDING else min(self.intervals["E"] * 2, t2)
            self._start("E", now, nxt)
            return [SendMessage(self.request)]
        if name in ("B", "F"):
            return [TransactionTimeout(name), *self._terminate()]
        if name in ("D", "K"):
            return self._terminate()
        return []


class ServerTransaction(_Base):
    """Server INVITE (§17.2.1) or non-INVITE (§17.2.2) transaction for one received request."""

    def __init__(self, request: SipRequest, *, reliable: bool = False, timers: TimerConfig = TimerConfig()):
        super().__init__(reliable, timers)
        self.request = request
        self.is_invite = request.method == "INVITE"
        self.state = State.PROCEEDING if self.is_invite else State.TRYING
        self.last_response: SipResponse | None = None
        via = request.via
        self.branch = via.branch or ""
        self.sent_by = via.sent_by

    @property
    def key(self) -> tuple[str, str, str]:
        return server_key(self.branch, self.sent_by, self.request.method)

    @property
    def final_sent(self) -> bool:
        return self.last_response is not None and self.last_response.status >= 200

    def receive_request(self, request: SipRequest, now: float) -> list[Event]:
        """A retransmission of our request, or the ACK for a non-2xx final response."""
        st = self.state
        if request.method == "ACK":
            if self.is_invite and st is State.COMPLETED:
                self.state = State.CONFIRMED
                self._stop("G", "H")
                self._start("I", now, 0 if self.reliable else self.cfg.t4)
                return self.poll(now) if self.reliable else []
            if self.is_invite and st is State.ACCEPTED:
                return self.ack_2xx_received()
            return []
        if st in (State.PROCEEDING, State.TRYING) and self.last_response is not None:
            return [SendMessage(self.last_response)]
        if st in (State.COMPLETED, State.ACCEPTED) and self.last_response is not None:
            return [SendMessage(self.last_response)]
        return []

    def send_response(self, response: SipResponse, now: float) -> list[Event]:
        st = self.state
        code = response.status
        if st not in (State.PROCEEDING, State.TRYING):
            return []  # final already sent: the TU may not send another
        self.last_response = response
        events: list[Event] = [SendMessage(response)]
        t1 = self.cfg.t1
        if code < 200:
            self.state = State.PROCEEDING
            return events
        if self.is_invite:
            if code < 300:
                self.state = State.ACCEPTED
                if not self.reliable:
                    self._start("G2", now, t1)
                self._start("L", now, 64 * t1)
                return events
            self.state = State.COMPLETED
            if not self.reliable:
                self._start("G", now, t1)
            self._start("H", now, 64 * t1)
            return events
        self.state = State.COMPLETED
        self._start("J", now, 0 if self.reliable else 64 * t1)
        return events + (self.poll(now) if self.reliable else [])

    def ack_2xx_received(self) -> list[Event]:
        """The dialog layer matched the ACK for our 2xx: stop retransmitting."""
        if self.state is State.ACCEPTED:
            return self._terminate()
        return []

    def _fire(self, name: str, now: float) -> list[Event]:
        if name in ("G", "G2") and self.state in (State.COMPLETED, State.ACCEPTED) and self.last_response:
            self._start(name, now, min(self.intervals[name] * 2, self.cfg.t2))
            return [SendMessage(self.last_response)]
        if name in ("H", "L"):
            return [TransactionTimeout(name), *self._terminate()]  # no ACK ever came
        if name in ("I", "J"):
            return self._terminate()
        return []


def server_key(branch: str, sent_by: str, method: str) -> tuple[str, str, str]:
    """§17.2.3 matching key; the ACK for a non-2xx matches its INVITE transaction."""
    return (branch, sent_by, "INVITE" if method == "ACK" else method)
