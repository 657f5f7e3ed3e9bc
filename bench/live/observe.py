"""Convergence as the API server sees it: a watch that timestamps every labelled object.

Both phases are measured the same way. A `LabelWatch` follows the benchmark objects (by
label) from the resourceVersion of the list taken after the objects were created, so it sees
exactly the changes made afterwards: each MODIFIED event is one write that reached
etcd (`modified`), and the first event showing an object with the rule's label is the
moment that object converged (`labelled_at`). `wait_converged` returns when all N
objects carry the label; `first` and `last` give the latency/throughput split.
"""

from __future__ import annotations

import threading
import time

from engine.kube import Cluster, WatchStream
from engine.kube.errors import ApiError
from engine.objects import meta

from .cluster import CONFIGMAP


class LabelWatch:
    def __init__(self, cluster: Cluster, *, namespace: str, resource_version: str,
                 selector: str, label: str, value: str, expected: int) -> None:
        self._selector = selector
        self._cluster = cluster
        self._namespace = namespace
        self._version = resource_version
        self._label = label
        self._value = value
        self._expected = expected
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._closed = threading.Event()
        self._stream: WatchStream | None = None
        self.labelled_at: dict[str, float] = {}
        self.modified = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)

    def start(self) -> LabelWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                stream = self._cluster.watch(CONFIGMAP, namespace=self._namespace,
                                             resource_version=self._version,
                                             timeout_seconds=600,
                                             label_selector=self._selector)
                with self._lock:
                    self._stream = stream
                for kind, obj in stream:
                    self._event(kind, obj)
        except ApiError as error:
            if not self._closed.is_set():
                self.error = error
                self._done.set()

    def _event(self, kind: str, obj: dict[str, object]) -> None:
        now = time.perf_counter()
        m = meta(obj)
        self._version = str(m.get("resourceVersion") or self._version)
        if kind != "MODIFIED":
            return
        with self._lock:
            self.modified += 1
            name = str(m.get("name"))
            labels = m.get("labels") or {}
            if name not in self.labelled_at and labels.get(self._label) == self._value:
                self.labelled_at[name] = now
                if len(self.labelled_at) >= self._expected:
                    self._done.set()

    def wait_converged(self, timeout: float) -> float:
        """perf_counter() of the last object's label; TimeoutError naming how far it got."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self._namespace}: {self.labelled} of {self._expected} "
                               f"objects labelled after {timeout:.0f}s")
        if self.error is not None:
            raise RuntimeError(f"watch of {self._namespace} failed: {self.error}")
        return self.last

    @property
    def labelled(self) -> int:
        with self._lock:
            return len(self.labelled_at)

    @property
    def first(self) -> float:
        with self._lock:
            return min(self.labelled_at.values())

    @property
    def last(self) -> float:
        with self._lock:
            return max(self.labelled_at.values())

    def writes(self) -> int:
        with self._lock:
            return self.modified

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(timeout=10)
