"""The activeflow engine: runs a flow's actions, one asyncio task per activeflow.

State document (one per activeflow, held in memory while it runs — ``GET /activeflows`` answers from
it — and written to the ``activeflows`` row by its owner, ``flow.records``, when it starts and ends):

* ``stack`` — frames ``{"actions": [...], "index": i}``; ``index`` is the next action to run in that
  frame. Frame 0 is the flow; ``Push`` (fetch, fetch_flow) adds a frame that runs next and, when it
  is exhausted, pops back to where the pushing action left off.
* ``variables`` (flat ``str -> str``), ``loop_counts`` (goto counters), ``executed_actions``,
  ``current_action``, ``execute_count``.

It is changed only under the activeflow's ``asyncio.Lock``; handlers run outside the lock (they may
wait for minutes), so ``set_variables`` from other services and ``stop()`` never wait for a handler.

Reserved action ids as jump targets: ``…0001`` start (back to the first action of the flow), ``…0002``
finish (end), ``…0003`` next (continue), ``…0000`` empty (halt = end). An action's ``next_id`` of zero
means "the next in the list".

How an activeflow ends, and what happens to its call:

* end of the action list, a ``stop`` action, ``stop()`` / the stop API → call hung up ``normal``;
* a ``hangup`` action → the call is hung up with the action's reason;
* a handler error (including an unsupported action type or an invalid option after substitution) →
  error logged, stored on the row, written to the call's ``metadata.flow_error``, call hung up
  ``failed`` (VoIPBIN hangs up too; ``failed`` makes the cause visible);
* the call hung up (``CallHungUp`` from a call method, or the call manager stopping the activeflow,
  which cancels the running action) → nothing more to do with the call.

Then ``on_complete_flow_id`` (the flow's) starts a new activeflow on the same reference with a copy of
all variables (chain capped at ``MAX_COMPLETE_CHAIN``; ``voipbin.activeflow.complete_count`` counts).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from voipbin import logcontext
from voipbin.flow.handlers.base import (
    ActionContext,
    ActionFailed,
    Continue,
    End,
    EngineServices,
    FlowDeps,
    Goto,
    HandlerRegistry,
    Outcome,
    Push,
)
from voipbin.flow.interfaces import CallControl, CallHungUp
from voipbin.flow.records import ENDED, RUNNING, ActiveflowRecords
from voipbin.flow.variables import activeflow_variables, call_variables, substitute_value, user_variables
from voipbin.models.actions import (
    ID_EMPTY,
    ID_FINISH,
    ID_NEXT,
    ID_START,
    Action,
    ActionValidationError,
    parse_option,
)
from voipbin.serialize import ts
from voipbin.store.cache import RowCache
from voipbin.store.tables import ZERO_UUID, Activeflow, Flow
from voipbin.store.types import utcnow

log = logging.getLogger(__name__)

MAX_COMPLETE_CHAIN = 5
MAX_EXECUTE_COUNT = 10_000  # actions per activeflow; stops runaway next_id/goto cycles
MAX_EXECUTED_KEPT = 1000  # executed_actions keeps the most recent ones
MAX_STACK_DEPTH = 64  # pushed frames (fetch returning fetch ...)
STOP_WAIT_SECONDS = 10.0


class Runner:
    """One live activeflow: its in-memory state document (the row object), lock and task."""

    def __init__(
        self, engine: FlowEngine, row: Activeflow, call: CallControl | None, initial_error: str = ""
    ):
        self.engine = engine
        self.row = row
        self.id = row.id
        self.customer_id = row.customer_id
        self.reference_type = row.reference_type
        self.reference_id = row.reference_id
        self.stack: list[dict[str, Any]] = row.stack
        self.variables: dict[str, str] = row.variables
        self.loop_counts: dict[str, int] = row.loop_counts
        self.executed: list[dict[str, Any]] = row.executed_actions
        self.call = call
        self.initial_error = initial_error
        self.lock = asyncio.Lock()
        self.done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.phase = RUNNING  # running -> finishing -> ended
        self.stop_requested = False
        self.in_handler = False

    # -- cursor ------------------------------------------------------------------------------------

    def _take_next(self) -> Action | None:
        while self.stack:
            frame = self.stack[-1]
            index = frame["index"]
            if index < len(frame["actions"]):
                frame["index"] = index + 1
                return Action.model_validate(frame["actions"][index])
            self.stack.pop()
        return None

    def _jump(self, target: uuid.UUID) -> bool:
        """Move the cursor to ``target``; False if the target ends the activeflow."""
        if target == ID_NEXT:
            return True
        if target in (ID_FINISH, ID_EMPTY):
            return False
        if target == ID_START:
            del self.stack[1:]
            if self.stack:
                self.stack[0]["index"] = 0
            return True
        wanted = str(target)
        for depth in range(len(self.stack) - 1, -1, -1):
            for index, item in enumerate(self.stack[depth]["actions"]):
                if str(item.get("id")) == wanted:
                    del self.stack[depth + 1 :]
                    self.stack[depth]["index"] = index
                    return True
        raise ActionFailed(f"no action with id {target} in this activeflow")

    def _apply(self, action: Action, outcome: Outcome) -> bool:
        """Apply a handler's outcome to the cursor; False when the activeflow is over."""
        if isinstance(outcome, End):
            return False
        if isinstance(outcome, Goto):
            return self._jump(outcome.action_id)
        going = self._jump(action.next_id) if action.next_id != ZERO_UUID else True
        if isinstance(outcome, Push) and going and outcome.actions:
            if len(self.stack) >= MAX_STACK_DEPTH:
                raise ActionFailed(f"too many nested action lists (more than {MAX_STACK_DEPTH})")
            self.stack.append({"actions": [a.to_api() for a in outcome.actions], "index": 0})
        elif not isinstance(outcome, Continue | Push):
            raise ActionFailed(f"handler of {action.type!r} returned {outcome!r}, not an outcome")
        return going

    # -- execution ---------------------------------------------------------------------------------

    async def _execute(self, action: Action) -> Outcome:
        spec = self.engine.registry.get(action.type)
        if spec is None:
            raise ActionFailed(f"action type {action.type!r} is not supported by this engine")
        if spec.supported and spec.needs_call and self.call is None:
            raise ActionFailed(
                f"action {action.type!r} needs a call, but this activeflow runs without one "
                f"(reference_type {self.reference_type!r})"
            )
        try:
            option = parse_option(action)
        except ActionValidationError as exc:
            raise ActionFailed(f"action {action.type!r} ({action.id}): {exc.message}") from None
        ctx = ActionContext(
            services=self.engine.services,
            activeflow_id=self.id,
            customer_id=self.customer_id,
            reference_type=self.reference_type,
            reference_id=self.reference_id,
            action=action,
            option=option,
            variables=self.variables,
            loop_counts=self.loop_counts,
            call=self.call,
        )
        return await spec.handler(ctx)

    def _step(self, action: Action) -> dict[str, Any]:
        """Record the action about to run, in memory (the row is written when the activeflow ends)."""
        row = self.row
        record = {**action.to_api(), "tm_execute": ts(utcnow())}
        row.current_action = record
        self.executed.append(record)
        del self.executed[:-MAX_EXECUTED_KEPT]
        row.tm_update = utcnow()
        self.engine.records.publish(row)
        if self.reference_type == "call" and self.call is not None:
            self.engine.calls.set_action(self.reference_id, record)
        return record

    async def _loop(self) -> None:
        row = self.row
        while not self.stop_requested:
            async with self.lock:
                stored = self._take_next()
                if stored is None:
                    return
                row.execute_count += 1
                if row.execute_count > MAX_EXECUTE_COUNT:
                    raise ActionFailed(f"more than {MAX_EXECUTE_COUNT} actions executed; is there a loop?")
                action = stored.model_copy(update={"option": substitute_value(stored.option, self.variables)})
                self._step(stored)
            if self.stop_requested:
                return
            self.in_handler = True
            try:
                outcome = await self._execute(action)
            finally:
                self.in_handler = False
            async with self.lock:
                going = self._apply(action, outcome)
            if not going:
                return

    async def run(self) -> None:
        ended, error = "end", ""
        try:
            if self.initial_error:
                raise ActionFailed(self.initial_error)
            await self._loop()
            if self.stop_requested:
                ended = "stop"
        except asyncio.CancelledError:
            # stop() cancels only while a handler runs; any other cancel (shutdown) also ends cleanly.
            ended = "stop"
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except CallHungUp:
            ended = "hangup"
        except ActionFailed as exc:
            ended, error = "error", str(exc)
        except Exception as exc:  # a handler bug must not leave the call hanging
            if self.call is not None and self.call.is_hungup:
                # The call ended under the running action (its media closed mid-request): a hangup.
                log.info("activeflow %s: the call ended during an action (%r)", self.id, exc)
                ended = "hangup"
            else:
                log.exception("activeflow %s: unexpected error", self.id)
                ended, error = "error", f"internal error: {exc!r}"
        self.phase = "finishing"
        try:
            await self._finish(ended, error)
        except Exception:
            log.exception("activeflow %s: error while finishing", self.id)
        finally:
            self.phase = ENDED
            self.done.set()
            self.engine._runners.pop(self.id, None)

    async def _finish(self, ended: str, error: str) -> None:
        if error:
            log.error(
                "activeflow %s (%s %s) ended: %s", self.id, self.reference_type, self.reference_id, error
            )
        else:
            log.debug("activeflow %s ended (%s)", self.id, ended)
        async with self.lock:
            self.row.status = ENDED
            if error:
                self.row.error = error
            await self.engine.records.save(self.row)
        call = self.call
        if call is not None and ended != "hangup" and not call.is_hungup:
            if error and self.reference_type == "call":
                await self.engine.calls.merge_metadata(self.reference_id, flow_error=error)
            try:
                await call.hangup("failed" if error else "normal")
            except CallHungUp:
                pass
            except Exception:
                log.exception("activeflow %s: hanging up call %s failed", self.id, call.call_id)
        await self.engine._chain(self)

    async def stop(self, *, wait: bool = True) -> None:
        if self.phase != RUNNING:
            return
        self.stop_requested = True
        if self.task is None or asyncio.current_task() is self.task:
            return  # stopping from inside the flow (e.g. hangup action → call manager → stop)
        if self.in_handler:
            self.task.cancel()
        if wait:
            try:
                async with asyncio.timeout(STOP_WAIT_SECONDS):
                    await self.done.wait()
            except TimeoutError:
                log.error("activeflow %s did not stop within %.0f s", self.id, STOP_WAIT_SECONDS)


