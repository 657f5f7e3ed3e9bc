"""The work queue between informer event handlers and reconcile workers.

Handlers `add` object keys (never events: reconcile re-reads the object from the cache
and acts on the current level); worker threads loop on `get` → reconcile → `done`,
and the reconciler alone decides what a failure means: `add_rate_limited` to retry
with backoff, `add_after` for a known delay, `hold` when the server said when to come
back (Retry-After), `forget` after success.

The promises are client-go's workqueue's:
* a key already waiting is not queued twice (deduplication);
* a key is never handed to two workers at once;
* a key added while a worker holds it is handed out again after that worker's `done`;
* `add_after` delays a key; of several pending delays for one key the earliest wins;
* `add_rate_limited` waits max(per-key exponential backoff, overall token bucket);
* a key under `hold(key, seconds)` is not handed out before that time, however it is
  added meanwhile (an event on the object, a rate-limited retry): the longest hold wins;
* while `pause(seconds)` lasts no key at all is handed out (the API server is failing:
  see `ratelimit.Breaker`); keys are still added, deduplicated and delayed meanwhile.

`shutdown()` wakes every waiting `get` (which returns None) and stops handing out keys;
keys still queued are dropped (the next leader lists and reconciles them anyway) while
keys in progress finish: `wait_idle` waits for them. Time comes from an injected
`Clock`; delayed keys move into the queue when a `get` (or `len`) looks at them.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from ..clock import Clock
from ..ratelimit import RateLimiter, RateLimitSettings

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """A deduplicating, delaying, rate-limited queue of keys; thread-safe."""

    def __init__(self, *, clock: Clock, settings: RateLimitSettings | None = None) -> None:
        self._clock = clock
        self._limiter = RateLimiter(settings or RateLimitSettings(), clock=clock)
        # the condition's own lock, entered directly: `with condition` runs two Python
        # methods per entry (and lets the interpreter switch threads while it is held);
        # the lock's own `with` is C
        self._lock = threading.RLock()
        self._condition = threading.Condition(self._lock)
        self._waiting = 0  # threads asleep on the condition (no one to wake: no notify)
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # keys that need processing (queued or re-added)
        self._processing: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []  # heap of (ready at, seq, key)
        self._pending: dict[K, tuple[float, int]] = {}  # live heap entry of each delayed key
        self._not_before: dict[K, float] = {}  # held keys: no sooner than this
        self._sequence = itertools.count()
        self._shutting_down = False
        self._paused_until = float("-inf")

    # -- producers --------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue `key` now, unless it is already waiting (or shutting down)."""
        with self._lock:
            self._add(key)

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` once `delay` seconds have passed (now, if `delay` <= 0)."""
        with self._lock:
            if self._shutting_down:
                return
            if delay <= 0:
                self._add(key)
                return
            self._schedule(key, self._clock.now() + delay)

    def add_rate_limited(self, key: K) -> None:
        """Queue `key` after its backoff: one more failure counted against it."""
        with self._lock:
            delay = self._limiter.when(key)
        self.add_after(key, delay)

    def pause(self, seconds: float) -> None:
        """Hand out no key for `seconds` (or longer, if already paused longer)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock.now() + seconds)

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused_until > self._clock.now()

    def hold(self, key: K, seconds: float) -> None:
        """Hand `key` out no sooner than `seconds` from now, however it is added meanwhile
        (the server's Retry-After for a request made for it)."""
        with self._lock:
            if seconds <= 0 or self._shutting_down:
                return
            until = self._clock.now() + seconds
            if self._not_before.get(key, until) > until:
                return  # already held longer
            self._not_before[key] = until
            if key in self._dirty and key not in self._processing:
                self._queue.remove(key)  # waiting now: it waits for the hold instead
                self._dirty.discard(key)
                self._schedule(key, until)

    def forget(self, key: K) -> None:
        """Reset `key`'s backoff (call after it was processed successfully)."""
        with self._lock:
            self._limiter.forget(key)
            self._held_until(key)  # drops a hold that has ended

    def num_requeues(self, key: K) -> int:
        """Failures counted against `key` since it was last forgotten."""
        with self._lock:
            return self._limiter.failures(key)

    # -- consumers --------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> K | None:
        """The next key, marked in progress until `done(key)`.

        None after `timeout` clock seconds with nothing ready, or once shut down.
        """
        deadline = None if timeout is None else self._clock.now() + timeout
        with self._lock:
            while True:
                if self._shutting_down:
                    return None
                now = self._clock.now()
                self._promote(now)
                if self._queue and now >= self._paused_until:
                    key = self._queue.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                if deadline is not None and now >= deadline:
                    return None
                wake = deadline
                if self._queue:  # paused
                    wake = self._paused_until if wake is None else min(wake,
                                                                       self._paused_until)
                elif self._delayed:
                    first = max(self._delayed[0][0], self._paused_until)
                    wake = first if wake is None else min(wake, first)
                self._wait(None if wake is None else wake - now)

    def done(self, key: K, *, forget: bool = False) -> None:
        """The worker is finished with `key`; hand it out again if it was re-added.
        `forget`: then `forget(key)` too (it was processed successfully)."""
        with self._lock:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                until = self._held_until(key)
                if until is None:
                    self._queue.append(key)
                    self._condition.notify()
                else:
                    self._dirty.discard(key)
                    self._schedule(key, until)
            if forget:
                self._limiter.forget(key)
                self._held_until(key)  # drops a hold that has ended
            if self._waiting:
                self._condition.notify_all()  # for wait_idle

    # -- lifecycle --------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop handing out keys and wake every waiting `get`."""
        with self._lock:
            self._shutting_down = True
            self._condition.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._lock:
            return self._shutting_down

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no key is in progress; False if `timeout` passed first."""
        deadline = None if timeout is None else self._clock.now() + timeout
        with self._lock:
            while self._processing:
                now = self._clock.now()
                if deadline is not None and now >= deadline:
                    return False
                self._wait(None if deadline is None else deadline - now)
            return True

    def __len__(self) -> int:
        """Keys ready to be handed out now (not counting delayed or in-progress ones)."""
        with self._lock:
            self._promote(self._clock.now())
            return len(self._queue)

    @property
    def busy(self) -> bool:
        """Keys ready to be handed out now, or in a worker's hands (delayed keys aside):
        what the Event recorder waits out before it posts Normal events."""
        with self._lock:
            self._promote(self._clock.now())
            return bool(self._queue or self._processing)

    @property
    def in_progress(self) -> int:
        with self._lock:
            return len(self._processing)

    @property
    def delayed(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- internals (the condition's lock is held) -------------------------------------

    def _add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # `done` queues it again
        until = self._held_until(key)
        if until is not None:
            self._dirty.discard(key)
            self._schedule(key, until)
            return
        self._queue.append(key)
        if self._waiting:
            self._condition.notify()

    def _wait(self, timeout: float | None) -> None:
        self._waiting += 1
        try:
            self._clock.wait(self._condition, timeout)
        finally:
            self._waiting -= 1

    def _held_until(self, key: K) -> float | None:
        """When a hold on `key` ends, if it has not yet (an ended hold is dropped)."""
        until = self._not_before.get(key)
        if until is None:
            return None
        if until <= self._clock.now():
            del self._not_before[key]
            return None
        return until

    def _schedule(self, key: K, ready_at: float) -> None:
        """Hand `key` out at `ready_at` (or at its hold's end); an earlier delay wins."""
        ready_at = max(ready_at, self._not_before.get(key, ready_at))
        if key in self._pending and self._pending[key][0] <= ready_at:
            return
        entry = (ready_at, next(self._sequence))
        self._pending[key] = entry
        heapq.heappush(self._delayed, (*entry, key))
        # a getter may be sleeping until a later deadline
        self._condition.notify_all()

    def _promote(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            ready_at, sequence, key = heapq.heappop(self._delayed)
            if self._pending.get(key) != (ready_at, sequence):
                continue  # superseded by an earlier delay for the same key
            del self._pending[key]
            self._add(key)
