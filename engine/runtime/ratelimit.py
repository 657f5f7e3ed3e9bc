"""How long to wait before trying again: the work queue's limiter and the informer's backoff.

`WorkQueue.add_rate_limited` asks `RateLimiter.when(key)` for a delay (client-go's
default controller limiter). The delay is the larger of a per-key exponential backoff
(base * 2^failures, capped) and an overall token bucket (qps with a burst) shared by
all keys, so one broken object backs off on its own while a storm of failures cannot
retry faster than the bucket allows. `forget(key)` (after a success) resets the key's
backoff.

`Backoff` is the informer's (client-go's reflector backoff manager): jittered,
exponential, capped, and reset only after a quiet spell, so a server that fails,
recovers for a moment and fails again is not hammered from the initial delay each time.

`Breaker` watches the outcome of every request the engine sends. When the API server
gives no answer or a 5xx, it pauses the work queue for a `Backoff` delay: while the
server is down the workers send a handful of requests per delay instead of one per
queued key, and the per-key backoffs and the token bucket are not used up by an outage
(which would leave keys waiting long after the server is back). The first answer below
500 after an outage ends it: the informers are told to stop backing off (`reconnect`)
and the workers wait `settle` seconds more, so that they act on caches that caught up
with what changed meanwhile rather than on stale ones (each stale object would cost a
refused write). A 429 is not an outage: it concerns one request, whose key waits for
the server's Retry-After (`WorkQueue.hold`) while the others go on.

Time comes from the injected clock. The limiter and `Backoff` are not thread-safe on
their own (the queue calls the limiter under its lock, each informer owns its backoff);
`Breaker` is, as every request thread reports to it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from .clock import Clock


@dataclass(frozen=True, kw_only=True)
class RateLimitSettings:
    base_delay: float = 0.005
    """Seconds of backoff after the first failure; doubled after each further one."""
    max_delay: float = 1000.0
    """Cap of the per-key backoff."""
    qps: float = 10.0
    """Sustained retries per second across all keys."""
    burst: int = 100
    """Retries allowed at once before the qps limit applies."""

    def __post_init__(self) -> None:
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")
        if self.qps <= 0 or self.burst < 1:
            raise ValueError("need qps > 0 and burst >= 1")


class TokenBucket:
    """Reservations against a bucket of `burst` tokens refilled at `qps`."""

    def __init__(self, *, qps: float, burst: int, clock: Clock) -> None:
        self._qps = qps
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def reserve(self) -> float:
        """Take one token, possibly one not yet refilled; return seconds until it is."""
        now = self._clock.now()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    def refund(self) -> None:
        """Give back the token of a reservation the caller will not wait for."""
        self._tokens = min(self._burst, self._tokens + 1.0)


class ExponentialBackoff:
    """Per-key failure counts: base * 2^failures seconds, capped at `max_delay`."""

    def __init__(self, *, base_delay: float, max_delay: float) -> None:
        self._base = base_delay
        self._max = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 * base is beyond any cap; avoid float overflow
            return self._max
        return min(self._base * (2.0 ** failures), self._max)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)


class RateLimiter:
    """The max of `ExponentialBackoff` (per key) and `TokenBucket` (overall)."""

    def __init__(self, settings: RateLimitSettings, *, clock: Clock) -> None:
        self._backoff = ExponentialBackoff(base_delay=settings.base_delay,
                                           max_delay=settings.max_delay)
        self._bucket = TokenBucket(qps=settings.qps, burst=settings.burst, clock=clock)

    def when(self, key: Hashable) -> float:
        """Seconds `key` should wait before its next try; counts one more failure."""
        return max(self._backoff.when(key), self._bucket.reserve())

    def failures(self, key: Hashable) -> int:
        return self._backoff.failures(key)

    def forget(self, key: Hashable) -> None:
        self._backoff.forget(key)


class Backoff:
    """Delays of initial * factor^n (capped at `cap`), each stretched by up to `jitter`
    times itself; the sequence restarts when `reset_after` seconds passed since the
    last delay was handed out."""

    def __init__(self, *, initial: float, cap: float, clock: Clock, factor: float = 2.0,
                 jitter: float = 1.0, reset_after: float = 120.0,
                 random_unit: Callable[[], float] = random.random) -> None:
        if not 0 < initial <= cap or factor < 1 or jitter < 0:
            raise ValueError("need 0 < initial <= cap, factor >= 1 and jitter >= 0")
        self._initial = initial
        self._cap = cap
        self._factor = factor
        self._jitter = jitter
        self._reset_after = reset_after
        self._clock = clock
        self._random = random_unit
        self._next = initial
        self._last: float | None = None

    def next(self) -> float:
        """The delay before the next attempt; the one after it grows."""
        now = self._clock.now()
        if self._last is not None and now - self._last > self._reset_after:
            self._next = self._initial
        self._last = now
        base = self._next
        self._next = min(self._next * self._factor, self._cap)
        return base + base * self._jitter * self._random()

    def reset(self) -> None:
        self._next = self._initial
        self._last = None


class Breaker:
    """Pauses the work queue while the API server fails; see the module docstring."""

    def __init__(self, *, clock: Clock, pause: Callable[[float], None],
                 reconnect: Callable[[], None] = lambda: None, settle: float = 1.0,
                 initial: float = 0.5, cap: float = 15.0, jitter: float = 0.5,
                 random_unit: Callable[[], float] = random.random) -> None:
        self._clock = clock
        self._pause = pause
        self._reconnect = reconnect
        self._settle = settle
        self._backoff = Backoff(initial=initial, cap=cap, jitter=jitter, clock=clock,
                                random_unit=random_unit)
        self._paused_until = float("-inf")
        self._failing = False
        self._lock = threading.Lock()
        self.outages = 0  # pauses so far (the first failure after a success starts one)

    def observe(self, method: str, code: str) -> None:
        """Told about every request (a `Transport` observer): method and status code."""
        failed = code == "error" or code.startswith("5")
        if not failed:
            if method == "WATCH" or not self._failing:
                # the watch cache answers even while etcd is down; and with no failure
                # since the last success there is nothing to reset (read without the
                # lock: a failure recorded meanwhile came from a request as concurrent
                # as this one, and either may be taken as the later)
                return
            with self._lock:
                self._backoff.reset()
                recovered, self._failing = self._failing, False
            if recovered:
                self._reconnect()
                self._pause(self._settle)
            return
        with self._lock:
            self._failing = True
            now = self._clock.now()
            if now < self._paused_until:
                return  # requests sent before the pause, failing now: same outage
            delay = self._backoff.next()
            self._paused_until = now + delay
            self.outages += 1
        self._pause(delay)
