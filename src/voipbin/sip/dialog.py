"""Dialog state (RFC 3261 §12): identifiers, CSeq spaces, route set and remote target.

Sans-I/O like the transactions: a :class:`Dialog` only builds and checks messages. It creates
in-dialog requests (BYE, re-INVITE, INFO, the ACK for a 2xx) with the right Request-URI and Route
headers for both loose and strict routing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum

from .errors import SipParseError
from .message import Headers, SipRequest, SipResponse, new_branch
from .uri import NameAddr, SipUri


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr  # our From (UAC) / To (UAS), without tag
    remote_uri: NameAddr
    local_seq: int
    remote_seq: int | None
    remote_target: SipUri
    route_set: list[NameAddr] = field(default_factory=list)
    is_uac: bool = True
    state: DialogState = DialogState.CONFIRMED
    invite_cseq: int = 0  # CSeq number of the INVITE that created / last refreshed the dialog

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_uac(cls, invite: SipRequest, response: SipResponse) -> Dialog:
        """UAC side, from our INVITE and a 2xx/1xx-with-tag response (§12.1.2)."""
        to = response.to
        frm = invite.from_
        if not to.tag or not frm.tag:
            raise SipParseError("dialog-creating response without tags")
        contacts = response.contacts
        target = contacts[0].uri if contacts else invite.uri.copy()
        routes = [NameAddr.parse(v) for v in reversed(response.headers.get_all("Record-Route"))]
        local, remote = frm.copy(), to.copy()
        local.params.pop("tag", None)
        remote.params.pop("tag", None)
        cseq = invite.cseq.number
        state = DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY
        return cls(
            invite.call_id, frm.tag, to.tag, local, remote, cseq, None, target, routes, True, state, cseq
        )

    @classmethod
    def from_uas(cls, invite: SipRequest, local_tag: str) -> Dialog:
        """UAS side, when we send a 2xx/1xx with ``local_tag`` (§12.1.1)."""
        frm = invite.from_
        if not frm.tag:
            raise SipParseError("INVITE without From tag")
        contacts = invite.contacts
        if not contacts:
            raise SipParseError("INVITE without Contact")
        routes = [NameAddr.parse(v) for v in invite.headers.get_all("Record-Route")]
        local, remote = invite.to.copy(), frm.copy()
        local.params.pop("tag", None)
        remote.params.pop("tag", None)
        cseq = invite.cseq.number
        # Our own CSeq space starts at a random value (§8.1.1.5).
        return cls(
            invite.call_id,
            local_tag,
            frm.tag,
            local,
            remote,
            secrets.randbelow(10000) + 1,
            cseq,
            contacts[0].uri,
            routes,
            False,
            DialogState.EARLY,
            cseq,
        )

    def next_hop(self) -> SipUri:
        """Where to send in-dialog requests: the first route if any, else the remote target."""
        if self.route_set:
            return self.route_set[0].uri
        return self.remote_target

    def create_request(
        self,
        method: str,
        *,
        via: str,
        contact: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> SipRequest:
        """Build an in-dialog request (§12.2.1.1). ``via`` is ``SIP/2.0/UDP host:port;rport`` (no branch)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        h = Headers()
        h.add("Via", f"{via};branch={new_branch()}")
        uri = self.remote_target.copy()
        routes = list(self.route_set)
        if routes and "lr" not in routes[0].uri.params:
            # strict router: it goes in the Request-URI, remote target appended as last Route
            uri = routes[0].uri.copy()
            routes = [*routes[1:], NameAddr(self.remote_target.copy())]
        for r in routes:
            h.add("Route", str(r))
        h.add("Max-Forwards", "70")
        frm = self.local_uri.copy()
        frm.params["tag"] = self.local_tag
        to = self.remote_uri.copy()
        to.params["tag"] = self.remote_tag
        h.add("From", str(frm))
        h.add("To", str(to))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        if contact and method in ("INVITE", "UPDATE"):
            h.add("Contact", contact)
        for name, value in headers or []:
            h.add(name, value)
        if body:
            h.add("Content-Type", content_type or "application/sdp")
        if method == "INVITE":
            self.invite_cseq = cseq
        return SipRequest(headers=h, body=body, method=method, uri=uri)

    def create_ack(self, *, via: str, cseq: int | None = None, body: bytes = b"") -> SipRequest:
        """ACK for a 2xx to INVITE: new branch, CSeq number of the INVITE (§13.2.2.4)."""
        return self.create_request("ACK", via=via, cseq=cseq or self.invite_cseq, body=body)

    def receive_request(self, request: SipRequest) -> int | None:
        """Check an in-dialog request. Returns an error status (500 for CSeq out of order) or None."""
        num = request.cseq.number
        if request.method in ("ACK", "CANCEL"):
            return None
        if self.remote_seq is not None and num <= self.remote_seq:
            return 500
        self.remote_seq = num
        if request.method in ("INVITE", "UPDATE"):
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri  # target refresh (§12.2.2)
        return None

    def receive_response(self, response: SipResponse) -> None:
        """Target refresh from a 2xx to our re-INVITE."""
        if response.cseq.method == "INVITE" and 200 <= response.status < 300:
            contacts = response.contacts
            if contacts:
                self.remote_target = contacts[0].uri
            self.state = DialogState.CONFIRMED

    def matches(self, msg: SipRequest | SipResponse) -> bool:
        try:
            if msg.call_id != self.call_id:
                return False
            if isinstance(msg, SipRequest):
                return msg.to.tag == self.local_tag and msg.from_.tag == self.remote_tag
            return msg.from_.tag == self.local_tag and msg.to.tag == self.remote_tag
        except SipParseError:
            return False
