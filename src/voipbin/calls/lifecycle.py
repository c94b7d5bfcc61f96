"""The live calls of this node and how they end.

``Legs`` holds every live call by id and is the one place a call ends: the media is released, the
recording finished, the record hung up, the call's activeflow stopped (which cancels the running action,
so no handler has to race the hangup) and a bridged partner hung up too. A local hangup sends what the
SIP state calls for first: CANCEL while ringing, BYE once answered, a final response to an unanswered
incoming INVITE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from voipbin.calls.control import LiveCall
from voipbin.calls.recordings import Recordings
from voipbin.calls.records import CallRecords
from voipbin.calls.state import HangupReason, Status, local_hangup_status
from voipbin.flow.engine import FlowEngine

log = logging.getLogger(__name__)


class Legs:
    def __init__(
        self, records: CallRecords, recordings: Recordings, flows: FlowEngine, *, max_duration: float
    ) -> None:
        self.records = records
        self.recordings = recordings
        self.flows = flows
        self.max_duration = max_duration
        self.live: dict[uuid.UUID, LiveCall] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    def add(self, call: LiveCall) -> None:
        self.live[call.call_id] = call

    def get(self, call_id: uuid.UUID) -> LiveCall | None:
        return self.live.get(call_id)

    # -- ending --------------------------------------------------------------------------------------
    async def end(self, call: LiveCall, reason: str, by: str | None, detail: str = "") -> None:
        """The call is over (idempotent): release it, record the hangup, stop its flow, end its partner."""
        leg = call.leg
        if leg.ended.is_set():
            return
        leg.hangup_reason = reason
        leg.ended.set()
        leg.stop_watchers()
        self.live.pop(call.call_id, None)
        with contextlib.suppress(Exception):
            await self.recordings.stop(leg)
        rtp = await leg.release()
        await self.records.finish(call.call_id, reason=reason, by=by, detail=detail, rtp=rtp)
        if leg.activeflow_id is not None:
            await self.flows.stop(leg.activeflow_id, wait=False)
        other = leg.bridged_with
        if other is not None and not other.ended.is_set():
            partner = self.live.get(other.call_id)
            if partner is not None:
                await self.hangup(partner, reason)

    async def hangup(self, call: LiveCall, reason: str = "normal") -> None:
        """Local hangup: CANCEL while ringing, BYE once answered, reject an unanswered incoming call."""
        leg = call.leg
        if leg.ended.is_set():
            return
        leg.local_hangup_requested = True
        row = self.records.live(call.call_id)
        current = row.status if row else Status.HANGUP
        direction = row.direction if row else "outgoing"
        await self.records.set_status(call.call_id, local_hangup_status(current, direction))
        if leg.pending is not None:
            leg.pending.cancel()  # the dialer finishes the call with reason cancel
            return
        if leg.sip is not None and leg.sip.is_active:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(leg.sip.bye(), 5)
        elif leg.incoming is not None and not leg.incoming.final_sent:
            leg.incoming.reject(603 if reason == "normal" else 480)
        await self.end(call, reason if leg.sip is not None else HangupReason.CANCEL, "local")

    async def cancelled_before_answer(self, call: LiveCall, cancelled: asyncio.Event) -> bool:
        """Wait until the caller CANCELs: True if the call was not answered or ended meanwhile. The
        wait is cancelled when the call is answered or ends (``end``), so it never outlives the call."""
        leg = call.leg
        if leg.sip is not None or leg.ended.is_set():
            return False
        task = asyncio.current_task()
        if task is not None:
            leg.watchers.append(task)
        try:
            await cancelled.wait()
        except asyncio.CancelledError:
            if leg.sip is None and not leg.ended.is_set():
                raise  # cancelled for another reason (shutdown)
            return False
        finally:
            if task is not None and task in leg.watchers:
                leg.watchers.remove(task)
        return leg.sip is None and not leg.ended.is_set()

    # -- watching an answered call -------------------------------------------------------------------
    def answered(self, call: LiveCall) -> None:
        """An answered call: watch its dialog (INFO digits, the far end's BYE) and bound its duration."""
        leg = call.leg
        leg.stop_watchers()  # the CANCEL watch: an answered call is no longer cancelled
        leg.watch_info()
        self.spawn(self._await_bye(call))
        # A timer, not a task: one per live call, cancelled when it ends.
        loop = asyncio.get_running_loop()
        leg.duration_timer = loop.call_later(self.max_duration, self._duration_reached, call)

    async def _await_bye(self, call: LiveCall) -> None:
        leg = call.leg
        assert leg.sip is not None
        await leg.sip.ended
        if not leg.ended.is_set() and not leg.local_hangup_requested:
            # The far end hung up (or the dialog died): a normal remote hangup.
            await self.end(call, HangupReason.NORMAL, None)

    def _duration_reached(self, call: LiveCall) -> None:
        """VOIPBIN_MAX_CALL_DURATION seconds after the answer: hang up with reason ``timeout``."""
        if call.leg.ended.is_set():
            return
        log.info("call %s reached the maximum duration", call.call_id)
        self.spawn(self.hangup(call, HangupReason.TIMEOUT))

    async def close(self) -> None:
        for call in list(self.live.values()):
            with contextlib.suppress(Exception):
                await self.hangup(call, "normal")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("telephony task failed", exc_info=task.exception())
