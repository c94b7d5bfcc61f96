"""Group commit: the writes of live rows, applied in order, many per transaction.

Call setup writes a few small rows per call (the call, its activeflow, status changes, the hangup). One
ORM session and one commit per change costs more CPU than the call's SIP and media, and on SQLite the
writers of concurrent sessions queue on the database lock (the busy handler sleeps). The owners of live
rows therefore hand their writes to one :class:`WriteBehind`: a single task takes everything queued so
far, runs it in one transaction (consecutive writes with the same statement as one ``executemany``) and
resolves each caller's future when it is committed. Order is kept: a call's later change is never
written before an earlier one. Awaiting the returned future means "stored"; callers on a hot path that
only need the order may leave it (errors are logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.sql import Executable

from voipbin.store.db import Database

log = logging.getLogger(__name__)
MAX_BATCH = 500  # writes per transaction


Params = Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]]


@dataclass
class _Write:
    statement: Executable
    params: Params | None
    key: Hashable | None = None
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def rows(self) -> list[dict[str, Any]]:
        params = self.params() if callable(self.params) else self.params
        return list(params or [])


class WriteBehind:
    def __init__(self, db: Database) -> None:
        self.db = db
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
            await asyncio.sleep(0)  # let the writes of this loop iteration join the batch
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
            i = 0
            while i < len(batch):
                write = batch[i]
                if write.params is None:
                    await conn.execute(write.statement)
                    i += 1
                    continue
                rows = write.rows()
                j = i + 1
                while (
                    j < len(batch) and batch[j].statement is write.statement and batch[j].params is not None
                ):
                    rows.extend(batch[j].rows())
                    j += 1
                if rows:
                    await conn.execute(write.statement, rows)
                i = j
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
