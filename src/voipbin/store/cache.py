"""Read caches of rows the call path looks up on every call (a number's owner and flow, a flow's actions).

Each cache forgets everything when any row of its table is inserted, updated or deleted through the ORM
in this process (mapper events, registered for the cache's lifetime), so an API change takes effect on
the very next call; ``ttl`` bounds what another node's change could leave stale. Values are the
detached rows, read-only. Bounded in size (oldest entries go first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import event

K = TypeVar("K")
V = TypeVar("V")
_EVENTS = ("after_insert", "after_update", "after_delete")


class RowCache(Generic[K, V]):
    def __init__(self, model: type[Any], *, ttl: float = 5.0, max_size: int = 10_000) -> None:
        self.model = model
        self.ttl = ttl
        self.max_size = max_size
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        for name in _EVENTS:
            event.listen(model, name, self._changed)

    def _changed(self, *_: Any) -> None:
        self._data.clear()

    async def get(self, key: K, load: Callable[[K], Awaitable[V]]) -> V:
        now = time.monotonic()
        found = self._data.get(key)
        if found is not None and found[0] > now:
            self.hits += 1
            return found[1]
        self.misses += 1
        value = await load(key)
        self._data[key] = (now + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)
        return value

    def close(self) -> None:
        for name in _EVENTS:
            if event.contains(self.model, name, self._changed):
                event.remove(self.model, name, self._changed)
        self._data.clear()
