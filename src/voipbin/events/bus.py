"""In-process publish/subscribe of resource events (``{"type", "data"}`` as VoIPBIN webhooks carry).

Subscribers get events through bounded queues, so a slow consumer never blocks the publisher; what a
full queue drops is counted and logged rather than lost silently.

``data`` may be given as a function: it is called (once, at publish time, so the event is a snapshot)
only when some subscriber wants the event. A subscriber's ``wants(customer_id, type)`` filter lets the
webhook dispatcher skip the events of customers nobody delivers to, without serializing them.

Every event has a stable ``id`` (webhooks and the WebSocket stream carry it, for deduplication). The
durable :class:`Sink` (the webhook outbox) sees each event first, synchronously: it hands the outbox rows
to the group-commit writer in the same tick, so they join the transaction of the change the owner
submitted just before publishing (see ``store/writer.py``), or adds them to the ORM session the
publisher is about to commit its change with (``publish(..., session=session)``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Data = dict[str, Any] | Callable[[], dict[str, Any]]
Wants = Callable[[uuid.UUID, str], bool]
Observer = Callable[[uuid.UUID, str, Data], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    customer_id: uuid.UUID
    type: str
    data: dict[str, Any]
    id: uuid.UUID = field(default_factory=uuid.uuid4)


class Sink(Protocol):
    """The durable consumer (the webhook outbox): ``store`` must not block (it only queues writes)."""

    def wants(self, customer_id: uuid.UUID, type_: str) -> bool: ...

    def store(self, event: Event, session: Any = None) -> None: ...


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int, wants: Wants | None = None) -> None:
        self._bus = bus
        self.wants = wants
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def close(self) -> None:
        self._bus._subs.discard(self)

    async def get(self) -> Event:
        return await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._sink: Sink | None = None
        self._observers: list[Observer] = []

    def set_sink(self, sink: Sink | None) -> None:
        self._sink = sink

    def subscribe(self, maxsize: int = 10_000, wants: Wants | None = None) -> Subscription:
        sub = Subscription(self, maxsize, wants)
        self._subs.add(sub)
        return sub

    def observe(self, observer: Observer) -> None:
        """``observer(customer_id, type, data)`` sees every event first (metrics); ``data`` may be the
        lazy function — calling it serializes the event (once: everyone after shares the result)."""
        self._observers.append(observer)

    def publish(self, customer_id: uuid.UUID, type_: str, data: Data, *, session: Any = None) -> None:
        """``session``: an ORM session about to commit the change that caused the event; the event's
        outbox rows are added to it (so they commit together). Without one they join the group-commit
        writer's current batch."""
        if self._observers:
            data = _Once(data) if callable(data) else data
            for observer in self._observers:
                try:
                    observer(customer_id, type_, data)
                except Exception:
                    log.exception("event observer failed on %s", type_)
        event: Event | None = None
        sink = self._sink
        if sink is not None and sink.wants(customer_id, type_):
            event = Event(customer_id, type_, data() if callable(data) else data)
            try:
                sink.store(event, session)
            except Exception:
                log.exception("event %s could not be stored for delivery", type_)
        for sub in list(self._subs):
            if sub.wants is not None and not sub.wants(customer_id, type_):
                continue
            if event is None:
                event = Event(customer_id, type_, data() if callable(data) else data)
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped += 1
                log.warning("event subscriber queue full; dropped %s (total %d)", type_, sub.dropped)


class _Once:
    """A lazy ``data`` computed at most once per publish (observers and subscribers share it)."""

    __slots__ = ("_fn", "_value")

    def __init__(self, fn: Callable[[], dict[str, Any]]) -> None:
        self._fn = fn
        self._value: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        if self._value is None:
            self._value = self._fn()
        return self._value
