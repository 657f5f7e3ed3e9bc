"""Our own writes' answers, kept decoded by their bytes: the watch echo is not decoded again.

After the engine patches an object, the API server sends the state it stored twice:
as the PATCH's answer (which the writer decodes anyway) and as a MODIFIED event on every
watch of that kind, the engine's informer among them. On the real server the event's
object is byte for byte the answer's body (the same object encoded by the same
serializer; checked by tests/e2e/test_kube_client.py). So `Cluster.remember_answers`
keeps each PATCH answer here, decoded, under its exact bytes, and a watch stream of the
same `Cluster` that meets those exact bytes as a MODIFIED event's object takes the
decoded object instead of decoding the line (`take`); any other line is decoded as
before.

Only exact equality is used, and `json.loads` is a function of the bytes alone, so an
object taken is equal to what decoding the line would give, whoever wrote the object:
nothing inside the JSON (a resourceVersion, a label) is searched for or trusted. The
object is then shared by the writer's caller and the informer's cache: neither may
mutate it (the cache's objects are read-only anyway). An answer is taken at most once;
answers whose event never comes to this process (the watch was faster than the answer,
or is not running) are dropped, oldest first, beyond `KEPT`.
"""

from __future__ import annotations

import threading

from engine.objects import Obj

KEPT = 512
"""Answers waiting for their watch event: one per write in flight, plus what the
watch lags behind; an answer dropped early only costs a decode."""


class Answers:
    """Thread-safe: writers `remember`, watch readers `take`."""

    def __init__(self, *, kept: int = KEPT) -> None:
        self._lock = threading.Lock()
        self._kept = kept
        self._objects: dict[bytes, Obj] = {}  # insertion order: the oldest first
        self.taken = 0  # events not decoded thanks to an answer (for diagnosis)

    def remember(self, body: bytes, obj: Obj) -> None:
        """`obj` is `json.loads(body)` (trailing whitespace of `body` is not kept)."""
        data = body.rstrip()
        with self._lock:
            self._objects[data] = obj
            while len(self._objects) > self._kept:
                del self._objects[next(iter(self._objects))]

    def take(self, data: bytes) -> Obj | None:
        """The object decoded from exactly `data`, if it was remembered (once)."""
        with self._lock:
            obj = self._objects.pop(data, None)
            if obj is not None:
                self.taken += 1
            return obj

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)
