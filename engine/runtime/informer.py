"""A shared informer: one kind's objects cached locally and kept current by a watch.

`WatchManager` (watches.py) creates one `Informer` per kind any rule names; the
reconciler reads its `store` and registers event handlers that turn events into queue
keys. The informer's thread lists the kind, then watches from the list's
resourceVersion with bookmarks; a watch that ends is resumed from the last version
seen, a `Gone` (410: version too old) lists again, and any other error retries with
exponential backoff. Every `resync_period` each cached object is delivered again as
an update (`on_update(obj, obj)`) so that level-based reconcilers revisit everything.

Handlers run on the informer's own threads, one event at a time and in order; they
should be quick (queue a key). They receive the cached dicts themselves, which they
MUST NOT mutate. A handler that raises is logged and does not stop the informer.

The informer talks to a `ListWatcher` (`engine.kube.Cluster` is one); tests drive it
with a scripted fake. Time (backoff, resync) comes from the injected clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from engine.kube.errors import Gone, api_error
from engine.objects import GVK, Obj, meta

from .clock import Clock, Stop
from .slim import slim
from .store import IndexFunc, Store, StoreKey, StoreReader, store_key

log = logging.getLogger(__name__)


class WatchStream(Protocol):
    def __iter__(self) -> Iterator[tuple[str, Obj]]: ...

    def close(self) -> None: ...


class ListWatcher(Protocol):
    """The two API calls an informer needs; `engine.kube.Cluster` provides them."""

    def list(self, gvk: GVK, *, namespace: str | None = None,
             label_selector: str | None = None, resource_version: str | None = None,
             limit: int | None = None, transform: Callable[[Obj], Obj] | None = None
             ) -> tuple[list[Obj], str]: ...

    def watch(self, gvk: GVK, *, namespace: str | None = None, resource_version: str,
              timeout_seconds: int, label_selector: str | None = None,
              allow_bookmarks: bool = True) -> WatchStream: ...


@dataclass(frozen=True, kw_only=True)
class InformerSettings:
    transform: Callable[[Obj], Obj] | None = slim
    """What is cached of each object (and handed to handlers): see `slim.py`."""

    resync_period: float = 600.0
    """Seconds between re-deliveries of every cached object; 0 disables resync."""
    watch_timeout: int = 300
    """Server-side timeoutSeconds of one watch request (then it is resumed)."""
    page_size: int = 500
    backoff_initial: float = 1.0
    backoff_max: float = 30.0


@dataclass(frozen=True)
class EventHandler:
    """Callbacks for one consumer; each receives cached objects it must not mutate."""

    on_add: Callable[[Obj], None] | None = None
    on_update: Callable[[Obj, Obj], None] | None = None  # (old, new); old is new on resync
    on_delete: Callable[[Obj], None] | None = None  # the last state known


def resource_version_of(obj: Obj) -> str:
    return str(meta(obj).get("resourceVersion") or "")


class Informer:
    def __init__(self, gvk: GVK, *, source: ListWatcher, clock: Clock,
                 settings: InformerSettings | None = None, namespace: str | None = None,
                 label_selector: str | None = None) -> None:
        self.gvk = gvk
        self.namespace = namespace
        self._source = source
        self._clock = clock
        self._settings = settings or InformerSettings()
        self._label_selector = label_selector
        self._store = Store()
        self._handlers: list[EventHandler] = []
        self._dispatch = threading.RLock()  # one event at a time, handlers in order
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._stop = Stop(clock)
        self._synced = threading.Condition()
        self._has_synced = False
        self._resource_version: str | None = None  # None: list before watching
        self._last_error: Exception | None = None
        self._threads: list[threading.Thread] = []

    # -- consumers ----------------------------------------------------------------------

    @property
    def store(self) -> StoreReader:
        return self._store

    @property
    def resource_version(self) -> str | None:
        """The last resourceVersion seen (list, event or bookmark)."""
        return self._resource_version

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Register index `name`; existing objects are indexed at once."""
        self._store.add_index(name, func)

    def add_handler(self, handler: EventHandler) -> None:
        """Register `handler`; it first gets `on_add` for every object already cached."""
        with self._dispatch:
            self._handlers.append(handler)
            for obj in self._store.list():
                self._call(handler.on_add, obj)

    def remove_handler(self, handler: EventHandler) -> None:
        with self._dispatch:
            self._handlers = [h for h in self._handlers if h is not handler]

    def has_synced(self) -> bool:
        """True once the first list is in the store and delivered to handlers."""
        with self._synced:
            return self._has_synced

    def wait_synced(self, timeout: float | None = None, *, or_failing: bool = False) -> bool:
        """Wait until the first list is in; with `or_failing`, return as soon as a list
        or watch has failed as well (see `last_error`)."""
        deadline = None if timeout is None else self._clock.now() + timeout
        with self._synced:
            while not self._has_synced and not self._stop.is_set() and not (
                    or_failing and self._last_error is not None):
                now = self._clock.now()
                if deadline is not None and now >= deadline:
                    break
                self._clock.wait(self._synced, None if deadline is None else deadline - now)
            return self._has_synced

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            raise RuntimeError(f"informer for {self.gvk} already started")
        name = f"informer-{self.gvk.kind}"
        self._threads.append(threading.Thread(target=self._run, name=name, daemon=True))
        if self._settings.resync_period > 0:
            self._threads.append(threading.Thread(target=self._resync_loop,
                                                  name=f"{name}-resync", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop watching; wait up to `timeout` real seconds for the threads to end."""
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        with self._synced:
            self._synced.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- the list/watch loop ------------------------------------------------------------

    @property
    def last_error(self) -> Exception | None:
        """Why the last list or watch failed, until one succeeds again (for status)."""
        return self._last_error

    def _run(self) -> None:
        backoff = self._settings.backoff_initial
        while not self._stop.is_set():
            try:
                if self._resource_version is None:
                    self._list()
                    self._last_error = None
                    backoff = self._settings.backoff_initial
                if self._watch():
                    self._last_error = None
                    backoff = self._settings.backoff_initial
            except Gone:
                log.info("%s: resourceVersion %s expired, listing again",
                         self.gvk, self._resource_version)
                self._resource_version = None
            except Exception as error:
                if self._stop.is_set():
                    break
                with self._synced:
                    self._last_error = error
                    self._synced.notify_all()
                log.warning("%s: list/watch failed (%s), retrying in %.1fs",
                            self.gvk, error, backoff)
                if self._stop.sleep(backoff):
                    break
                backoff = min(backoff * 2, self._settings.backoff_max)

    def _list(self) -> None:
        items, version = self._source.list(
            self.gvk, namespace=self.namespace, label_selector=self._label_selector,
            limit=self._settings.page_size, transform=self._settings.transform)
        with self._dispatch:
            seen: set[StoreKey] = set()
            for obj in items:
                seen.add(store_key(obj))
                self._apply(obj, transformed=True)
            for key in self._store.keys() - seen:
                old = self._store.remove(key)
                if old is not None:
                    self._deliver_delete(old)
            self._resource_version = version
        with self._synced:
            self._has_synced = True
            self._synced.notify_all()

    def _watch(self) -> bool:
        """Follow one watch request; return whether it delivered anything."""
        if self._stop.is_set():
            return False
        stream = self._source.watch(
            self.gvk, namespace=self.namespace, resource_version=self._resource_version or "",
            timeout_seconds=self._settings.watch_timeout,
            label_selector=self._label_selector, allow_bookmarks=True)
        with self._lock:
            self._stream = stream
        delivered = False
        try:
            if self._stop.is_set():
                return False
            for event_type, obj in stream:
                if self._stop.is_set():
                    break
                self._handle(event_type, obj)
                delivered = True
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return delivered

    def _handle(self, event_type: str, obj: Obj) -> None:
        if event_type == "ERROR":
            code = obj.get("code")
            raise api_error(code if isinstance(code, int) else 500, obj)
        with self._dispatch:
            if event_type in ("ADDED", "MODIFIED"):
                self._apply(obj)
            elif event_type == "DELETED":
                self._store.remove(store_key(obj))
                self._deliver_delete(obj)
            elif event_type != "BOOKMARK":
                log.warning("%s: ignoring watch event of type %r", self.gvk, event_type)
                return
            self._resource_version = resource_version_of(obj) or self._resource_version

    def _apply(self, obj: Obj, *, transformed: bool = False) -> None:
        if self._settings.transform is not None and not transformed:
            obj = self._settings.transform(obj)
        old = self._store.upsert(obj)
        if old is None:
            for handler in list(self._handlers):
                self._call(handler.on_add, obj)
        elif resource_version_of(old) != resource_version_of(obj):
            for handler in list(self._handlers):
                self._call(handler.on_update, old, obj)

    def _deliver_delete(self, obj: Obj) -> None:
        for handler in list(self._handlers):
            self._call(handler.on_delete, obj)

    def _resync_loop(self) -> None:
        while not self._stop.sleep(self._settings.resync_period):
            if not self.has_synced():
                continue
            with self._dispatch:
                for obj in self._store.list():
                    for handler in list(self._handlers):
                        self._call(handler.on_update, obj, obj)

    def _call(self, callback: Callable[..., None] | None, *objs: Obj) -> None:
        if callback is None:
            return
        try:
            callback(*objs)
        except Exception:
            log.exception("%s: event handler %r failed", self.gvk, callback)
