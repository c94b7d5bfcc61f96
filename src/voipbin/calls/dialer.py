"""The dialer: outgoing legs to their ring targets, the first answer wins, groupcalls.

An outgoing call is stored ``dialing``; the dialer resolves where it can be reached (``routing``),
INVITEs each target in turn with an SDP offer, maps the outcome to VoIPBIN's statuses and hangup reasons,
and on answer hands the call to ``on_answer`` (run its flow, or bridge it).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from voipbin.calls import routing
from voipbin.calls.control import CallOps, LiveCall
from voipbin.calls.leg import CallLeg, TtsFactory, sdp_address
from voipbin.calls.lifecycle import Legs
from voipbin.calls.records import CallRecords
from voipbin.calls.state import HangupReason, Status
from voipbin.media.callmedia import CallMedia, MediaFactory
from voipbin.sip.endpoint import Call as SipCall
from voipbin.sip.endpoint import IncomingInvite, SipEndpoint
from voipbin.sip.errors import SipError
from voipbin.sip.sdp import build_sdp
from voipbin.store.tables import Call

log = logging.getLogger(__name__)
OnAnswer = Callable[[LiveCall], Awaitable[None]]
# The media listens on every interface: phones may send from an address other than the one in our SDP
# (baresip uses its primary interface even towards 127.0.0.1).
MEDIA_HOST = "0.0.0.0"
MEDIA_HOST6 = "::"


class Dialer:
    def __init__(
        self,
        endpoint: SipEndpoint,
        media: MediaFactory,
        router: routing.Router,
        records: CallRecords,
        legs: Legs,
        ops: CallOps,
        tts: TtsFactory,
        *,
        sip_domain: str,
        dial_timeout: float,
    ) -> None:
        self.endpoint = endpoint
        self.media = media
        self.router = router
        self.records = records
        self.legs = legs
        self.ops = ops
        self.tts = tts
        self.sip_domain = sip_domain
        self.dial_timeout = dial_timeout

    async def new_live_call(
        self,
        call_id: uuid.UUID,
        customer_id: uuid.UUID,
        incoming: IncomingInvite | None = None,
        near: CallMedia | None = None,
    ) -> LiveCall:
        """A live call with its media session, held by ``legs`` until it ends (``near``: the media of
        the call it will be bridged to, which it must share a media worker with)."""
        media: CallMedia = await self.media(MEDIA_HOST, near=near)
        call = LiveCall(CallLeg(call_id, customer_id, media, incoming=incoming), self.ops, self.tts)
        self.legs.add(call)
        # The media worker died: a call without media is dead air, so it ends (BYE) as failed.
        media.on_lost(lambda: self._media_lost(call))
        return call

    def _media_lost(self, call: LiveCall) -> None:
        log.error("call %s lost its media (the media worker exited): hanging up", call.call_id)
        self.legs.spawn(self.legs.hangup(call, HangupReason.FAILED))

    async def dial(
        self, call_id: uuid.UUID, on_answer: OnAnswer, targets: list[routing.DialTarget] | None = None
    ) -> LiveCall | None:
        """Dial a stored outgoing call; on answer hand it to ``on_answer``. Returns the live call."""
        row = await self.records.get(call_id)
        if row is None or row.status != Status.DIALING:
            return None
        try:
            targets = targets or await self.router.resolve(row.customer_id, row.destination)
        except routing.NotRoutable as exc:
            await self.records.finish(call_id, reason=HangupReason.FAILED, by="local", detail=str(exc))
            return None
        master = self.legs.get(row.master_call_id) if row.master_call_id else None
        call = await self.new_live_call(call_id, row.customer_id, near=master.media if master else None)
        try:
            await self._ring(call, row, targets, on_answer)
        except Exception:
            log.exception("call %s failed while dialing", call_id)
            await self.legs.end(call, HangupReason.FAILED, "local", "internal error while dialing")
        return call

    async def _ring(
        self, call: LiveCall, row: Call, targets: list[routing.DialTarget], on_answer: OnAnswer
    ) -> None:
        leg = call.leg
        source = row.source or {}
        user = str(source.get("target") or "anonymous")
        if (row.metadata_ or {}).get("anonymous") == "yes":
            user = "anonymous"
        from_uri = f"sip:{user}@{self.sip_domain}"
        last_status, last_reason = 0, ""
        for target in targets:
            host = await self._offer_host(leg, target)
            offer = build_sdp(host, leg.media.local_port, codecs=target.codecs)

            def provisional(resp: Any, _id: uuid.UUID = call.call_id) -> None:
                if resp.status in (180, 183):
                    self.legs.spawn(self.records.set_status(_id, Status.RINGING))

            leg.pending = self.endpoint.invite(
                target.request_uri,
                from_uri,
                target.to_uri,
                offer,
                credentials=target.credentials,
                headers=target.headers,
                transport=target.transport,
                on_provisional=provisional,
                timeout=self.dial_timeout,
            )
            result = await leg.pending
            leg.pending = None
            if result.ok and result.call is not None:
                await self._answered(call, result.call, target, on_answer)
                return
            last_status, last_reason = result.status, result.reason
            if leg.local_hangup_requested or result.status in (486, 600, 603, 487):
                break
        await self.legs.end(
            call, self._failure_reason(leg, last_status), None, f"{last_status} {last_reason}".strip()
        )

    async def _offer_host(self, leg: CallLeg, target: routing.DialTarget) -> str:
        """The address our offer's ``c=`` carries; an IPv6 next hop gets IPv6 RTP sockets and address.

        A peer reached over IPv6 may have no IPv4 at all, so an IPv4 offer could leave the call silent.
        """
        try:
            hop = await self.endpoint.resolve(target.request_uri, target.transport)
        except (OSError, SipError):  # unresolvable or unusable: the INVITE itself reports it (503)
            return self.endpoint.public_host
        want = 6 if ":" in hop.ip else 4
        if leg.media.family_version != want:
            await leg.media.rebind(MEDIA_HOST6 if want == 6 else MEDIA_HOST)
        return sdp_address(hop.ip, self.endpoint.public_host, self.endpoint.sdp_host6)

    @staticmethod
    def _failure_reason(leg: CallLeg, status: int) -> str:
        if leg.local_hangup_requested:
            return HangupReason.CANCEL
        if status in (486, 600):
            return HangupReason.BUSY
        if status in (480, 603, 404):
            return HangupReason.NOANSWER
        if status in (408, 487):
            # Our dial timeout cancels the INVITE (487) or nothing answered (408): VoIPBIN's "dialout".
            return HangupReason.DIALOUT
        return HangupReason.FAILED

    async def _answered(
        self, call: LiveCall, sip_call: SipCall, target: routing.DialTarget, on_answer: OnAnswer
    ) -> None:
        if not call.leg.answered_outgoing(sip_call):
            await sip_call.bye()
            await self.legs.end(call, HangupReason.FAILED, "local", "no usable SDP answer")
            return
        self.legs.answered(call)
        if call.leg.local_hangup_requested:
            await self.legs.hangup(call, "normal")
            return
        row = self.records.live(call.call_id)
        metadata = {**((row.metadata_ if row else None) or {}), "route": target.via}
        await self.records.set_status(call.call_id, Status.PROGRESSING, metadata_=metadata)
        await on_answer(call)

    async def first_answer(
        self,
        rows: list[Call],
        on_win: OnAnswer,
        targets: list[list[routing.DialTarget]] | None = None,
        abort: Callable[[], bool] = lambda: False,
    ) -> LiveCall | None:
        """Dial every row at once; the first leg to answer wins and goes to ``on_win``, the others (and
        any later answer, or every answer once ``abort()`` is true) are hung up. Returns the winner."""
        winner: list[LiveCall] = []

        async def answered(call: LiveCall) -> None:
            if winner or abort():
                await self.legs.hangup(call, "normal")
                return
            winner.append(call)
            for other in rows:
                other_live = self.legs.get(other.id)
                if other.id != call.call_id and other_live is not None:
                    await self.legs.hangup(other_live, "normal")
            await on_win(call)

        await asyncio.gather(
            *(self.dial(row.id, answered, targets[i] if targets else None) for i, row in enumerate(rows))
        )
        return winner[0] if winner else None

    # -- groupcalls (ring every registered device of an extension; the first answer wins) ----------
    async def ring_group(self, groupcall_id: uuid.UUID, run_flow: OnAnswer) -> None:
        group = await self.records.get_groupcall(groupcall_id)
        if group is None:
            return
        targets: list[tuple[dict[str, Any], routing.DialTarget]] = []
        problems = []
        for dest in group.destinations or []:
            try:
                targets += [(dest, t) for t in await self.router.resolve(group.customer_id, dest)]
            except routing.NotRoutable as exc:
                problems.append(str(exc))
        rows = [
            self.records.new_call(
                group.customer_id,
                flow_id=group.flow_id,
                source=group.source,
                destination=dest,
                direction="outgoing",
                groupcall_id=group.id,
            )
            for dest, _ in targets
        ]
        if rows:
            await self.records.add(rows)
        if not rows:
            log.warning("groupcall %s reached nobody: %s", groupcall_id, "; ".join(problems))
            await self.records.update_groupcall(groupcall_id, "groupcall_hangup", status="hangup")
            return
        await self.records.update_groupcall(
            groupcall_id, "groupcall_progressing", call_ids=[str(r.id) for r in rows]
        )

        async def answered(call: LiveCall) -> None:
            await self.records.update_groupcall(groupcall_id, answer_call_id=call.call_id)
            await run_flow(call)

        winner = await self.first_answer(rows, answered, [[t] for _, t in targets])
        if winner is None:
            await self.records.update_groupcall(groupcall_id, "groupcall_hangup", status="hangup")
