"""In-process publish/subscribe of resource events (``{"type", "data"}`` as VoIPBIN webhooks carry).

Subscribers get events through bounded queues, so a slow consumer never blocks the publisher; what a
full queue drops is counted and logged rather than lost silently.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    customer_id: uuid.UUID
    type: str
    data: dict[str, Any]


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def close(self) -> None:
        self._bus._subs.discard(self)

    async def get(self) -> Event:
        return await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, maxsize: int = 10_000) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subs.add(sub)
        return sub

    def publish(self, customer_id: uuid.UUID, type_: str, data: dict[str, Any]) -> None:
        event = Event(customer_id, type_, data)
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped += 1
                log.warning("event subscriber queue full; dropped %s (total %d)", type_, sub.dropped)
