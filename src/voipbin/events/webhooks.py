"""Webhook delivery from a durable outbox: every event goes to the customer's ``webhook_uri`` (and to the
activeflow's own ``webhook_uri``) at least once, in order per destination, surviving crashes.

**Stored with the change.** The bus hands each event to :meth:`WebhookDispatcher.store` synchronously;
it queues one ``event_outbox`` row per destination on the group-commit writer in the same tick, so the
rows join the transaction of the change the owner submitted just before publishing (calls and
activeflows submit their write, publish, then await the commit). An event is therefore stored exactly
when its change is; ``kill -9`` loses neither, or both.

**Delivered after the commit.** When the rows commit, each joins its destination's lane, which takes
them in ``seq`` order and hands each to one of :data:`PARALLEL` senders chosen by its resource (a call's
events, with its activeflow's and recordings', by the call: :func:`order_key`); a sender sends its share
one after another, so events arrive in order per resource while one slow resource does not hold up the
others. Each row is deleted once the receiver answered. A lane keeps at most :data:`IN_MEMORY` deliveries in
memory; beyond that (a receiver down for hours) it reads the rest back from the table page by page. On
start, the lanes of what an earlier boot left pending are rebuilt from the table.

**Wire format** (VoIPBIN's, plus an id): body ``{"id", "type", "data"}``, ``Content-Type:
application/json``, method ``webhook_method`` (POST by default), ``X-VoIPBIN-Event-Id: <id>`` (the same
id in every retry, for deduplication), ``X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256 of the raw body>``
when the customer has a webhook secret.

**Retries.** A transport error, 429 or 5xx is retried with exponential backoff and jitter (the first
sender to fail probes the receiver; the lane's other senders wait until it answers again: a failing
receiver gets one request at a time, never a flood) until the event is
``max_age`` old; then it is marked ``failed`` and the lane moves on. 410 Gone marks the destination gone:
its pending deliveries are marked failed without being sent, until the customer's webhook settings
change. Both are reported once per failure streak as a ``webhook_failed`` event, and a destination
still failing after :data:`FAILING_AFTER` tries in a row earlier as ``webhook_failing`` (WebSocket
stream, logs and metrics; never to the webhooks themselves). Other 4xx answers count as delivered, as in
VoIPBIN. Delivery never blocks the publisher: ``store`` only queues writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy import event as sa_event

from voipbin.events.bus import Event, EventBus
from voipbin.metrics.registry import NodeMetrics
from voipbin.security import Encryptor, sign_body
from voipbin.security.outbound import GuardedTransport, blocked_cause, policy_for
from voipbin.store.db import Database
from voipbin.store.tables import Customer, EventOutbox
from voipbin.store.types import utcnow
from voipbin.store.writer import WriteBehind

log = logging.getLogger(__name__)

CONFIG_TTL = 5.0  # seconds a customer's webhook settings are cached
IN_MEMORY = 1000  # deliveries a lane holds in memory; the rest wait in the table
PARALLEL = 8  # requests one destination may have in flight (for different resources)
IN_FLIGHT = 256  # deliveries a lane hands to its senders ahead
ZERO = str(uuid.UUID(int=0))
PAGE = 200  # rows read back per query when a lane catches up from the table
REPORT_EVENT = "webhook_failed"  # a delivery given up on
FAILING_EVENT = "webhook_failing"  # a destination still failing after FAILING_AFTER tries in a row
FAILING_AFTER = 5
EVENT_ID_HEADER = "X-VoIPBIN-Event-Id"

_INSERT = insert(EventOutbox)
_DELETE = (
    delete(EventOutbox)
    .where(EventOutbox.id == bindparam("d_id"))
    .execution_options(synchronize_session=False)
)
_RETRY = (
    update(EventOutbox)
    .where(EventOutbox.id == bindparam("d_id"))
    .values(attempts=bindparam("d_attempts"), tm_next=bindparam("d_next"), last_error=bindparam("d_error"))
    .execution_options(synchronize_session=False)
)
_FAIL = (
    update(EventOutbox)
    .where(EventOutbox.id == bindparam("d_id"))
    .values(status="failed", attempts=bindparam("d_attempts"), last_error=bindparam("d_error"))
    .execution_options(synchronize_session=False)
)


def make_client(
    transport: httpx.AsyncBaseTransport | None = None, *, timeout: float = 5.0
) -> httpx.AsyncClient:
    """The one place the delivery client is built (the connect-time outbound guard plugs in here)."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport, trust_env=False)


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 1.0  # seconds before the first retry
    max_delay: float = 600.0
    max_age: float = 86400.0  # an event still undelivered this long after it happened is given up on
    timeout: float = 5.0  # per request
    failed_retention: float = 7 * 86400.0  # rows given up on are deleted this long after the event

    def delay(self, attempts: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so receivers coming back
        up are not hit by every sender at once."""
        step = min(self.max_delay, self.base * 2 ** min(attempts - 1, 40))
        return float(step / 2 + random.uniform(0, step / 2))


@dataclass(frozen=True)
class Target:
    uri: str
    method: str
    secret: str


@dataclass
class Delivery:
    """One outbox row in memory."""

    id: uuid.UUID
    seq: int
    event_id: uuid.UUID
    customer_id: uuid.UUID
    target: str  # "" -> the customer's webhook_uri
    method: str
    type: str
    body: str
    tm_create: datetime
    attempts: int = 0
    tm_next: datetime | None = None
    key: str = ""  # order_key: deliveries with the same key are sent one after another

    @property
    def lane_key(self) -> tuple[str, str]:
        return ("uri", self.target) if self.target else ("customer", str(self.customer_id))

    def row(self, node_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "event_id": self.event_id,
            "customer_id": self.customer_id,
            "target": self.target,
            "method": self.method,
            "type": self.type,
            "body": self.body,
            "status": "pending",
            "attempts": self.attempts,
            "last_error": "",
            "node_id": node_id,
            "tm_create": self.tm_create,
            "tm_next": self.tm_next,
        }

    @classmethod
    def from_row(cls, r: EventOutbox) -> Delivery:
        try:
            data = json.loads(r.body).get("data") or {}
        except (ValueError, AttributeError):
            data = {}
        return cls(
            r.id, r.seq, r.event_id, r.customer_id, r.target, r.method, r.type, r.body,
            r.tm_create, r.attempts, r.tm_next, order_key(r.type, data if isinstance(data, dict) else {}),
        )  # fmt: skip


@dataclass
class _Lane:
    """The deliveries to one destination: taken in ``seq`` order and spread over :data:`PARALLEL` senders
    by resource (:func:`order_key`), each sending its share one after another."""

    key: tuple[str, str]
    queue: deque[Delivery] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    kick: asyncio.Event = field(default_factory=asyncio.Event)  # cut a backoff short (settings changed)
    overflow: bool = False  # rows past last_seq wait in the table
    missed: bool = False  # a commit arrived while reading the table
    last_seq: int = -1
    gone: bool = False  # answered 410: deliveries fail without being sent
    reported: bool = False  # this failure streak's give-up was reported
    warned: bool = False  # this failure streak was reported as failing
    task: asyncio.Task[None] | None = None
    shards: list[deque[Delivery]] = field(default_factory=lambda: [deque() for _ in range(PARALLEL)])
    shard_wake: list[asyncio.Event] = field(
        default_factory=lambda: [asyncio.Event() for _ in range(PARALLEL)]
    )
    shard_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    busy: int = 0  # deliveries handed to the senders, not yet finished
    space: asyncio.Event = field(default_factory=asyncio.Event)
    # The failure gate: while the destination fails, one sender (the prober) retries with backoff and
    # the others wait, so a failing receiver gets one request at a time.
    healthy: asyncio.Event = field(default_factory=asyncio.Event)
    prober: int | None = None

    def __post_init__(self) -> None:
        self.healthy.set()


def order_key(type_: str, data: dict[str, Any]) -> str:
    """What a delivery keeps its order with: its call (a call's, its activeflow's and recordings' events
    share the call's ``reference_id``), else the resource itself."""
    ref = data.get("reference_id")
    if ref and str(ref) != ZERO and not type_.startswith("call_"):
        return str(ref)
    return str(data.get("id", ""))


class WebhookDispatcher:
    def __init__(
        self,
        db: Database,
        events: EventBus,
        encryptor: Encryptor,
        writer: WriteBehind,
        *,
        node_id: str = "",
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        outbound_allow: str = "",
    ) -> None:
        self.outbound_allow = outbound_allow  # VOIPBIN_OUTBOUND_ALLOW
        self.db = db
        self.events = events
        self.encryptor = encryptor
        self.writer = writer
        self.node_id = node_id
        self.policy = policy or RetryPolicy()
        self.transport = transport
        self.dropped = 0  # kept for compatibility: the outbox never drops
        self.delivered = 0
        self.failed = 0  # deliveries given up on
        self.attempt_failures = 0  # failed tries (each retried)
        self.pending = 0  # rows stored and not yet delivered or given up on (the backlog)
        self._seq = 0
        self._client: httpx.AsyncClient | None = None
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._config: dict[uuid.UUID, tuple[float, Target | None, str]] = {}
        self._activeflow_hooks: dict[uuid.UUID, tuple[str, str]] = {}
        self._hook_customers: dict[uuid.UUID, int] = {}  # customers with activeflow hooks: their count
        self._hook_owner: dict[uuid.UUID, uuid.UUID] = {}  # activeflow id -> customer id
        self._refreshing: set[uuid.UUID] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- life cycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume what an earlier boot left pending (its lanes first, so order holds), then take events."""
        # The SSRF guard checks the address each delivery really dials (security/outbound.py).
        transport = self.transport or GuardedTransport(policy_for(self.outbound_allow))
        self._client = make_client(transport, timeout=self.policy.timeout)
        async with self.db.session() as session:
            # Failed rows are a record for an operator, not a queue: bounded by age so the table cannot grow
            # forever while a receiver stays gone.
            expired = utcnow() - timedelta(seconds=self.policy.failed_retention)
            await session.execute(
                delete(EventOutbox).where(EventOutbox.status == "failed", EventOutbox.tm_create < expired)
            )
            await session.commit()
            pending = select(EventOutbox.customer_id, EventOutbox.target).where(
                EventOutbox.status == "pending", EventOutbox.node_id == self.node_id
            )
            keys = (await session.execute(pending.distinct())).all()
            self.pending = int(
                (await session.execute(select(func.count()).select_from(pending.subquery()))).scalar_one()
            )
        for customer_id, target in keys:
            key = ("uri", target) if target else ("customer", str(customer_id))
            self._lane(key).overflow = True
        self.events.set_sink(self)

    async def close(self) -> None:
        """Stop delivering. Events published while the node stops (the calls and activeflows it ends) are
        still stored, with their changes; the next start delivers them."""
        self._closed = True
        lanes = self._lanes.values()
        tasks = [
            t
            for t in (*(ln.task for ln in lanes), *(t for ln in lanes for t in ln.shard_tasks), *self._tasks)
            if t is not None
        ]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    # -- the bus's sink ------------------------------------------------------------------------------
    def wants(self, customer_id: uuid.UUID, type_: str) -> bool:
        """Events of a customer nobody delivers to are skipped before they are even serialized. Settings
        past their TTL keep answering while a refresh runs (a change made through this node's API is
        applied at once: the customer router calls :meth:`forget`)."""
        if type_ in (REPORT_EVENT, FAILING_EVENT):
            return False  # never sent to the (failing) webhooks themselves
        if type_ == "activeflow_created" or self._hook_customers.get(customer_id):
            return True
        cached = self._config.get(customer_id)
        if (
            (cached is None or cached[0] <= time.monotonic())
            and customer_id not in self._refreshing
            and not self._closed
        ):
            self._refreshing.add(customer_id)
            self._spawn(self._refresh(customer_id))
        return cached is None or cached[1] is not None  # unknown yet: stored, settings read when sending

    def store(self, event: Event, session: Any = None) -> None:
        """Queue the event's outbox rows on the writer, now, or add them to ``session`` (an ORM session
        about to commit the event's change); see the module docstring."""
        if event.type == "activeflow_created" and event.data.get("webhook_uri"):
            self.watch_activeflow(
                uuid.UUID(event.data["id"]),
                event.data["webhook_uri"],
                event.data.get("webhook_method", ""),
                customer_id=event.customer_id,
            )
        cached = self._config.get(event.customer_id)
        customer_uri = cached[1].uri if cached is not None and cached[1] is not None else None
        destinations: list[tuple[str, str]] = []
        if cached is None or cached[1] is not None:
            destinations.append(("", ""))
        hook = self._activeflow_hook(event)
        if hook is not None and hook[0] != customer_uri:  # the same URI twice gets one delivery
            destinations.append(hook)
        if not destinations:
            return
        body = json.dumps(
            {"id": str(event.id), "type": event.type, "data": event.data}, separators=(",", ":")
        )
        now = utcnow()
        key = order_key(event.type, event.data)
        deliveries = [
            Delivery(uuid.uuid4(), self._next_seq(), event.id, event.customer_id, uri, method, event.type,
                     body, now, key=key)
            for uri, method in destinations
        ]  # fmt: skip
        if session is not None:
            session.add_all([EventOutbox(**d.row(self.node_id)) for d in deliveries])
            sa_event.listen(
                session.sync_session, "after_commit", lambda _s: self._accept(deliveries), once=True
            )
            return
        done = self._write(_INSERT, [d.row(self.node_id) for d in deliveries])
        done.add_done_callback(lambda f: self._committed(f, deliveries))

    def _write(self, statement: Any, rows: list[dict[str, Any]]) -> asyncio.Future[None]:
        # Keyed (each write its own key): a batch of keyed writes runs each statement once for all its
        # rows (see store/writer.py), so outbox rows cost one executemany per batch, not one per event.
        return self.writer.submit(statement, lambda: rows, key=object())

    def _next_seq(self) -> int:
        # Increasing across restarts too (wall clock in ns), so a lane's older rows sort first.
        self._seq = max(self._seq + 1, time.time_ns())
        return self._seq

    def _committed(self, done: asyncio.Future[None], deliveries: list[Delivery]) -> None:
        if done.cancelled() or done.exception() is not None:
            why = "cancelled" if done.cancelled() else done.exception()
            log.error("webhook outbox rows were not stored: %s", why)
            return
        self._accept(deliveries)

    def _accept(self, deliveries: list[Delivery]) -> None:
        """Committed rows: into their lanes."""
        for d in deliveries:
            self.pending += 1
            if self._closed:
                continue  # stored; delivered by the next start
            lane = self._lane(d.lane_key)
            if lane.overflow or len(lane.queue) >= IN_MEMORY:
                lane.overflow = lane.missed = True  # read back from the table when the lane gets there
            elif d.seq > lane.last_seq:
                lane.queue.append(d)
                lane.last_seq = d.seq
            lane.wake.set()

    # -- settings ------------------------------------------------------------------------------------
    def forget(self, customer_id: uuid.UUID) -> None:
        """Drop cached settings (call after the customer's webhook settings change): a lane that was gone
        or backing off tries again at once."""
        self._config.pop(customer_id, None)
        lane = self._lanes.get(("customer", str(customer_id)))
        if lane is not None:
            lane.gone = False
            lane.kick.set()

    async def _refresh(self, customer_id: uuid.UUID) -> None:
        try:
            await self._settings(customer_id)
        except Exception:
            log.exception("webhook settings of customer %s could not be read", customer_id)
        finally:
            self._refreshing.discard(customer_id)

    async def _settings(self, customer_id: uuid.UUID) -> tuple[Target | None, str]:
        cached = self._config.get(customer_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        async with self.db.session() as session:
            c = await session.get(Customer, customer_id)
        target = None
        secret = self.encryptor.decrypt(c.webhook_secret_enc) if c is not None else ""
        if c is not None and c.tm_delete is None and c.webhook_uri:
            target = Target(c.webhook_uri, c.webhook_method or "POST", secret)
        self._config[customer_id] = (now + CONFIG_TTL, target, secret)
        return target, secret

    def watch_activeflow(
        self, activeflow_id: uuid.UUID, uri: str, method: str, *, customer_id: uuid.UUID | None = None
    ) -> None:
        """An activeflow created with its own ``webhook_uri`` also gets the events that carry its id."""
        if activeflow_id not in self._activeflow_hooks and customer_id is not None:
            self._hook_owner[activeflow_id] = customer_id
            self._hook_customers[customer_id] = self._hook_customers.get(customer_id, 0) + 1
        self._activeflow_hooks[activeflow_id] = (uri, method or "POST")

    def _unwatch_activeflow(self, activeflow_id: uuid.UUID) -> None:
        self._activeflow_hooks.pop(activeflow_id, None)
        customer_id = self._hook_owner.pop(activeflow_id, None)
        if customer_id is not None:
            left = self._hook_customers.get(customer_id, 1) - 1
            if left > 0:
                self._hook_customers[customer_id] = left
            else:
                self._hook_customers.pop(customer_id, None)

    def _activeflow_hook(self, event: Event) -> tuple[str, str] | None:
        is_activeflow = event.type.startswith("activeflow_")
        raw = event.data.get("id") if is_activeflow else event.data.get("activeflow_id")
        try:
            af_id = uuid.UUID(str(raw)) if raw else None
        except ValueError:
            return None
        hook = self._activeflow_hooks.get(af_id) if af_id is not None else None
        if hook is None and is_activeflow and event.data.get("webhook_uri"):
            # An activeflow event carries its own hook (e.g. one ended after a restart).
            hook = (str(event.data["webhook_uri"]), str(event.data.get("webhook_method") or "POST"))
        if hook is not None and (
            event.type == "activeflow_deleted"
            or (event.type == "activeflow_updated" and event.data.get("status") == "ended")
        ):
            self._unwatch_activeflow(af_id)  # type: ignore[arg-type]  # its last event
        return hook

    # -- lanes ---------------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lane(self, key: tuple[str, str]) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(key)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.get_running_loop().create_task(self._run_lane(lane), name="webhook-lane")
        return lane

    def backlog(self) -> int:
        return self.pending

    def register_metrics(self, metrics: NodeMetrics) -> None:
        metrics.gauge(
            "voipbin_webhook_backlog", "Webhook deliveries stored, not yet made", lambda: {(): self.pending}
        )
        metrics.counter("voipbin_webhook_delivered", "Webhook deliveries made", lambda: {(): self.delivered})
        metrics.counter(
            "voipbin_webhook_attempt_failures", "Webhook tries that failed (retried)",
            lambda: {(): self.attempt_failures},
        )  # fmt: skip
        metrics.counter(
            "voipbin_webhook_failed",
            "Webhook deliveries given up on (410 Gone, too old)",
            lambda: {(): self.failed},
        )

    async def _run_lane(self, lane: _Lane) -> None:
        """Hand the lane's deliveries, in order, to its senders (a resource always to the same one)."""
        loop = asyncio.get_running_loop()
        lane.shard_tasks = [
            loop.create_task(self._run_shard(lane, i), name="webhook-sender") for i in range(PARALLEL)
        ]
        try:
            while True:
                if not lane.queue:
                    if lane.overflow:
                        try:
                            await self._refill(lane)
                        except Exception:
                            log.exception("webhook outbox could not be read; retrying")
                            await asyncio.sleep(1.0)
                        continue
                    lane.wake.clear()
                    await lane.wake.wait()
                    continue
                if lane.busy >= IN_FLIGHT:
                    lane.space.clear()
                    await lane.space.wait()
                    continue
                d = lane.queue.popleft()
                shard = zlib.crc32(d.key.encode()) % PARALLEL
                lane.busy += 1
                lane.shards[shard].append(d)
                lane.shard_wake[shard].set()
        finally:
            for t in lane.shard_tasks:
                t.cancel()

    async def _run_shard(self, lane: _Lane, shard: int) -> None:
        queue, wake = lane.shards[shard], lane.shard_wake[shard]
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            d = queue[0]
            try:
                await self._deliver(lane, d, shard)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook delivery of %s failed unexpectedly; retrying", d.type)
                await asyncio.sleep(self.policy.base)
                continue
            queue.popleft()
            lane.busy -= 1
            lane.space.set()

    async def _refill(self, lane: _Lane) -> None:
        """Read the lane's next rows back from the table (after a restart, or past ``IN_MEMORY``)."""
        lane.missed = False
        kind, value = lane.key
        query = select(EventOutbox).where(
            EventOutbox.status == "pending",
            EventOutbox.node_id == self.node_id,
            EventOutbox.seq > lane.last_seq,
        )
        if kind == "uri":
            query = query.where(EventOutbox.target == value)
        else:
            query = query.where(EventOutbox.customer_id == uuid.UUID(value), EventOutbox.target == "")
        async with self.db.session() as session:
            rows = (await session.execute(query.order_by(EventOutbox.seq).limit(PAGE))).scalars().all()
        for r in rows:
            lane.queue.append(Delivery.from_row(r))
            lane.last_seq = max(lane.last_seq, r.seq)
        if len(rows) < PAGE and not lane.missed:
            lane.overflow = False

    async def _deliver(self, lane: _Lane, d: Delivery, shard: int = 0) -> None:
        """Until ``d`` is delivered or given up on."""
        while True:
            if d.tm_next is not None:  # a backoff an earlier boot began
                wait = (d.tm_next - utcnow()).total_seconds()
                d.tm_next = None
                if wait > 0:
                    await self._backoff(lane, min(wait, self.policy.max_delay))
            if lane.gone:
                self._give_up(lane, d, "the receiver answered 410 Gone", report=False, shard=shard)
                return
            if (utcnow() - d.tm_create).total_seconds() >= self.policy.max_age:
                self._give_up(lane, d, f"undelivered after {self.policy.max_age:g} s", shard=shard)
                return
            if not lane.healthy.is_set():
                if lane.prober is None:
                    lane.prober = shard
                elif lane.prober != shard:  # another sender is probing the failing receiver: wait
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lane.healthy.wait(), 1.0)
                    continue
            target = await self._target_of(d)
            if target is None:  # the customer removed its webhook: nothing to deliver any more
                self._finished(d)
                return
            status, problem = await self._send(target, d)
            if status is not None and status < 500 and status not in (410, 429):
                self.delivered += 1
                if status >= 400:
                    log.info("webhook %s to %s answered %s", d.type, target.uri, status)
                self._finished(d)
                lane.reported = lane.warned = False
                if lane.prober in (shard, None):
                    lane.prober = None
                    lane.healthy.set()
                return
            if status == 410:
                lane.gone = True
                self._give_up(lane, d, "the receiver answered 410 Gone", shard=shard)
                return
            blocked = blocked_cause(problem) if isinstance(problem, BaseException) else None
            if blocked is not None:  # the SSRF guard refused the address: retrying cannot help
                self._give_up(lane, d, f"refused by the outbound guard: {blocked}", shard=shard)
                return
            d.attempts += 1
            self.attempt_failures += 1
            if lane.healthy.is_set():  # the first failure of a streak: this sender probes
                lane.healthy.clear()
                lane.prober = shard
            delay = self.policy.delay(d.attempts)
            self._write(
                _RETRY,
                [{"d_id": d.id, "d_attempts": d.attempts, "d_next": utcnow() + timedelta(seconds=delay),
                  "d_error": str(problem)[:500]}],
            )  # fmt: skip
            log.warning(
                "webhook %s %s to %s failed (attempt %d, next in %.1f s): %s",
                d.type, d.event_id, target.uri, d.attempts, delay, problem,
            )  # fmt: skip
            if d.attempts >= FAILING_AFTER and not lane.warned:
                lane.warned = True
                self._report(d, FAILING_EVENT, f"failing: {problem}")
            if lane.prober == shard:
                await self._backoff(lane, delay)

    @staticmethod
    async def _backoff(lane: _Lane, seconds: float) -> None:
        lane.kick.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lane.kick.wait(), seconds)

    async def _target_of(self, d: Delivery) -> Target | None:
        target, secret = await self._settings(d.customer_id)
        if not d.target:
            return target
        return Target(d.target, d.method or "POST", secret)

    async def _send(self, target: Target, d: Delivery) -> tuple[int | None, Any]:
        assert self._client is not None
        body = d.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "voipbin-webhook",
            EVENT_ID_HEADER: str(d.event_id),
        }
        if target.secret:
            headers["X-VoIPBIN-Signature"] = sign_body(target.secret, body)
        try:
            resp = await self._client.request(target.method, target.uri, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, exc or type(exc).__name__
        except Exception as exc:  # an unusable or refused URI: retried like a down receiver, then given up on
            return None, exc
        return resp.status_code, resp.status_code

    def _finished(self, d: Delivery) -> None:
        self.pending = max(0, self.pending - 1)
        self._write(_DELETE, [{"d_id": d.id}])

    def _give_up(self, lane: _Lane, d: Delivery, why: str, *, report: bool = True, shard: int = 0) -> None:
        if lane.prober == shard:
            lane.prober = None  # the next sender to find the gate closed probes
        self.failed += 1
        self.pending = max(0, self.pending - 1)
        self._write(_FAIL, [{"d_id": d.id, "d_attempts": d.attempts, "d_error": why[:500]}])
        log.warning("webhook %s %s given up on: %s", d.type, d.event_id, why)
        if report and not lane.reported:
            lane.reported = True
            self._report(d, REPORT_EVENT, why)

    def _report(self, d: Delivery, kind: str, why: str) -> None:
        self.events.publish(
            d.customer_id,
            kind,
            {
                "customer_id": str(d.customer_id),
                "uri": d.target or "",
                "destination": "activeflow" if d.target else "customer",
                "reason": why,
                "event_id": str(d.event_id),
                "event_type": d.type,
                "attempts": d.attempts,
            },
        )

    # -- for tests and tools -------------------------------------------------------------------------
    async def wait_idle(self, within: float = 10.0) -> None:
        """Until no lane has anything left to send (the writer's deletes may still be queued)."""
        async with asyncio.timeout(within):
            while any(ln.queue or ln.overflow or ln.busy for ln in self._lanes.values()):  # noqa: ASYNC110
                await asyncio.sleep(0.02)


async def stop_dispatcher(dispatcher: WebhookDispatcher | None) -> None:
    if dispatcher is not None:
        with contextlib.suppress(Exception):
            await dispatcher.close()
