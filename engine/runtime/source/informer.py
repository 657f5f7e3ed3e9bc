"""A shared informer: one kind's objects cached locally and kept current by a watch.

`WatchManager` (watches.py) creates one `Informer` per kind any rule names; the
reconciler reads its `store` and registers event handlers that turn events into queue
keys. Every `resync_period` each cached object is delivered again as an update
(`on_update(obj, obj)`) so that level-based reconcilers revisit everything; a handler
can decline the objects it knows need nothing (`EventHandler.resync_wanted`, asked with
the key and resourceVersion only), and those are then not even decoded from the store.

The list/watch loop is client-go's reflector, hardened the same way:
* it lists (consistent read, in pages of `page_size`), then watches from the list's
  resourceVersion with bookmarks and a server-side timeout jittered between
  `watch_timeout` and twice that, so that many watches do not all end together;
* a watch that ends is resumed from the last version seen (event or bookmark); a
  `Gone` (410: that version was compacted away) lists again, which gives a fresh
  version to watch from;
* a watch that ends, or is Gone, within `min_watch_duration` without delivering a
  single event is *short*: something is wrong on the server's side (a proxy cutting
  connections, a version it cannot serve), so the next request waits for the backoff
  instead of spinning;
* a failed list or watch waits for the backoff too, and at least as long as the
  server's Retry-After (429 from API Priority and Fairness, 503 while shutting down).
The backoff (`ratelimit.Backoff`) is exponential from `backoff_initial` to
`backoff_max`, jittered, and starts over after `backoff_reset` quiet seconds; so an API
server that is down for a minute sees a handful of requests per informer, not a storm.
`retry_now()` cuts a backoff short (the engine learned that the server is back), so the
cache is current again at once instead of up to a backoff later; never the part of it
the server asked for with Retry-After.

Handlers run on the informer's own threads, one event at a time and in order; they
should be quick (queue a key). They receive the objects the store hands out (a watch
event's own object, not decoded again), which they MUST NOT mutate. A handler that
raises is logged and does not stop the informer.

The informer talks to a `ListWatcher` (`engine.kube.Cluster` is one); tests drive it
with a scripted fake. Time (backoff, resync, short watches) comes from the injected
clock, randomness (jitter) from an injectable unit-interval source.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from engine.kube.errors import ApiError, Gone, api_error
from engine.objects import GVK, Obj, meta

from ..clock import Clock, Stop
from ..ratelimit import Backoff
from .slim import slim
from .store import DECODED, IndexFunc, Store, StoreKey, StoreReader, store_key

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

    def watch(self, gvk: GVK, *, resource_version: str, timeout_seconds: int,
              namespace: str | None = None, label_selector: str | None = None,
              allow_bookmarks: bool = True, linger: float = 0.0) -> WatchStream: ...


@dataclass(frozen=True, kw_only=True)
class InformerSettings:
    transform: Callable[[Obj], Obj] | None = slim
    """What is cached of each object (and handed to handlers): see `slim.py`."""
    decoded: int = DECODED
    """Objects the store keeps decoded (the most recently written or read), see
    `store.py`; the others are kept as compact JSON and decoded when read."""

    resync_period: float = 600.0
    """Seconds between re-deliveries of every cached object; 0 disables resync."""
    watch_timeout: int = 300
    """Least server-side timeoutSeconds of one watch request (then it is resumed); each
    request asks for up to `jitter` times more."""
    page_size: int = 500
    """Objects per page of a list."""
    min_watch_duration: float = 1.0
    """A watch ending sooner than this with no event at all is short: back off."""
    backoff_initial: float = 0.8
    backoff_max: float = 30.0
    backoff_reset: float = 120.0
    """Quiet seconds after which the backoff starts again from `backoff_initial`."""
    jitter: float = 1.0
    """Backoff delays and watch timeouts are stretched by up to this fraction."""
    linger: float = 0.02
    """While a watch's events come faster than one per `linger` seconds, its thread
    reads them `linger` apart, all that arrived at once: one wake-up per batch instead
    of one per event (the echoes of the engine's own writes come this way). An event
    on a quiet watch is read at once; 0 reads every event as it comes."""


@dataclass(frozen=True)
class EventHandler:
    """Callbacks for one consumer; each receives cached objects it must not mutate."""

    on_add: Callable[[Obj], None] | None = None
    on_update: Callable[[Obj, Obj], None] | None = None  # (old, new); old is new on resync
    on_delete: Callable[[Obj], None] | None = None  # the last state known
    resync_wanted: Callable[[StoreKey, str], bool] | None = None
    """Asked before a resync re-delivers the object at (key, resourceVersion): False
    skips it for this handler (it knows the object needs nothing at that version)."""


_CACHED: Obj = {}
"""What a list keeps of an object the informer has cached as its page arrived."""

_NO_METADATA: Obj = {}  # read in place of metadata that is missing or not a map


def resource_version_of(obj: Obj) -> str:
    return str(meta(obj).get("resourceVersion") or "")


class Informer:
    def __init__(self, gvk: GVK, *, source: ListWatcher, clock: Clock,
                 settings: InformerSettings | None = None, namespace: str | None = None,
                 label_selector: str | None = None,
                 random_unit: Callable[[], float] = random.random) -> None:
        self.gvk = gvk
        self.namespace = namespace
        self._source = source
        self._clock = clock
        self._settings = settings = settings or InformerSettings()
        self._random = random_unit
        self._backoff = Backoff(initial=settings.backoff_initial, cap=settings.backoff_max,
                                jitter=settings.jitter, reset_after=settings.backoff_reset,
                                clock=clock, random_unit=random_unit)
        self._label_selector = label_selector
        self._store = Store(decoded=settings.decoded)
        self._handlers: list[EventHandler] = []
        self._dispatch = threading.RLock()  # one event at a time, handlers in order
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._stop = Stop(clock)
        self._nudge = threading.Condition()  # a backoff waits on it; retry_now wakes it
        self._nudges = 0
        self._synced = threading.Condition()
        self._has_synced = False
        self._resource_version: str | None = None  # None: list before watching
        self._last_error: Exception | None = None
        self._delivered = 0  # events of the current watch (the loop's thread only)
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
        with self._nudge:
            self._nudge.notify_all()
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

    def retry_now(self) -> None:
        """End a backoff wait now (with a fresh backoff): the server is known to answer."""
        with self._nudge:
            self._nudges += 1
            self._nudge.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            delay, retry_after = self._cycle()
            if delay > 0 and self._back_off(delay, retry_after):
                break

    def _back_off(self, seconds: float, retry_after: float) -> bool:
        """Wait `seconds` of clock time unless stopped, or nudged once `retry_after` (what
        the server asked for) has passed; return whether stopped."""
        now = self._clock.now()
        deadline, floor = now + seconds, now + retry_after
        with self._nudge:
            nudges = self._nudges
            while not self._stop.is_set():
                now = self._clock.now()
                if now >= deadline or (self._nudges != nudges and now >= floor):
                    break
                self._clock.wait(self._nudge, (deadline if self._nudges == nudges
                                               else floor) - now)
            if self._nudges != nudges:
                self._backoff.reset()
        return self._stop.is_set()

    def _cycle(self) -> tuple[float, float]:
        """List if there is no version to watch from, then watch once; return how many
        seconds to wait before the next cycle, and how many of them the server asked
        for (Retry-After: not cut short by `retry_now`)."""
        try:
            if self._resource_version is None:
                self._list()
                self._failed(None)
            started = self._clock.now()
            self._delivered = 0
            try:
                self._watch()
            except Gone:
                log.info("%s: resourceVersion %s expired, listing again",
                         self.gvk, self._resource_version)
                self._resource_version = None
            self._failed(None)
            if self._stop.is_set() or self._delivered or (
                    self._clock.now() - started >= self._settings.min_watch_duration):
                return 0.0, 0.0
            delay = self._backoff.next()
            log.info("%s: the watch ended at once without an event; waiting %.1fs",
                     self.gvk, delay)
            return delay, 0.0
        except Exception as error:
            if self._stop.is_set():
                return 0.0, 0.0
            self._failed(error)
            retry_after = (error.retry_after if isinstance(error, ApiError) else None) or 0.0
            delay = max(self._backoff.next(), retry_after)
            log.warning("%s: list/watch failed (%s), retrying in %.1fs", self.gvk, error, delay)
            return delay, retry_after

    def _failed(self, error: Exception | None) -> None:
        if error is None and self._last_error is None:
            return
        with self._synced:
            self._last_error = error
            self._synced.notify_all()

    def _list(self) -> None:
        """List, caching each object as its page arrives (the `transform` hook of the
        list): a list of 100,000 objects is never held decoded all at once, only the
        compact copies the store keeps. Then objects not listed are deleted."""
        seen: set[StoreKey] = set()

        def cache(obj: Obj) -> Obj:
            with self._dispatch:
                seen.add(self._apply(obj)[0])
            return _CACHED

        # No resourceVersion: a consistent read, so a re-list after Gone starts from the
        # newest state (and gives a version the server can watch from).
        items, version = self._source.list(
            self.gvk, namespace=self.namespace, label_selector=self._label_selector,
            limit=self._settings.page_size, transform=cache)
        with self._dispatch:
            for obj in items:
                if obj is not _CACHED:  # a source that does not call `transform`
                    cache(obj)
            for key in self._store.keys() - seen:
                old = self._store.remove(key)
                if old is not None:
                    self._deliver_delete(old)
            self._resource_version = version
        with self._synced:
            self._has_synced = True
            self._synced.notify_all()

    def _watch(self) -> None:
        """Follow one watch request, counting its events in `_delivered`."""
        if self._stop.is_set():
            return
        timeout = int(self._settings.watch_timeout * (1.0 + self._settings.jitter
                                                      * self._random()))
        stream = self._source.watch(
            self.gvk, namespace=self.namespace, resource_version=self._resource_version or "",
            timeout_seconds=timeout, label_selector=self._label_selector,
            allow_bookmarks=True, linger=self._settings.linger)
        with self._lock:
            self._stream = stream
        try:
            if self._stop.is_set():
                return
            for event_type, obj in stream:
                if self._stop.is_set():
                    break
                self._handle(event_type, obj)
                self._delivered += 1
        finally:
            with self._lock:
                self._stream = None
            stream.close()

    def _handle(self, event_type: str, obj: Obj) -> None:
        if event_type == "ERROR":
            code = obj.get("code")
            raise api_error(code if isinstance(code, int) else 500, obj)
        with self._dispatch:
            if event_type in ("ADDED", "MODIFIED"):
                version = self._apply(obj)[1]
            else:
                if event_type == "DELETED":
                    self._store.remove(store_key(obj))
                    self._deliver_delete(obj)
                elif event_type != "BOOKMARK":
                    log.warning("%s: ignoring watch event of type %r", self.gvk, event_type)
                    return
                version = resource_version_of(obj)
            self._resource_version = version or self._resource_version

    def _apply(self, obj: Obj) -> tuple[StoreKey, str]:
        """Cache `obj` and deliver it; return its key and resourceVersion (as
        `store_key` and `resource_version_of` give them)."""
        metadata = obj.get("metadata")
        if not isinstance(metadata, dict):
            metadata = _NO_METADATA
        # what `store_key` and `resource_version_of` read, read once
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        version = str(metadata.get("resourceVersion") or "")
        store = self._store
        if version and store.version(key) == version:
            return key, version  # what is cached (a re-list, or a watch resumed before it)
        transform = self._settings.transform
        if transform is slim:
            new = slim(obj)  # only managedFields go: the key and version stay
            old = store.upsert(new, key=key, version=version)
            new_version = version
        else:
            new = obj if transform is None else transform(obj)
            old = store.upsert(new)
            new_version = resource_version_of(new)
        if old is None:
            for handler in list(self._handlers):
                self._call(handler.on_add, new)
        elif resource_version_of(old) != new_version:
            for handler in list(self._handlers):
                self._call(handler.on_update, old, new)
        return key, version

    def _deliver_delete(self, obj: Obj) -> None:
        for handler in list(self._handlers):
            self._call(handler.on_delete, obj)

    def _resync_loop(self) -> None:
        while not self._stop.sleep(self._settings.resync_period):
            if not self.has_synced():
                continue
            with self._dispatch:
                self._resync()

    def _resync(self) -> None:
        """Deliver every cached object again, decoding only those a handler wants."""
        handlers = list(self._handlers)
        for key, version in self._store.versions():
            wanted = [h for h in handlers
                      if h.on_update is not None and self._wanted(h, key, version)]
            obj = self._store.get(*key) if wanted else None
            if obj is not None:
                for handler in wanted:
                    self._call(handler.on_update, obj, obj)

    def _wanted(self, handler: EventHandler, key: StoreKey, version: str) -> bool:
        try:
            return handler.resync_wanted is None or handler.resync_wanted(key, version)
        except Exception:
            log.exception("%s: event handler %r failed", self.gvk, handler.resync_wanted)
            return True

    def _call(self, callback: Callable[..., None] | None, *objs: Obj) -> None:
        if callback is None:
            return
        try:
            callback(*objs)
        except Exception:
            log.exception("%s: event handler %r failed", self.gvk, callback)
