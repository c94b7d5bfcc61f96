"""Group commit: the writes of live rows, applied in order, many per transaction.

Call setup writes a few small rows per call (the call, its activeflow, status changes, the hangup). One
ORM session and one commit per change costs more CPU than the call's SIP and media, and on SQLite the
writers of concurrent sessions queue on the database lock (the busy handler sleeps). The owners of live
rows therefore hand their writes to one :class:`WriteBehind`: a single task takes everything queued so
far, runs it in one transaction (consecutive writes with the same statement as one ``executemany``) and
resolves each caller's future when it is committed. Order is kept: a call's later change is never written
before an earlier one. Writes queued in the same tick land in the same transaction (a batch takes
everything queued so far): an owner submits its change, publishes the event (whose webhook outbox rows are
queued at once) and then awaits the commit, so the change and its event are stored together. Awaiting the
returned future means "stored"; callers on a hot path that only need the order may leave it (errors are
logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from voipbin.store.db import Database

log = logging.getLogger(__name__)
MAX_BATCH = 500  # writes per transaction


Params = Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]]


Work = Callable[[AsyncConnection], Awaitable[None]]


@dataclass
class _Write:
    statement: Executable | None
    params: Params | None
    key: Hashable | None = None
    work: Work | None = None  # instead of a statement: run inside the batch's transaction
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def rows(self) -> list[dict[str, Any]]:
        params = self.params() if callable(self.params) else self.params
        return list(params or [])


def _grouped(batch: list[_Write]) -> list[tuple[Executable | _Write, list[dict[str, Any]] | None]]:
    """The statements to run for ``batch``, as few as possible.

    When every write is keyed (its rows are read from live state when the batch runs), each statement
    runs once with all its rows, in the order the statements first appear: whatever the order within
    one batch, every row ends up with its latest state (an UPDATE that runs before the INSERT of the
    same row matches nothing, and the INSERT then writes the latest state). Otherwise writes run in
    order, with neighbouring writes of one statement merged."""
    if all(w.key is not None for w in batch):
        groups: dict[int, tuple[Executable, list[dict[str, Any]]]] = {}
        for w in batch:
            assert w.statement is not None
            group = groups.setdefault(id(w.statement), (w.statement, []))
            group[1].extend(w.rows())
        return [(statement, rows) for statement, rows in groups.values()]
    out: list[tuple[Executable | _Write, list[dict[str, Any]] | None]] = []
    for w in batch:
        if w.work is not None:
            out.append((w, None))
        elif w.statement is None:
            continue
        elif w.params is None:
            out.append((w.statement, None))
        elif out and out[-1][0] is w.statement and out[-1][1] is not None:
            rows = out[-1][1]
            assert rows is not None
            rows.extend(w.rows())
        else:
            out.append((w.statement, w.rows()))
    return out


class WriteBehind:
    def __init__(self, db: Database, *, window: float = 0.0) -> None:
        self.db = db
        self.window = window  # seconds a batch waits for more writes (bigger batches, cheaper per write)
        self._queue: list[_Write] = []
        self._inflight: list[_Write] = []
        self._pending: dict[tuple[int, Hashable], _Write] = {}  # keyed writes not yet taken
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.writes = 0

    def submit(
        self, statement: Executable, params: Params | None = None, *, key: Hashable | None = None
    ) -> asyncio.Future[None]:
        """Queue ``statement`` (``params``: rows for an executemany); resolves once committed.

        With a ``key``, ``params`` is a function read when the batch is written, and a write of the same
        statement and key still waiting joins this one: a row written from live state (a call's status
        changing three times within one batch) is written once, with its latest state."""
        if key is not None:
            waiting = self._pending.get((id(statement), key))
            if waiting is not None:
                return waiting.done
        write = _Write(statement, params if callable(params) or params is None else list(params), key)
        if key is not None:
            self._pending[(id(statement), key)] = write
        return self._enqueue(write)

    def run(self, work: Work) -> asyncio.Future[None]:
        """Run ``work(connection)`` inside a batch's transaction, in order with the other writes; a write
        that needs more than a statement (a hangup and its charge) never competes for the database lock.
        Resolves once committed (like :meth:`submit`, so writes queued in the same tick share it)."""
        return self._enqueue(_Write(None, None, work=work))

    def _enqueue(self, write: _Write) -> asyncio.Future[None]:
        self._queue.append(write)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="write-behind")
        return write.done

    async def write(
        self, statement: Executable, params: Params | None = None, *, key: Hashable | None = None
    ) -> None:
        """Queue and wait until committed."""
        await self.submit(statement, params, key=key)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(self.window)  # let more writes join the batch
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            for write in batch:
                if write.key is not None:
                    self._pending.pop((id(write.statement), write.key), None)
            self._inflight = batch
            try:
                await self._apply(batch)
            except Exception as exc:
                # One bad write must not lose the others: retry them one by one.
                log.warning("group commit of %d writes failed (%s); retrying one by one", len(batch), exc)
                for write in batch:
                    try:
                        await self._apply([write])
                    except Exception as single:
                        log.exception("write failed: %s", write.statement)
                        if not write.done.done():
                            write.done.set_exception(single)
            for write in batch:
                if not write.done.done():
                    write.done.set_result(None)
            self._inflight = []

    async def _apply(self, batch: list[_Write]) -> None:
        async with self.db.engine.begin() as conn:
            for statement, rows in _grouped(batch):
                if isinstance(statement, _Write):
                    assert statement.work is not None
                    await statement.work(conn)
                elif rows is None:
                    await conn.execute(statement)
                elif rows:
                    await conn.execute(statement, rows)
        self.batches += 1
        self.writes += len(batch)

    async def flush(self) -> None:
        """Until everything queued so far is committed."""
        pending = [w.done for w in (*self._inflight, *self._queue)]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
