"""Time for the runtime, injected: the real clock in `edict run`, a fake one in tests.

The work queue, informers and leader election never read time or sleep on their own:
they take a `Clock`. `now()` is monotonic seconds (for delays, deadlines, lease expiry
as we observe it), `wall()` is UTC wall time (only for timestamps written to the API),
and `wait(condition, timeout)` blocks on a held `threading.Condition` for at most
`timeout` clock seconds. Callers always re-check their own state in a loop after
`wait` returns, so a wait may end early.

`FakeClock` moves only when a test calls `advance()`, which wakes every waiter so it can
re-check its deadline; `asleep()` and `next_wake()` let a test step a loop from one
wake-up to the next without real sleeps. `Stop` is the stop flag that clock-driven
loops sleep on.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> datetime:
        """Current UTC time, for timestamps written to the API."""
        ...

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait on `condition` (held by the caller) until notified or `timeout` passes."""
        ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        condition.wait(None if timeout is None else max(timeout, 0.0))


class FakeClock:
    """A clock that stands still until `advance()`; thread-safe.

    `wait` also returns after a few real milliseconds, so a waiter that computed its
    timeout just before an `advance` never sleeps through it; every caller loops anyway.
    """

    POLL = 0.005

    def __init__(self, start: float = 1000.0,
                 wall_start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._start = start
        self._wall_start = wall_start
        self._waiting: dict[int, threading.Condition] = {}
        self._waiters = 0
        self._deadlines: dict[int, float | None] = {}  # thread -> when it wants to wake

    @property
    def waiters(self) -> int:
        """Threads inside `wait` right now: a test advances once a loop is asleep."""
        with self._lock:
            return self._waiters

    def now(self) -> float:
        with self._lock:
            return self._now

    def wall(self) -> datetime:
        with self._lock:
            return self._wall_start + timedelta(seconds=self._now - self._start)

    def asleep(self, threads: int = 1) -> bool:
        """True when at least `threads` threads wait, none of them for a time that has
        already come (a waiter woken by `advance` has not yet looked at the clock)."""
        with self._lock:
            return self._waiters >= threads and all(
                deadline is None or deadline > self._now
                for deadline in self._deadlines.values())

    def next_wake(self) -> float | None:
        """The earliest clock time a waiting thread asked to wake at (None: nobody
        waits with a timeout)."""
        with self._lock:
            deadlines = [d for d in self._deadlines.values() if d is not None]
            return min(deadlines) if deadlines else None

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        me = threading.get_ident()
        with self._lock:
            self._waiting[id(condition)] = condition
            self._waiters += 1
            self._deadlines[me] = None if timeout is None else self._now + max(timeout, 0.0)
        try:
            condition.wait(self.POLL)
        finally:
            with self._lock:
                self._waiters -= 1
                self._deadlines.pop(me, None)

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every waiter to re-check its deadline."""
        with self._lock:
            self._now += seconds
            waiting = list(self._waiting.values())
            self._waiting.clear()
        for condition in waiting:
            with condition:
                condition.notify_all()


class Stop:
    """A stop flag that loops sleep on: `sleep` returns early, and True, once set."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._condition = threading.Condition()
        self._set = False

    def set(self) -> None:
        with self._condition:
            self._set = True
            self._condition.notify_all()

    def is_set(self) -> bool:
        with self._condition:
            return self._set

    def sleep(self, seconds: float) -> bool:
        """Sleep `seconds` of clock time unless stopped first; return whether stopped."""
        deadline = self._clock.now() + seconds
        with self._condition:
            while not self._set:
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    break
                self._clock.wait(self._condition, remaining)
            return self._set
