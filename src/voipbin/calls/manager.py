"""The interface the API and the flow engine use to drive calls; the SIP-backed manager implements it.

Until telephony is running (or when it is disabled), ``UnavailableCallManager`` ends every call at once
as ``failed`` with the reason recorded, so no call ever sits in ``dialing`` pretending to ring.
"""

from __future__ import annotations

import abc
import logging
import uuid

from voipbin.calls.service import finish_call
from voipbin.platform import Platform

log = logging.getLogger(__name__)


class CallManager(abc.ABC):
    @abc.abstractmethod
    async def start_outgoing(self, call_id: uuid.UUID) -> None:
        """Dial a stored call (status ``dialing``) and run its flow once answered."""

    @abc.abstractmethod
    async def hangup(self, call_id: uuid.UUID, reason: str = "normal") -> None:
        """Hang up a live call locally; returns once the hangup has been started."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most managers have nothing to release
        """Stop all calls and release resources."""


class UnavailableCallManager(CallManager):
    def __init__(self, platform: Platform, why: str) -> None:
        self.platform = platform
        self.why = why

    async def start_outgoing(self, call_id: uuid.UUID) -> None:
        log.warning("call %s cannot be dialed: %s", call_id, self.why)
        await finish_call(self.platform, call_id, reason="failed", by="local", detail=self.why)

    async def hangup(self, call_id: uuid.UUID, reason: str = "normal") -> None:
        await finish_call(self.platform, call_id, reason=reason, by="local")
