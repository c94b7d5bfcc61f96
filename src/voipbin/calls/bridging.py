"""Bridging: the ``connect`` action (dial further legs from a call, bridge the first to answer) and an
extension's call out (incoming leg A, outgoing leg B, answer A and bridge when B answers)."""

from __future__ import annotations

import uuid
from typing import Any

from voipbin.calls.control import LiveCall
from voipbin.calls.dialer import Dialer
from voipbin.calls.lifecycle import Legs
from voipbin.calls.records import CallRecords
from voipbin.calls.state import HangupReason, Status
from voipbin.sip.endpoint import IncomingInvite

# Failure of the outgoing leg of a bridged call, told to the calling phone.
SIP_FOR_REASON = {"busy": 486, "noanswer": 480, "dialout": 408, "cancel": 487, "failed": 503}


class Bridging:
    def __init__(self, records: CallRecords, legs: Legs, dialer: Dialer) -> None:
        self.records = records
        self.legs = legs
        self.dialer = dialer

    async def connect(
        self, call: LiveCall, source: dict[str, Any], destinations: list[dict[str, Any]], anonymous: str = ""
    ) -> tuple[bool, str]:
        """Ring every destination (first answer wins), bridge it with ``call`` and wait until that leg
        ends. Returns (answered, hangup reason of the connected or last failed leg)."""
        rows = [
            self.records.new_call(
                call.customer_id,
                source=source,
                destination=dest,
                direction="outgoing",
                master_call_id=call.call_id,
                metadata={"anonymous": anonymous or "auto"},
            )
            for dest in destinations
        ]
        await self.records.add(rows, master_id=call.call_id)

        async def bridge(leg: LiveCall) -> None:
            call.media.bridge(leg.media)

        winner = await self.dialer.first_answer(rows, bridge, abort=call.leg.ended.is_set)
        if winner is None:
            last = await self.records.get(rows[-1].id)
            return False, (last.hangup_reason if last else "") or HangupReason.FAILED
        try:
            await winner.leg.ended.wait()
        finally:
            call.media.unbridge()
            if not winner.leg.ended.is_set():  # the master call ended (or its flow was stopped) first
                await self.legs.hangup(winner, "normal")
        return True, winner.leg.hangup_reason

    async def bridge_out(
        self, ctx: IncomingInvite, customer_id: uuid.UUID, source: dict[str, Any], destination: dict[str, Any]
    ) -> None:
        """Incoming leg A (ringing) + outgoing leg B to ``destination``; answer A, bridge when B answers."""
        a_row = self.records.new_call(
            customer_id,
            type="sip-service",
            source=source,
            destination=destination,
            status=Status.RINGING,
            direction="incoming",
        )
        await self.records.add([a_row])
        b_row = self.records.new_call(
            customer_id,
            type="sip-service",
            source=source,
            destination=destination,
            direction="outgoing",
            master_call_id=a_row.id,
        )
        await self.records.add([b_row], master_id=a_row.id)
        a_leg = await self.dialer.new_live_call(a_row.id, customer_id, incoming=ctx)
        ctx.ringing()

        async def bridge(b_leg: LiveCall) -> None:
            # Paired before A is answered: a BYE that races the answer must take B down too.
            a_leg.leg.bridged_with, b_leg.leg.bridged_with = b_leg.leg, a_leg.leg
            if not a_leg.is_hungup:
                await a_leg.answer()
            if a_leg.is_hungup:
                await self.legs.hangup(b_leg, "normal")
                return
            a_leg.media.bridge(b_leg.media)

        async def watch_a_cancel() -> None:
            if await self.legs.cancelled_before_answer(a_leg, ctx.cancelled):
                await self.legs.end(a_leg, HangupReason.CANCEL, "remote")
                b_leg = self.legs.get(b_row.id)
                if b_leg is not None:
                    await self.legs.hangup(b_leg, "normal")

        self.legs.spawn(watch_a_cancel())
        await self.dialer.dial(b_row.id, on_answer=bridge)
        if a_leg.leg.sip is None and not a_leg.is_hungup:
            # B never answered: answer A's INVITE with the matching SIP failure.
            b = await self.records.get(b_row.id)
            reason = (b.hangup_reason if b else "") or HangupReason.FAILED
            ctx.reject(SIP_FOR_REASON.get(reason, 480))
            await self.legs.end(a_leg, reason, "remote")
