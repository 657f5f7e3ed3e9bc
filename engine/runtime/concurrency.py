"""How many writes the engine keeps in flight: as many as the API server answers promptly.

The reconciler sends every write (trigger patch, status patch, child create/patch/
delete) inside `WriteGate.slot()`. Worker threads are plenty (`ManagerSettings.workers`,
the most writes ever in flight); the gate lets `limit` of them write at once and holds
the others, evaluated and ready, until a slot frees. The limit follows the server:

* it starts at `initial` and, after each window of `limit` writes, grows by one while
  the window's mean latency stays within `grow_below` times the best recent window's
  (the server keeps up: more in flight means more done), and shrinks by one when it
  passes `shrink_above` times it (requests queue up inside the server: more in flight
  only adds waiting);
* an answer that says the server is overloaded — 429 Too Many Requests (API Priority
  and Fairness), a 5xx, no answer in time — halves it at once (at most once per
  window), as TCP does on loss;
* the best window forgets slowly (it is the minimum over the last `memory` windows),
  so a server that became slower for good is not chased with ever fewer writes.

That is additive increase, multiplicative decrease, steered by latency the way TCP
Vegas steers a congestion window. A server with idle cores gets more writes at once
(four workers each waiting on one PATCH left a two-core control plane half idle); a
saturated or throttling one gets fewer. `Retry-After` is honoured separately, per key,
by the work queue.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine.kube.errors import ApiError


def overloaded(error: BaseException) -> bool:
    """An answer that says: send less (429, 5xx, a timeout or a dropped connection)."""
    return isinstance(error, ApiError) and error.retryable


class WriteGate:
    def __init__(self, *, initial: int = 4, minimum: int = 1, maximum: int = 16,
                 grow_below: float = 1.5, shrink_above: float = 2.5, memory: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {minimum}, {maximum}")
        self.minimum, self.maximum = minimum, maximum
        self._limit = max(minimum, min(initial, maximum))
        self._grow_below, self._shrink_above = grow_below, shrink_above
        self._clock = clock
        self._condition = threading.Condition()
        self._in_flight = 0
        self._window: list[float] = []
        self._best: deque[float] = deque(maxlen=memory)
        self._cut_in_window = False

    @property
    def limit(self) -> int:
        with self._condition:
            return self._limit

    @property
    def in_flight(self) -> int:
        with self._condition:
            return self._in_flight

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of `limit` slots while the body writes; learn from how it went."""
        with self._condition:
            while self._in_flight >= self._limit:
                self._condition.wait()
            self._in_flight += 1
        started = self._clock()
        failed: BaseException | None = None
        try:
            yield
        except BaseException as error:
            failed = error
            raise
        finally:
            self._done(self._clock() - started, failed)

    def _done(self, seconds: float, error: BaseException | None) -> None:
        with self._condition:
            self._in_flight -= 1
            if error is not None and overloaded(error):
                if not self._cut_in_window:
                    self._limit = max(self.minimum, self._limit // 2)
                    self._cut_in_window = True
                    self._best.clear()  # what was fast before the overload says little now
            elif error is None or isinstance(error, ApiError):
                # a refusal (409, 422, 404...) is an answer: it measures the server too
                self._window.append(seconds)
                if len(self._window) >= self._limit:
                    self._adjust()
            self._condition.notify_all()

    def _adjust(self) -> None:
        mean = sum(self._window) / len(self._window)
        self._window.clear()
        self._cut_in_window = False
        self._best.append(mean)
        best = min(self._best)
        if mean <= best * self._grow_below:
            self._limit = min(self.maximum, self._limit + 1)
        elif mean > best * self._shrink_above:
            self._limit = max(self.minimum, self._limit - 1)
