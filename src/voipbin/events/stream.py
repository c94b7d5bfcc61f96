"""The ``/v1.0/ws`` event stream's fan-out: topics, subscriptions and bounded per-connection buffers.

VoIPBIN's topics are ``customer_id:<customer-id>:<resource>:<resource-id>`` (``*`` for every resource of
that type) and ``agent_id:<agent-id>:<resource>:<resource-id>`` (resources the agent owns). An event's
resource is its type's prefix (``call_hangup`` -> ``call``, ``aicall_status_progressing`` -> ``aicall``)
and its resource id is ``data.id``. Each message is the webhook body (``{"id", "type", "data"}``, the
same event id) plus the ``topic`` it matched.

One bus subscription feeds every connection (it asks the bus only for the events of customers someone
is connected as, so with no client nothing is even serialized). Each connection has a bounded buffer:
a client that falls ``buffer`` messages behind is marked dropped and closed by its route with
:data:`CLOSE_TOO_SLOW` — the publisher and the other clients never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, field

from voipbin.events.bus import Event, EventBus, Subscription

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 1013  # "try again later": the client did not keep up with its events
HUB_QUEUE = 100_000  # events between the bus and the fan-out task


class TopicError(ValueError):
    pass


@dataclass(frozen=True)
class Topic:
    scope: str  # "customer_id" | "agent_id"
    scope_id: uuid.UUID
    resource: str
    resource_id: str  # "*" or an id

    def __str__(self) -> str:
        return f"{self.scope}:{self.scope_id}:{self.resource}:{self.resource_id}"


def parse_topic(text: str) -> Topic:
    parts = text.split(":")
    if len(parts) != 4 or parts[0] not in ("customer_id", "agent_id") or not parts[2] or not parts[3]:
        raise TopicError(
            f"topic {text!r} must be customer_id:<id>:<resource>:<resource-id|*> or agent_id:<id>:..."
        )
    try:
        scope_id = uuid.UUID(parts[1])
    except ValueError:
        raise TopicError(f"topic {text!r}: {parts[0]} must be a UUID") from None
    return Topic(parts[0], scope_id, parts[2], parts[3])


def resource_of(event_type: str) -> str:
    return event_type.split("_", 1)[0]


@dataclass(eq=False)
class Connection:
    customer_id: uuid.UUID
    agent_id: uuid.UUID | None
    buffer: int
    queue: asyncio.Queue[str] = field(init=False)
    topics: set[Topic] = field(default_factory=set)
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    routed: set[uuid.UUID] = field(default_factory=set)  # customers whose events reach this connection

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.buffer)

    def send(self, message: str) -> bool:
        """Queue ``message``; a full buffer marks the connection dropped (its route closes it)."""
        if self.dropped.is_set():
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped.set()
            return False
        return True

    def match(self, event: Event) -> Topic | None:
        resource = resource_of(event.type)
        rid = str(event.data.get("id", ""))
        owner = str(event.data.get("owner_id", ""))
        for t in self.topics:
            if t.resource != resource or t.resource_id not in ("*", rid):
                continue
            if t.scope == "customer_id" or owner == str(t.scope_id):
                return t
        return None


class EventStream:
    def __init__(self, events: EventBus, *, buffer: int = 1000) -> None:
        self.events = events
        self.buffer = buffer
        self.dropped = 0  # connections dropped for being too slow
        self._by_customer: dict[uuid.UUID, set[Connection]] = {}
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    def connect(self, customer_id: uuid.UUID, agent_id: uuid.UUID | None) -> Connection:
        if self._task is None or self._task.done():
            self._sub = self.events.subscribe(HUB_QUEUE, wants=self._wants)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ws-fanout")
        conn = Connection(customer_id, agent_id, self.buffer)
        self._route(conn, customer_id)
        return conn

    def _route(self, conn: Connection, customer_id: uuid.UUID) -> None:
        self._by_customer.setdefault(customer_id, set()).add(conn)
        conn.routed.add(customer_id)

    def disconnect(self, conn: Connection) -> None:
        for customer_id in conn.routed:
            conns = self._by_customer.get(customer_id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._by_customer[customer_id]
        conn.routed.clear()

    def subscribe(self, conn: Connection, topics: list[str], *, any_customer: bool = False) -> list[str]:
        """Add ``topics`` (all or none); only the caller's own customer (and own agent id) are allowed."""
        parsed = [parse_topic(t) for t in topics]
        for t in parsed:
            if t.scope == "customer_id" and t.scope_id != conn.customer_id and not any_customer:
                raise TopicError(f"topic {t}: not your customer")
            if t.scope == "agent_id" and t.scope_id != conn.agent_id:
                raise TopicError(f"topic {t}: not your agent")
        for t in parsed:
            if t.scope == "customer_id" and t.scope_id != conn.customer_id:
                # A platform admin watching another customer: route that customer's events here too.
                self._route(conn, t.scope_id)
        conn.topics.update(parsed)
        return [str(t) for t in parsed]

    def unsubscribe(self, conn: Connection, topics: list[str]) -> list[str]:
        parsed = [parse_topic(t) for t in topics]
        conn.topics.difference_update(parsed)
        return [str(t) for t in parsed]

    def _wants(self, customer_id: uuid.UUID, type_: str) -> bool:
        return customer_id in self._by_customer

    async def _run(self) -> None:
        assert self._sub is not None
        while True:
            event = await self._sub.get()
            body: str | None = None
            for conn in list(self._by_customer.get(event.customer_id, ())):
                topic = conn.match(event)
                if topic is None or (topic.scope == "customer_id" and topic.scope_id != event.customer_id):
                    continue
                if body is None:
                    body = json.dumps(
                        {"id": str(event.id), "type": event.type, "data": event.data}, separators=(",", ":")
                    )
                # The webhook body, with the matched topic added (same id, type and data).
                if not conn.send(body[:-1] + f',"topic":{json.dumps(str(topic))}}}'):
                    self.dropped += 1
                    self.disconnect(conn)
                    log.warning(
                        "ws client of customer %s dropped: %d events behind", conn.customer_id, conn.buffer
                    )

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for conns in list(self._by_customer.values()):
            for conn in list(conns):
                conn.dropped.set()
        self._by_customer.clear()
