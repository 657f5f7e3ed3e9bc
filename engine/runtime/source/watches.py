"""Which kinds the engine watches: one shared informer per kind, reference-counted.

The manager (when rule sets load, change or go away) calls `acquire(gvk, holder)` for
every kind a rule set matches, looks up or generates, and `release(gvk, holder)` for
the kinds it no longer names. A holder is any hashable identity (a rule set's key, or
"engine" for the RuleSet kinds themselves). The first holder of a kind starts its
informer; when the last one releases it the informer stops and its cache is dropped,
so a kind no rule names any more costs nothing.

With a `namespace` restriction (`edict run --namespace`), namespaced kinds are
listed and watched in that namespace only (cluster-scoped kinds are still watched
whole: the API ignores the namespace for them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable

from engine.objects import GVK, Obj

from ..clock import Clock
from .informer import Informer, InformerSettings, ListWatcher
from .store import Versions


class NotWatched(KeyError):
    """`informer(gvk)` for a kind no holder has acquired."""


class WatchManager:
    """Thread-safe registry of running informers and their holders."""

    def __init__(self, *, source: ListWatcher, clock: Clock,
                 settings: InformerSettings | None = None,
                 namespace: str | None = None,
                 on_started: Callable[[Informer], None] | None = None) -> None:
        """`on_started` runs for each new informer before it starts (to add indexes and
        handlers, so that they see the very first list); it runs under the manager's
        lock and must not call back into the manager."""
        self._source = source
        self._clock = clock
        self._settings = settings or InformerSettings()
        self.namespace = namespace
        self._on_started = on_started
        self._lock = threading.Lock()
        self._informers: dict[GVK, Informer] = {}
        self._holders: dict[GVK, set[Hashable]] = {}

    def on_started(self, hook: Callable[[Informer], None]) -> None:
        """Set the hook run for each new informer before it starts (same contract as the
        constructor's `on_started`); only before the first `acquire`."""
        with self._lock:
            if self._informers:
                raise RuntimeError("on_started must be set before any informer starts")
            self._on_started = hook

    def acquire(self, gvk: GVK, holder: Hashable) -> Informer:
        """Hold `gvk` for `holder` (idempotent); start its informer if it is the first."""
        with self._lock:
            holders = self._holders.setdefault(gvk, set())
            holders.add(holder)
            informer = self._informers.get(gvk)
            if informer is None:
                informer = Informer(gvk, source=self._source, clock=self._clock,
                                    settings=self._settings, namespace=self.namespace)
                if self._on_started is not None:
                    self._on_started(informer)
                informer.start()
                self._informers[gvk] = informer
            return informer

    def release(self, gvk: GVK, holder: Hashable) -> None:
        """Drop `holder`'s hold on `gvk` (idempotent); stop the informer after the last."""
        with self._lock:
            holders = self._holders.get(gvk)
            if holders is None:
                return
            holders.discard(holder)
            if holders:
                return
            del self._holders[gvk]
            informer = self._informers.pop(gvk)
        informer.stop()  # outside the lock: stopping joins threads

    def release_all(self, holder: Hashable) -> None:
        """Drop every hold of `holder` (a rule set that was deleted)."""
        for gvk in self.held_by(holder):
            self.release(gvk, holder)

    def informer(self, gvk: GVK) -> Informer:
        with self._lock:
            informer = self._informers.get(gvk)
        if informer is None:
            raise NotWatched(f"{gvk} is not watched (no rule set names it)")
        return informer

    def cached(self, gvk: GVK, namespace: str | None = None) -> list[Obj]:
        """The cached objects of a kind (or of one namespace); [] when it is not watched."""
        with self._lock:
            informer = self._informers.get(gvk)
        return [] if informer is None else informer.store.list(namespace=namespace)

    def cached_indexed(self, gvk: GVK, index_name: str) -> list[Obj]:
        """The cached objects of a kind having a value in `index_name` (only those are
        decoded); [] when it is not watched."""
        with self._lock:
            informer = self._informers.get(gvk)
        return [] if informer is None else informer.store.indexed(index_name)

    def cached_versions(self, gvk: GVK, namespace: str | None = None) -> Versions:
        """The key and resourceVersion of every cached object of a kind (or of one
        namespace), nothing decoded; [] when it is not watched."""
        with self._lock:
            informer = self._informers.get(gvk)
        return [] if informer is None else informer.store.versions(namespace=namespace)

    def watched(self) -> frozenset[GVK]:
        with self._lock:
            return frozenset(self._informers)

    def holders(self, gvk: GVK) -> frozenset[Hashable]:
        with self._lock:
            return frozenset(self._holders.get(gvk, ()))

    def held_by(self, holder: Hashable) -> frozenset[GVK]:
        with self._lock:
            return frozenset(gvk for gvk, holders in self._holders.items() if holder in holders)

    def wait_synced(self, gvks: Iterable[GVK], timeout: float | None = None) -> bool:
        """Wait until the informers of `gvks` have synced; False on timeout."""
        deadline = None if timeout is None else self._clock.now() + timeout
        for gvk in gvks:
            remaining = None if deadline is None else max(deadline - self._clock.now(), 0.0)
            if not self.informer(gvk).wait_synced(remaining):
                return False
        return True

    def unsynced(self) -> frozenset[GVK]:
        """Watched kinds whose first list has not arrived yet (for readiness)."""
        with self._lock:
            informers = dict(self._informers)
        return frozenset(gvk for gvk, inf in informers.items() if not inf.has_synced())

    def retry_now(self) -> None:
        """Cut every informer's backoff short: the API server answers again."""
        with self._lock:
            informers = list(self._informers.values())
        for informer in informers:
            informer.retry_now()

    def stop(self) -> None:
        """Stop every informer (shutdown); holders are forgotten."""
        with self._lock:
            informers = list(self._informers.values())
            self._informers.clear()
            self._holders.clear()
        for informer in informers:
            informer.stop()
