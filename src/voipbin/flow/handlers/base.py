"""The contract between the engine and action handlers: context, outcomes, errors and the registry.

A handler is ``async def handler(ctx: ActionContext) -> Outcome``. It gets the action with its option
already ``${}``-substituted and parsed into the typed option model, and returns what happens next:

* ``Continue()`` — the next action (the action's ``next_id`` if set, else the next in the list);
* ``Goto(action_id)`` — jump (reserved ids: start, finish, next);
* ``Push(actions)`` — run these actions next, then resume after the current one (fetch, fetch_flow);
* ``End()`` — the activeflow is over (a call is then hung up with reason ``normal``).

Waiting is done by simply awaiting inside the handler (``receive_digits``, ``play_wav``, ``sleep``):
each activeflow runs as its own asyncio task, so a wait costs nothing and ``stop()`` cancels it at
once. When a call ends, its manager stops the activeflow, which cancels the running handler: handlers
never race the hangup themselves. There is therefore no separate "wait for event" outcome; a handler
that waits for an external event awaits a future with ``asyncio.timeout``.

Any exception a handler raises ends the activeflow with the error logged and, for a call, hangs the
call up with reason ``failed`` (VoIPBIN also hangs up; ``failed`` says why). ``CallHungUp`` is the
exception: the caller left, so the flow ends quietly.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from voipbin.flow.interfaces import CallControl
from voipbin.models.actions import RTC_ONLY, Action

if TYPE_CHECKING:
    import httpx

    from voipbin.config import Settings
    from voipbin.flow.interfaces import CallRecordsPort
    from voipbin.security import Encryptor
    from voipbin.store.db import Database

log = logging.getLogger(__name__)


class ActionFailed(Exception):
    """An action could not be carried out; the activeflow ends with this message."""


@dataclass(frozen=True)
class Continue:
    pass


@dataclass(frozen=True)
class Goto:
    action_id: uuid.UUID


@dataclass(frozen=True)
class Push:
    actions: list[Action]


@dataclass(frozen=True)
class End:
    pass


Outcome = Continue | Goto | Push | End
CONTINUE = Continue()


@dataclass(frozen=True)
class FlowDeps:
    """What the core handlers need, handed in by the composition root (read-only collaborators)."""

    db: Database  # reads of flows, customers and billing accounts
    settings: Settings
    encryptor: Encryptor
    calls: CallRecordsPort


class EngineServices:
    """What handlers may use of the engine: its collaborators, one shared HTTP client, background tasks."""

    def __init__(self, deps: FlowDeps) -> None:
        self.deps = deps
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Running external media streams by call id, so external_media_stop can end them.
        self.media_streams: dict[uuid.UUID, Any] = {}

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            from voipbin.security.outbound import guarded_client, policy_for

            policy = policy_for(self.deps.settings.outbound_allow)
            self._http = guarded_client(policy, timeout=httpx.Timeout(10.0))
        return self._http

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A fire-and-forget task that is kept referenced, logged on failure and cancelled on close."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def _done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task %s failed: %s", name, t.exception())

        task.add_done_callback(_done)
        return task

    async def drain(self, limit: float = 5.0) -> None:
        """Wait (at most ``limit`` seconds) for background tasks such as async webhook sends."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=limit)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None


@dataclass
class ActionContext:
    services: EngineServices
    activeflow_id: uuid.UUID
    customer_id: uuid.UUID
    reference_type: str
    reference_id: uuid.UUID
    action: Action  # substituted
    option: BaseModel  # typed option of ``action``
    variables: dict[str, str]  # the activeflow's live variable map
    loop_counts: dict[str, int]  # per-goto execution counters (part of the state document)
    call: CallControl | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def deps(self) -> FlowDeps:
        return self.services.deps

    def require_call(self) -> CallControl:
        if self.call is None:
            raise ActionFailed(
                f"action {self.action.type!r} needs a call, but this activeflow runs without one "
                f"(reference_type {self.reference_type!r})"
            )
        return self.call

    def set_variable(self, key: str, value: str) -> None:
        self.variables[key] = value

    def set_variables(self, values: Mapping[str, str]) -> None:
        self.variables.update(values)


Handler = Callable[[ActionContext], Awaitable[Outcome]]


@dataclass(frozen=True)
class HandlerSpec:
    type: str
    handler: Handler
    needs_call: bool
    supported: bool = True


class HandlerRegistry:
    """Action type → handler. Types marked unsupported may later be replaced by a real handler."""

    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}

    def register(
        self, type_: str, handler: Handler, *, needs_call: bool | None = None, supported: bool = True
    ) -> None:
        current = self._specs.get(type_)
        if current is not None and current.supported and supported:
            raise ValueError(f"a handler for action type {type_!r} is already registered")
        if current is not None and current.supported and not supported:
            return  # never downgrade a real handler to the "unsupported" marker
        if needs_call is None:
            needs_call = type_ in RTC_ONLY
        self._specs[type_] = HandlerSpec(type_, handler, needs_call, supported)

    def handler(self, *types: str, needs_call: bool | None = None) -> Callable[[Handler], Handler]:
        """Decorator form: ``@registry.handler("answer")``."""

        def decorate(fn: Handler) -> Handler:
            for type_ in types:
                self.register(type_, fn, needs_call=needs_call)
            return fn

        return decorate

    def copy(self) -> HandlerRegistry:
        """A registry to extend (the composition root adds the AI and transcription handlers)."""
        other = HandlerRegistry()
        other._specs = dict(self._specs)
        return other

    def get(self, type_: str) -> HandlerSpec | None:
        return self._specs.get(type_)

    def supported_types(self) -> frozenset[str]:
        return frozenset(t for t, s in self._specs.items() if s.supported)

    def unsupported_types(self) -> frozenset[str]:
        return frozenset(t for t, s in self._specs.items() if not s.supported)
