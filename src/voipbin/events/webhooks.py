"""Webhook delivery: every event on the bus goes to the customer's ``webhook_uri`` as VoIPBIN sends it.

Body ``{"type": <event>, "data": <resource>}``, ``Content-Type: application/json``, method
``webhook_method`` (POST by default), signed with ``X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256 of the
raw body>`` when the customer has a webhook secret. Up to 3 attempts, 1 s apart, on a transport error or
a 5xx answer (VoIPBIN's policy). An activeflow created with its own ``webhook_uri`` also receives the
events that belong to it. Deliveries to one customer keep their order; a slow customer never
blocks another (one worker per customer with a bounded queue; what overflows is logged and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from voipbin.events.bus import Event, EventBus, Subscription
from voipbin.security import Encryptor, sign_body
from voipbin.security.outbound import guarded_client, policy_for
from voipbin.store.db import Database
from voipbin.store.tables import Customer

log = logging.getLogger(__name__)

ATTEMPTS = 3
RETRY_DELAY = 1.0
TIMEOUT = 5.0
CONFIG_TTL = 5.0  # seconds a customer's webhook settings are cached
QUEUE_PER_CUSTOMER = 1000


@dataclass(frozen=True)
class Target:
    uri: str
    method: str
    secret: str


class WebhookDispatcher:
    def __init__(
        self,
        db: Database,
        events: EventBus,
        encryptor: Encryptor,
        *,
        retry_delay: float = RETRY_DELAY,
        outbound_allow: str = "",
    ) -> None:
        self.outbound_allow = outbound_allow  # VOIPBIN_OUTBOUND_ALLOW
        self.db = db
        self.events = events
        self.encryptor = encryptor
        self.retry_delay = retry_delay
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._workers: dict[uuid.UUID, tuple[asyncio.Queue[Event], asyncio.Task[None]]] = {}
        self._config: dict[uuid.UUID, tuple[float, Target | None]] = {}
        self._activeflow_hooks: dict[uuid.UUID, tuple[str, str]] = {}
        self._hook_customers: dict[uuid.UUID, int] = {}  # customers with activeflow hooks: their count
        self._hook_owner: dict[uuid.UUID, uuid.UUID] = {}  # activeflow id -> customer id
        self._refreshing: set[uuid.UUID] = set()
        self._refresh_tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        # The SSRF guard checks the address each delivery really dials (security/outbound.py).
        self._client = guarded_client(policy_for(self.outbound_allow), timeout=TIMEOUT)
        self._sub = self.events.subscribe(wants=self.wants)
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        tasks = [
            t
            for t in (self._task, *(w[1] for w in self._workers.values()), *self._refresh_tasks)
            if t is not None
        ]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def wants(self, customer_id: uuid.UUID, type_: str) -> bool:
        """The bus's filter: events of a customer nobody delivers to are skipped before they are even
        serialized. Settings past their TTL keep answering while a refresh runs (a change made through
        this node's API is applied at once: the customer router calls :meth:`forget`)."""
        if type_ == "activeflow_created" or self._hook_customers.get(customer_id):
            return True
        cached = self._config.get(customer_id)
        if cached is None:
            return True  # unknown yet: the worker looks the settings up
        if cached[0] <= time.monotonic() and customer_id not in self._refreshing:
            self._refreshing.add(customer_id)
            task = asyncio.get_running_loop().create_task(self._refresh(customer_id))
            self._refresh_tasks.add(task)
            task.add_done_callback(self._refresh_tasks.discard)
        return cached[1] is not None

    async def _refresh(self, customer_id: uuid.UUID) -> None:
        try:
            await self._target(customer_id)
        except Exception:
            log.exception("webhook settings of customer %s could not be read", customer_id)
        finally:
            self._refreshing.discard(customer_id)

    def forget(self, customer_id: uuid.UUID) -> None:
        """Drop cached settings (call after the customer's webhook settings change)."""
        self._config.pop(customer_id, None)

    async def _run(self) -> None:
        assert self._sub is not None
        while True:
            event = await self._sub.get()
            if event.type == "activeflow_created" and event.data.get("webhook_uri"):
                # Known before the activeflow's next event: the bus keeps the order of events.
                self.watch_activeflow(
                    uuid.UUID(event.data["id"]),
                    event.data["webhook_uri"],
                    event.data.get("webhook_method", ""),
                )
            if not self._might_deliver(event):
                continue
            queue, _ = self._worker(event.customer_id)
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("webhook queue full for customer %s; dropped %s", event.customer_id, event.type)

    def _worker(self, customer_id: uuid.UUID) -> tuple[asyncio.Queue[Event], asyncio.Task[None]]:
        worker = self._workers.get(customer_id)
        if worker is None or worker[1].done():
            queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_PER_CUSTOMER)
            worker = (queue, asyncio.create_task(self._deliver_all(queue)))
            self._workers[customer_id] = worker
        return worker

    async def _deliver_all(self, queue: asyncio.Queue[Event]) -> None:
        while True:
            event = await queue.get()
            try:
                await self.deliver(event)
            except Exception:
                log.exception("webhook delivery of %s failed unexpectedly", event.type)

    async def _target(self, customer_id: uuid.UUID) -> Target | None:
        cached = self._config.get(customer_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.db.session() as session:
            c = await session.get(Customer, customer_id)
        target = None
        if c is not None and c.tm_delete is None and c.webhook_uri:
            target = Target(
                c.webhook_uri,
                c.webhook_method or "POST",
                self.encryptor.decrypt(c.webhook_secret_enc),
            )
        self._config[customer_id] = (now + CONFIG_TTL, target)
        return target

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

    @staticmethod
    def _activeflow_id(event: Event) -> uuid.UUID | None:
        raw = (
            event.data.get("id") if event.type.startswith("activeflow_") else event.data.get("activeflow_id")
        )
        try:
            return uuid.UUID(str(raw)) if raw else None
        except ValueError:
            return None

    def _might_deliver(self, event: Event) -> bool:
        """Cheap pre-check on the bus loop: skip events nobody will receive (no queueing, no DB)."""
        cached = self._config.get(event.customer_id)
        if cached is None or cached[1] is not None:
            return True
        af_id = self._activeflow_id(event)
        return af_id is not None and af_id in self._activeflow_hooks

    async def _activeflow_target(self, event: Event, customer: Target | None) -> Target | None:
        af_id = self._activeflow_id(event)
        hook = self._activeflow_hooks.get(af_id) if af_id is not None else None
        if hook is None:
            return None
        if event.type == "activeflow_deleted" or (
            event.type == "activeflow_updated" and event.data.get("status") == "ended"
        ):
            self._unwatch_activeflow(af_id)  # type: ignore[arg-type]  # its last event
        secret = customer.secret if customer else await self._secret(event.customer_id)
        return Target(hook[0], hook[1], secret)

    async def _secret(self, customer_id: uuid.UUID) -> str:
        async with self.db.session() as session:
            c = await session.get(Customer, customer_id)
        return self.encryptor.decrypt(c.webhook_secret_enc) if c is not None else ""

    async def deliver(self, event: Event) -> bool:
        customer = await self._target(event.customer_id)
        targets = [t for t in (customer, await self._activeflow_target(event, customer)) if t is not None]
        if not targets:
            return False
        body = json.dumps({"type": event.type, "data": event.data}, separators=(",", ":")).encode()
        sent = False
        for target in dict.fromkeys(targets):  # the same URI twice gets one delivery
            headers = {"Content-Type": "application/json", "User-Agent": "voipbin-webhook"}
            if target.secret:
                headers["X-VoIPBIN-Signature"] = sign_body(target.secret, body)
            sent = await self._send(target, body, headers, event.type) or sent
        return sent

    async def _send(self, target: Target, body: bytes, headers: dict[str, str], what: str) -> bool:
        assert self._client is not None
        for attempt in range(1, ATTEMPTS + 1):
            problem: Any
            try:
                resp = await self._client.request(target.method, target.uri, content=body, headers=headers)
                if resp.status_code < 500:
                    self.delivered += 1
                    if resp.status_code >= 400:
                        log.info("webhook %s to %s answered %s", what, target.uri, resp.status_code)
                    return True
                problem = resp.status_code
            except httpx.HTTPError as exc:
                problem = exc
            log.warning(
                "webhook %s to %s failed (attempt %d/%d): %s", what, target.uri, attempt, ATTEMPTS, problem
            )
            if attempt < ATTEMPTS:
                await asyncio.sleep(self.retry_delay)
        self.failed += 1
        return False


async def stop_dispatcher(dispatcher: WebhookDispatcher | None) -> None:
    if dispatcher is not None:
        with contextlib.suppress(Exception):
            await dispatcher.close()