class FlowEngine:
    """Creates, runs and stops the activeflows of this node. Live state stays in memory."""

    def __init__(self, records: ActiveflowRecords, registry: HandlerRegistry, deps: FlowDeps) -> None:
        self.records = records
        self.registry = registry
        self.deps = deps
        self.calls = deps.calls
        self.services = EngineServices(deps)
        self._runners: dict[uuid.UUID, Runner] = {}
        self._closing = False
        self._flows: RowCache[uuid.UUID, Flow | None] = RowCache(Flow)  # read on every call

    def is_live(self, activeflow_id: uuid.UUID) -> bool:
        return activeflow_id in self._runners

    async def get(self, activeflow_id: uuid.UUID) -> Activeflow | None:
        """The live state of a running activeflow, else the stored row."""
        runner = self._runners.get(activeflow_id)
        if runner is not None:
            return runner.row
        return await self.records.get(activeflow_id)

    def live_row(self, activeflow_id: uuid.UUID) -> Activeflow | None:
        runner = self._runners.get(activeflow_id)
        return runner.row if runner is not None else None

    async def _load_flow(self, flow_id: uuid.UUID) -> Flow | None:
        async with self.deps.db.session() as session:
            return await session.get(Flow, flow_id)

    async def _flow_actions(
        self, customer_id: uuid.UUID, flow_id: uuid.UUID
    ) -> tuple[list[dict[str, Any]], uuid.UUID] | None:
        flow = await self._flows.get(flow_id, self._load_flow)
        if flow is None or flow.customer_id != customer_id or flow.tm_delete is not None:
            return None
        return list(flow.actions or []), flow.on_complete_flow_id

    async def create(
        self,
        customer_id: uuid.UUID,
        *,
        reference_type: str,
        reference_id: uuid.UUID = ZERO_UUID,
        flow_id: uuid.UUID | None = None,
        actions: list[Action] | None = None,
        variables: Mapping[str, Any] | None = None,
        call: CallControl | None = None,
        activeflow_id: uuid.UUID | None = None,
        webhook_uri: str = "",
        webhook_method: str = "",
        inherited_variables: Mapping[str, str] | None = None,
        reference_activeflow_id: uuid.UUID = ZERO_UUID,
        complete_count: int = 0,
    ) -> Activeflow:
        """Create an activeflow and start running it. ``flow_id`` wins over ``actions``.

        A missing flow does not raise: the activeflow is created and ends at once with the error (a call
        is hung up ``failed``), so the failure is visible on the activeflow and the call.
        """
        initial_error = ""
        stored: list[dict[str, Any]] = []
        on_complete = ZERO_UUID
        if flow_id is not None and flow_id != ZERO_UUID:
            found = await self._flow_actions(customer_id, flow_id)
            if found is None:
                initial_error = f"flow {flow_id} not found"
            else:
                stored, on_complete = found
        else:
            flow_id = ZERO_UUID
            stored = [a.to_api() for a in actions or []]

        new_id = activeflow_id or uuid.uuid4()
        values: dict[str, str] = dict(inherited_variables or {})
        values.update(user_variables(variables))
        if reference_type == "call" and not inherited_variables:
            c = await self.calls.get(reference_id)
            if c is not None:
                values.update(
                    call_variables(
                        call_id=c.id,
                        source=c.source,
                        destination=c.destination,
                        direction=c.direction,
                        master_call_id=c.master_call_id,
                    )
                )
        values.update(
            activeflow_variables(
                activeflow_id=new_id,
                reference_type=reference_type,
                reference_id=reference_id,
                reference_activeflow_id=reference_activeflow_id,
                flow_id=flow_id,
                complete_count=complete_count,
            )
        )
        row = self.records.new(
            customer_id,
            activeflow_id=new_id,
            flow_id=flow_id,
            reference_type=reference_type,
            reference_id=reference_id,
            reference_activeflow_id=reference_activeflow_id,
            on_complete_flow_id=on_complete,
            webhook_uri=webhook_uri,
            webhook_method=webhook_method,
            actions=stored,
            variables=values,
            complete_count=complete_count,
        )
        await self.records.add(row)
        if reference_type == "call":
            self.calls.note(reference_id, activeflow_id=new_id)
        runner = Runner(self, row, call, initial_error)
        self._runners[new_id] = runner
        # The runner's task and everything it starts log with the activeflow's (and call's) ids.
        ids = logcontext.context(
            activeflow_id=new_id, call_id=reference_id if reference_type == "call" else None
        )
        runner.task = asyncio.get_running_loop().create_task(
            runner.run(), name=f"activeflow {new_id}", context=ids
        )
        return row

    async def start_call(
        self,
        call: CallControl,
        *,
        flow_id: uuid.UUID | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> uuid.UUID:
        """Run a call's flow: creates the activeflow (reference_type ``call``), links it to the call and
        starts executing with ``call`` as the call control. ``flow_id`` / ``variables`` default to the
        call's. Returns at once with the activeflow id; raises ``LookupError`` if the call is unknown."""
        row = await self.calls.get(call.call_id)
        if row is None:
            raise LookupError(f"call {call.call_id} not found")
        activeflow = await self.create(
            row.customer_id,
            reference_type="call",
            reference_id=row.id,
            flow_id=flow_id if flow_id is not None else row.flow_id,
            variables=variables if variables is not None else row.variables,
            call=call,
        )
        return activeflow.id

    async def _chain(self, runner: Runner) -> None:
        row = runner.row
        if row.on_complete_flow_id == ZERO_UUID or self._closing:
            return
        if row.complete_count >= MAX_COMPLETE_CHAIN:
            log.warning(
                "activeflow %s: on_complete chain stopped after %d flows", runner.id, MAX_COMPLETE_CHAIN
            )
            return
        await self.create(
            runner.customer_id,
            reference_type=runner.reference_type,
            reference_id=runner.reference_id,
            flow_id=row.on_complete_flow_id,
            call=runner.call,
            webhook_uri=row.webhook_uri,
            webhook_method=row.webhook_method,
            inherited_variables=runner.variables,
            reference_activeflow_id=runner.id,
            complete_count=row.complete_count + 1,
        )

    async def stop(self, activeflow_id: uuid.UUID, *, wait: bool = True) -> None:
        """Stop a running activeflow (idempotent); cancels the running action. Safe to call from inside
        the flow; call managers reacting to a hangup pass ``wait=False``. A row left ``running`` by an
        earlier boot is ended."""
        runner = self._runners.get(activeflow_id)
        if runner is not None:
            await runner.stop(wait=wait)
            return
        await self.records.end_stored(activeflow_id)

    async def wait(self, activeflow_id: uuid.UUID) -> None:
        """Return when the activeflow has ended (at once if it is not running here); bound it with
        ``asyncio.timeout`` if needed."""
        runner = self._runners.get(activeflow_id)
        if runner is not None:
            await runner.done.wait()

    async def set_variables(self, activeflow_id: uuid.UUID, values: Mapping[str, str]) -> bool:
        """Set variables from outside the flow (e.g. transcribe/recording services); False if unknown."""
        runner = self._runners.get(activeflow_id)
        if runner is not None:
            async with runner.lock:
                runner.variables.update(values)
                runner.row.tm_update = utcnow()
                self.records.publish(runner.row)
            return True
        return await self.records.set_stored_variables(activeflow_id, dict(values))

    async def close(self) -> None:
        """Stop every activeflow (their calls are hung up) and release HTTP clients and tasks."""
        self._closing = True
        for runner in list(self._runners.values()):
            await runner.stop()
        await self.services.close()
        self._flows.close()
