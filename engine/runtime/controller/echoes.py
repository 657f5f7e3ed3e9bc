"""Our own writes coming back through the watch: recognise them, reconcile nothing.

After the engine patches an object, the watch delivers the state that patch produced.
That state is what evaluating gave, and evaluation is idempotent (a second evaluation
changes nothing), so reconciling it again could only confirm it. `OwnWrites` lets the
router drop exactly that event, and no other:

* `begin(key)` before the first write of a reconcile, `end(key, stored)` after the last,
  with the resourceVersion the server answered when it stored exactly what was asked
  (None otherwise: the write failed, or defaulting/admission changed the object);
* `is_echo(key, rv)` for every update event the router sees. The event of `stored` is an
  echo (once). An event that arrives *while* a write is in flight — often our own echo,
  because the watch can be faster than the worker reading the answer — is held back:
  `end` returns True when what arrived was not the echo, and the caller queues the key.

Events of other writers never match a version we stored, so they are always routed.
"""

from __future__ import annotations

import threading

from engine.objects import ObjectKey

KEPT = 10_000  # a bound on versions waiting for their echo, not a cache policy
_NOTHING = ""  # in flight, no event arrived yet (a real resourceVersion is never "")


class OwnWrites:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stored: dict[ObjectKey, str] = {}  # key -> resourceVersion we wrote
        self._in_flight: dict[ObjectKey, str] = {}  # key -> last rv seen while writing

    def begin(self, key: ObjectKey) -> None:
        with self._lock:
            self._in_flight[key] = _NOTHING
            self._stored.pop(key, None)

    def end(self, key: ObjectKey, stored: str | None) -> bool:
        """The write is over; True when an event arrived meanwhile that was not its echo
        (the router held it back, so the caller must queue the key)."""
        with self._lock:
            arrived = self._in_flight.pop(key, _NOTHING)
            if arrived == _NOTHING:
                if stored:
                    if len(self._stored) >= KEPT:
                        self._stored.clear()  # echoes are quick: nothing waits this long
                    self._stored[key] = stored
                return False
            return arrived != stored

    def is_echo(self, key: ObjectKey, resource_version: str) -> bool:
        """True for the event of the state our last write stored (once), and for any
        event while a write to `key` is in flight (decided by `end`)."""
        with self._lock:
            if key in self._in_flight:
                self._in_flight[key] = resource_version
                return True
            if self._stored.get(key) == resource_version:
                del self._stored[key]
                return True
            return False
