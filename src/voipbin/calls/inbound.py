"""Inbound routing and authentication of INVITEs.

- An INVITE to a number one of our customers owns runs the number's ``call_flow_id``.
- An authenticated INVITE from a customer's extension is routed to one of our numbers (its flow runs,
  the extension is the caller), another extension, a ``tel`` number or a ``sip:`` target (bridged).
- Anything else is refused (403/404): never an open relay.
- An offer we cannot carry (no audio over plain RTP, no PCMU/PCMA, no IP-literal address of a family
  we have) is refused with 488 and a ``Warning`` header before ringing: never a 200 and a dead call.
"""

from __future__ import annotations

import functools
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from voipbin.calls.bridging import Bridging
from voipbin.calls.control import LiveCall
from voipbin.calls.dialer import Dialer
from voipbin.calls.lifecycle import Legs
from voipbin.calls.records import CallRecords
from voipbin.calls.registrations import Registrations
from voipbin.calls.state import HangupReason, Status
from voipbin.models.address import TEL_RE
from voipbin.sip.endpoint import IncomingInvite
from voipbin.sip.errors import SdpNegotiationError, SdpParseError
from voipbin.sip.sdp import check_offer, warning_header
from voipbin.sip.uri import SipUri
from voipbin.store.tables import Number

RunFlow = Callable[[LiveCall], Awaitable[None]]


def caller_address(caller: SipUri) -> dict[str, Any]:
    """VoIPBIN address of an incoming call's From URI: ``tel`` for an E.164 user, else ``sip``."""
    if TEL_RE.match(caller.user or ""):
        return {"type": "tel", "target": caller.user or ""}
    return {"type": "sip", "target": f"{caller.user}@{caller.host}" if caller.user else str(caller.host)}


@functools.cache
def media_families() -> tuple[int, ...]:
    """IP versions our RTP sockets can use on this host (IPv6 only if a UDP socket binds ``::``)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::", 0))
    except OSError:
        return (4,)
    return (4, 6)


class Inbound:
    def __init__(
        self,
        records: CallRecords,
        registrations: Registrations,
        dialer: Dialer,
        bridging: Bridging,
        legs: Legs,
        run_flow: RunFlow,
        *,
        public_host: Callable[[], str],
    ) -> None:
        self.records = records
        self.registrations = registrations
        self.dialer = dialer
        self.bridging = bridging
        self.legs = legs
        self.run_flow = run_flow
        self.public_host = public_host

    async def on_invite(self, ctx: IncomingInvite) -> None:
        caller_host = (ctx.request.from_.uri.host or "").lower()
        customer_id = await self.registrations.customer_for_domain(caller_host)
        if customer_id is not None:
            await self._from_extension(ctx, caller_host, customer_id)
            return
        user = ctx.request.uri.user or ""
        number = await self.registrations.number_owner(user) if TEL_RE.match(user) else None
        if number is not None:
            await self.to_number(ctx, number)
            return
        # Not one of our numbers and not an authenticated extension: never relay.
        ctx.reject(404, "Not Found")

    def refuse_unusable_offer(self, ctx: IncomingInvite) -> bool:
        """488 Not Acceptable Here (with a Warning) for an offer we cannot serve; True if refused.

        An INVITE without a body (offer in the ACK) is left to the answer path, as before."""
        if not ctx.offer.strip():
            return False
        try:
            check_offer(ctx.offer, families=media_families())
        except SdpParseError as exc:
            err = SdpNegotiationError(f"unreadable SDP: {exc}", warn_code=399)
        except SdpNegotiationError as exc:
            err = exc
        else:
            return False
        ctx.reject(488, "Not Acceptable Here", headers=[warning_header(err, self.public_host())])
        return True

    async def _from_extension(self, ctx: IncomingInvite, domain: str, customer_id: uuid.UUID) -> None:
        """A registered extension places a call: authenticate, then route and bridge (or run a flow)."""
        check = await self.registrations.authenticate_extension(ctx.request, domain, customer_id)
        if not check.ok:
            ctx.reject(check.status, check.reason, headers=check.headers or [])
            return
        if self.refuse_unusable_offer(ctx):
            return
        caller = ctx.request.from_.uri
        if (caller.user or "") != check.username:
            ctx.reject(403, "Forbidden (From does not match the authenticated extension)")
            return
        username = check.username or ""
        source = {"type": "extension", "target": username, "target_name": username}
        target = ctx.request.uri
        user = target.user or ""
        host = (target.host or "").lower()
        if TEL_RE.match(user):
            number = await self.registrations.number_owner(user)
            if number is not None:
                await self.to_number(ctx, number, source=source)
                return
            destination = {"type": "tel", "target": user}
        elif host in (domain, self.registrations.sip_domain) or host in (
            self.public_host(),
            "127.0.0.1",
            "localhost",
        ):
            destination = {"type": "extension", "target": user, "target_name": user}
        else:
            destination = {"type": "sip", "target": f"{user}@{target.host}" if user else str(target.host)}
        await self.bridging.bridge_out(ctx, customer_id, source, destination)

    async def to_number(
        self, ctx: IncomingInvite, number: Number, source: dict[str, Any] | None = None
    ) -> None:
        """Run the number's ``call_flow_id``; ``source`` is given for calls from our own extensions."""
        if number.call_flow_id == uuid.UUID(int=0):
            ctx.reject(480, "No flow for this number")
            return
        if source is None and self.refuse_unusable_offer(ctx):  # extensions were checked after auth
            return
        row = self.records.new_call(
            number.customer_id,
            flow_id=number.call_flow_id,
            source=source or caller_address(ctx.request.from_.uri),
            destination={"type": "tel", "target": number.number},
            status=Status.RINGING,
            direction="incoming",
            metadata={"sip_call_id": ctx.request.call_id},
        )
        await self.records.add([row])
        call = await self.dialer.new_live_call(row.id, row.customer_id, incoming=ctx)
        await call.leg.match_offer_family()  # an IPv6 offer gets IPv6 RTP sockets
        ctx.ringing()
        self.legs.spawn(self._watch_cancel(call, ctx))
        await self.run_flow(call)

    async def _watch_cancel(self, call: LiveCall, ctx: IncomingInvite) -> None:
        if await self.legs.cancelled_before_answer(call, ctx.cancelled):
            await self.legs.end(call, HangupReason.CANCEL, "remote")
