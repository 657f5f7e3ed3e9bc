"""How many writes the engine keeps in flight: as many as the API server takes.

The reconciler sends every write (trigger patch, status patch, child create/patch/
delete) inside `WriteGate.slot()`. Worker threads are plenty (`ManagerSettings.workers`,
the most writes ever in flight); the gate lets `limit` of them write at once and holds
the others, evaluated and ready, until a slot frees. The limit follows the server's
answers, additive increase and multiplicative decrease as TCP does:

* it starts at `initial` and grows by one after each window of `limit` answered writes
  (an answer is any status code: a 409 is the server keeping up too);
* an answer that says the server is overloaded — 429 Too Many Requests from API
  Priority and Fairness, a 5xx, no answer in time — halves it at once, at most once per
  window (one burst of 429s is one signal).

Latency alone is not a signal here: on a shared machine it swings with everyone else's
load, and a write waiting for a busy server still keeps that server busy (measured:
steering by latency on a loaded two-core machine shrank the gate to one or two writes
and doubled the time to converge, where the plain loop with 16 threads was fastest).
Four workers each waiting on one PATCH left a two-core control plane half idle; a
throttling server gets fewer. `Retry-After` is honoured separately, per key, by the
work queue.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from engine.kube.errors import ApiError


def overloaded(error: BaseException) -> bool:
    """An answer that says: send less (429, 5xx, a timeout or a dropped connection)."""
    return isinstance(error, ApiError) and error.retryable


class WriteGate:
    def __init__(self, *, initial: int = 4, minimum: int = 1, maximum: int = 16) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {minimum}, {maximum}")
        self.minimum, self.maximum = minimum, maximum
        self._limit = max(minimum, min(initial, maximum))
        # the condition's own lock, entered directly: `with condition` runs two Python
        # methods per entry (and lets the interpreter switch threads while it is held);
        # the lock's own `with` is C
        self._lock = threading.RLock()
        self._condition = threading.Condition(self._lock)
        self._waiting = 0  # threads asleep in `acquire`
        self._in_flight = 0
        self._answered = 0  # in the current window
        self._cut_in_window = False

    @property
    def limit(self) -> int:
        with self._lock:
            return self._limit

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of `limit` slots while the body writes; learn from its answer."""
        self.acquire()
        failed: BaseException | None = None
        try:
            yield
        except BaseException as error:
            failed = error
            raise
        finally:
            self.release(failed)

    def acquire(self) -> None:
        """Take a slot (waiting for one); `release` it after the write, in any case.
        `slot()` without the context manager, for the writer's one-request methods."""
        with self._lock:
            while self._in_flight >= self._limit:
                self._waiting += 1
                try:
                    self._condition.wait()
                finally:
                    self._waiting -= 1
            self._in_flight += 1

    def release(self, error: BaseException | None) -> None:
        """Give the slot back: the write was answered (`error` None), or failed."""
        with self._lock:
            self._in_flight -= 1
            if error is not None and overloaded(error):
                if not self._cut_in_window:
                    self._limit = max(self.minimum, self._limit // 2)
                    self._cut_in_window = True
                    self._answered = 0
            elif error is None or isinstance(error, ApiError):
                self._answered += 1
                if self._answered >= self._limit:
                    self._answered = 0
                    self._cut_in_window = False
                    self._limit = min(self.maximum, self._limit + 1)
            free = self._limit - self._in_flight
            if free > 0 and self._waiting:  # as many as can write now, not all of them
                self._condition.notify(free)
