"""Which triggers read which objects: the lookup dependency index.

The reconciler records, after each evaluation, the objects a trigger's rules looked up
(`Result.lookups`, absent ones included); when one of those objects changes, the
manager's event handler asks `dependents` and re-queues those triggers. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from engine.objects import ObjectKey


class Dependencies:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: dict[ObjectKey, frozenset[ObjectKey]] = {}
        self._readers: dict[ObjectKey, set[ObjectKey]] = {}

    def record(self, trigger: ObjectKey, lookups: Iterable[ObjectKey]) -> None:
        new = frozenset(lookups)
        # Most triggers look nothing up: that is decided without the lock. Only the
        # reconcile of `trigger` (one at a time, by the work queue) records its reads.
        if not new and trigger not in self._reads:
            return
        with self._lock:
            old = self._reads.get(trigger, frozenset())
            if old == new:
                return
            for key in old - new:
                readers = self._readers.get(key)
                if readers is not None:
                    readers.discard(trigger)
                    if not readers:
                        del self._readers[key]
            for key in new - old:
                self._readers.setdefault(key, set()).add(trigger)
            if new:
                self._reads[trigger] = new
            else:
                self._reads.pop(trigger, None)

    def forget(self, trigger: ObjectKey) -> None:
        self.record(trigger, ())

    def dependents(self, looked_up: ObjectKey) -> set[ObjectKey]:
        with self._lock:
            return set(self._readers.get(looked_up, ()))
