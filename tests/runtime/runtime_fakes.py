"""Seam fakes for the runtime's unit tests: a scripted ListWatcher and a Lease API, and
`step_clock`, which moves a fake clock from one wake-up of the threads under test to the
next.

Both fail loudly: a call the script does not expect raises AssertionError *and* is
recorded in `surprises`, because the informer's thread catches exceptions (it retries)
and the test must still see them; every test using the fake asserts `surprises == []`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from engine.objects import GVK, Obj
from engine.runtime.clock import FakeClock
from engine.runtime.source.informer import InformerSettings
from engine.runtime.source.watches import WatchManager
from tests.support import eventually

CM = GVK("", "v1", "ConfigMap")
NS = GVK("", "v1", "Namespace")


def step_clock(clock: FakeClock, seconds: float, *, threads: int = 1,
               until: Callable[[], bool] = lambda: False) -> float:
    """Move `clock` `seconds` ahead (or until `until()` holds), one wake-up of the
    sleeping threads at a time; `threads` is how many must be asleep before each step.
    Return the clock seconds it took."""
    start = clock.now()
    end = start + seconds
    while not until():
        eventually(lambda: clock.asleep(threads), what=f"{threads} thread(s) to wait")
        if until():
            break
        wake = clock.next_wake()
        if wake is None or wake > end:
            clock.advance(max(end - clock.now(), 0.0))
            break
        clock.advance(max(wake - clock.now(), 0.0))
    return clock.now() - start


def obj(name: str, rv: str, *, namespace: str = "default", **extra: Any) -> Obj:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": rv,
                                "uid": f"uid-{name}"}
    metadata.update(extra.pop("metadata", {}))
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, **extra}


_END = object()


class LiveStream:
    """A watch stream the test feeds while the informer reads it."""

    def __init__(self) -> None:
        self._items: queue.Queue[Any] = queue.Queue()
        self.closed = threading.Event()

    def push(self, event_type: str, item: Obj) -> None:
        self._items.put((event_type, item))

    def fail(self, error: Exception) -> None:
        self._items.put(error)

    def end(self) -> None:
        """The server ends the watch (timeoutSeconds reached)."""
        self._items.put(_END)

    def __iter__(self) -> Iterator[tuple[str, Obj]]:
        while True:
            item = self._items.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        self.closed.set()
        self._items.put(_END)


@dataclass
class ExpectList:
    items: list[Obj] | None = None
    resource_version: str = ""
    error: Exception | None = None
    namespace: str | None = None


@dataclass
class ExpectWatch:
    resource_version: str
    stream: LiveStream = field(default_factory=LiveStream)
    namespace: str | None = None
    error: Exception | None = None  # raised instead of opening the stream


class ScriptedListWatcher:
    """Answers list/watch calls per kind, in the order the script gives."""

    def __init__(self, script: dict[GVK, list[ExpectList | ExpectWatch]] | None = None) -> None:
        self._lock = threading.Lock()
        self._script: dict[GVK, list[ExpectList | ExpectWatch]] = {
            gvk: list(steps) for gvk, steps in (script or {}).items()}
        self.calls: list[tuple[str, GVK, str | None]] = []
        self.surprises: list[str] = []
        self.lists: list[dict[str, Any]] = []  # the arguments of every list call
        self.watch_timeouts: list[int] = []
        self.lingers: list[float] = []

    def expect(self, gvk: GVK, *steps: ExpectList | ExpectWatch) -> None:
        with self._lock:
            self._script.setdefault(gvk, []).extend(steps)

    def remaining(self, gvk: GVK) -> int:
        with self._lock:
            return len(self._script.get(gvk, []))

    def count(self, what: str, gvk: GVK = CM) -> int:
        with self._lock:
            return sum(1 for call, kind, _ in self.calls if call == what and kind == gvk)

    def _next(self, what: str, gvk: GVK, detail: str) -> ExpectList | ExpectWatch:
        with self._lock:
            self.calls.append((what, gvk, detail))
            steps = self._script.get(gvk)
            if not steps:
                self.surprises.append(f"unexpected {what}({gvk}, {detail}): must not be called")
                raise AssertionError(self.surprises[-1])
            return steps.pop(0)

    def list(self, gvk: GVK, *, namespace: str | None = None,
             label_selector: str | None = None, resource_version: str | None = None,
             limit: int | None = None, transform: Callable[[Obj], Obj] | None = None
             ) -> tuple[list[Obj], str]:
        with self._lock:
            self.lists.append({"namespace": namespace, "resource_version": resource_version,
                               "limit": limit})
        step = self._next("list", gvk, f"namespace={namespace}")
        if not isinstance(step, ExpectList) or step.namespace != namespace:
            self.surprises.append(f"list({gvk}, namespace={namespace}) but expected {step}")
            raise AssertionError(self.surprises[-1])
        if step.error is not None:
            raise step.error
        items = list(step.items or [])
        return [transform(i) for i in items] if transform else items, step.resource_version

    def watch(self, gvk: GVK, *, namespace: str | None = None, resource_version: str,
              timeout_seconds: int, label_selector: str | None = None,
              allow_bookmarks: bool = True, linger: float = 0.0) -> LiveStream:
        with self._lock:
            self.watch_timeouts.append(timeout_seconds)
            self.lingers.append(linger)
        step = self._next("watch", gvk, resource_version)
        if (not isinstance(step, ExpectWatch) or step.resource_version != resource_version
                or step.namespace != namespace or not allow_bookmarks):
            self.surprises.append(f"watch({gvk}, rv={resource_version}, ns={namespace}) "
                                  f"but expected {step}")
            raise AssertionError(self.surprises[-1])
        if step.error is not None:
            raise step.error
        return step.stream


class FakeLeases:
    """An in-memory Lease API with resourceVersion checks, like the real server's."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # electors on threads share it
        self.leases: dict[tuple[str, str], Obj] = {}
        self._version = 0
        self.fail_with: ApiError | None = None  # every call raises this while set
        self.after_get: Callable[[], None] | None = None

    def _bump(self, lease: Obj) -> Obj:
        self._version += 1
        stored = {"metadata": {**lease["metadata"], "resourceVersion": str(self._version)},
                  "spec": dict(lease.get("spec") or {})}
        key = (stored["metadata"]["namespace"], stored["metadata"]["name"])
        self.leases[key] = stored
        return {"metadata": dict(stored["metadata"]), "spec": dict(stored["spec"])}

    def get_lease(self, namespace: str, name: str) -> Obj:
        with self.lock:
            if self.fail_with is not None:
                raise self.fail_with
            lease = self.leases.get((namespace, name))
            if lease is None:
                raise NotFound(f"leases {name!r} not found", status=404)
            answer = {"metadata": dict(lease["metadata"]), "spec": dict(lease["spec"])}
            if self.after_get is not None:
                hook, self.after_get = self.after_get, None
                hook()
            return answer

    def create_lease(self, lease: Obj) -> Obj:
        with self.lock:
            if self.fail_with is not None:
                raise self.fail_with
            key = (lease["metadata"]["namespace"], lease["metadata"]["name"])
            if key in self.leases:
                raise AlreadyExists("already exists", status=409, reason="AlreadyExists")
            return self._bump(lease)

    def update_lease(self, lease: Obj) -> Obj:
        with self.lock:
            if self.fail_with is not None:
                raise self.fail_with
            key = (lease["metadata"]["namespace"], lease["metadata"]["name"])
            current = self.leases.get(key)
            if current is None:
                raise NotFound("gone", status=404)
            if lease["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise Conflict("the object has been modified", status=409, reason="Conflict")
            return self._bump(lease)

    def spec(self, namespace: str = "edict-system", name: str = "edict") -> dict[str, Any]:
        return dict(self.leases[(namespace, name)]["spec"])


@contextlib.contextmanager
def synced_watches(*configmaps: Obj, clock: FakeClock | None = None
                   ) -> Iterator[WatchManager]:
    """Watches whose caches have listed: the ConfigMaps `configmaps` and Namespace `n`
    (no resync); stopped afterwards, and no call the script did not expect."""
    source = ScriptedListWatcher()
    source.expect(CM, ExpectList(list(configmaps), "1"), ExpectWatch("1"))
    source.expect(NS, ExpectList([{"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": "n", "resourceVersion": "1"}}], "1"),
                  ExpectWatch("1"))
    watches = WatchManager(source=source, clock=clock or FakeClock(),
                           settings=InformerSettings(resync_period=0))
    for gvk in (CM, NS):
        watches.acquire(gvk, "test")
    assert watches.wait_synced([CM, NS], timeout=5)
    try:
        yield watches
    finally:
        watches.stop()
    assert source.surprises == []
