"""Kubernetes Events on triggers: what a rule changed, would change, or why it failed.

The reconciler hands every evaluation to `Recorder.outcomes`; the recorder decides what
deserves an Event and posts it from a background thread (a full backlog drops events
rather than slowing reconciles down). Nothing is emitted at steady state: a change is
reported when it is written, an error or a would-be change only when it is new for
that object and rule. Normal events share a token bucket (10/s, burst 100 by default),
like client-go's event spam filter: when a rule set changes thousands of objects at
once, the first ones get an Event each and the rule-set status counters tell the rest;
Warnings are never dropped by the bucket — but for `PolicyViolation` (a validate rule
that starts failing on an object), which shares the bucket: a new rule set can find
thousands of objects in violation at once, and its status counts them all.

Warnings are posted at once. Normal events yield to reconciling: while `busy()` says
the object controller has work (keys waiting in the work queue or in a worker's hands)
they are held, at most `max_delay` seconds, then posted anyway. A burst of changes
converges first and is reported right after, instead of the Event POSTs competing with
the patches for the API server (each costs the API server and etcd about as much as a
patch). Every Event carries the time its change was made, not the time it was posted,
so a held one sorts where it happened. docs/architecture.md ("Events") says why.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from engine.evaluate.outcomes import Result, Status
from engine.kube.client import Cluster
from engine.kube.errors import ApiError
from engine.kube.events import EventType
from engine.objects import Obj, ObjectKey, key_of

from ..clock import Clock, RealClock
from ..ratelimit import Backoff, TokenBucket

log = logging.getLogger(__name__)

BACKLOG = 1000
MAX_DELAY = 60.0  # seconds a Normal event may wait for the object controller to be idle
POLL = 0.05  # how often a held Normal event looks at the work queue again

Item = tuple[Obj, str, str, EventType, datetime]  # ..., when it happened


class Recorder:
    def __init__(self, cluster: Cluster, *, instance: str, enabled: bool = True,
                 clock: Clock | None = None, qps: float = 10.0, burst: int = 100,
                 busy: Callable[[], bool] = lambda: False,
                 max_delay: float = MAX_DELAY) -> None:
        self._cluster = cluster
        self._instance = instance
        self._enabled = enabled
        self._clock = clock or RealClock()
        self._bucket = TokenBucket(qps=qps, burst=burst, clock=self._clock)
        self._failing = Backoff(initial=0.5, cap=15.0, jitter=0.0, clock=self._clock)
        self._busy = busy
        self._max_delay = max_delay
        self.dropped = 0
        self._warnings: deque[Item] = deque()
        self._normal: deque[tuple[float, Item]] = deque()  # (queued at, event)
        self._ready = threading.Condition()
        self._stopping = False
        self._last: dict[tuple[ObjectKey, str, str], str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._enabled:
            self._thread = threading.Thread(target=self._run, name="events", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Post what is queued (held events too, without waiting), then end."""
        if self._thread is not None:
            with self._ready:
                self._stopping = True
                self._ready.notify_all()
            self._thread.join(timeout=5)

    def backlog(self) -> int:
        """Events queued and not posted yet."""
        with self._ready:
            return len(self._warnings) + len(self._normal)

    def outcomes(self, obj: Obj, result: Result, *, written: bool) -> None:
        if not self._enabled:
            return
        key = result.key  # key_of(obj): the result is obj's
        for o in result.outcomes:
            if o.status is Status.APPLIED and written:
                # the common case, once per object changed: the bucket first, so that
                # a message the bucket drops (most of a burst) is never even made
                if self._admitted():
                    what = ", ".join(o.paths) or o.message or "applied"
                    self._queue(obj, "RuleApplied",
                                f"rule {o.rule!r} of {o.rule_set} changed {what}",
                                EventType.NORMAL)
                continue
            who = f"rule {o.rule!r} of {o.rule_set}"
            if o.status in (Status.ERROR, Status.OSCILLATING):
                reason = "RuleError" if o.status is Status.ERROR else "Oscillating"
                if self._new(key, str(o.rule_set), o.rule, o.message):
                    self._emit(obj, reason, f"{who}: {o.message}", EventType.WARNING)
            elif o.status is Status.VIOLATION:
                if self._new(key, str(o.rule_set), o.rule, "violation"):
                    self._emit(obj, "PolicyViolation", f"{who}: {o.message}",
                               EventType.WARNING, limited=True)
            elif o.status is Status.WOULD_APPLY:
                digest = _digest(result.audit_patch)
                if self._new(key, str(o.rule_set), o.rule, digest):
                    paths = ", ".join(op["path"] for op in result.audit_patch) or o.message
                    self._emit(obj, "WouldApply", f"{who} (Audit) would change {paths}",
                               EventType.NORMAL)
            else:
                self._new(key, str(o.rule_set), o.rule, "")
        for conflict in result.conflicts:
            if self._new(key, "conflict", conflict.path, conflict.describe()):
                self._emit(obj, "RuleConflict", conflict.describe(), EventType.WARNING)

    def _new(self, key: ObjectKey, rule_set: str, rule: str, state: str) -> bool:
        """Remember the state; True when it differs from the last one seen."""
        with self._lock:
            ident = (key, rule_set, rule)
            if self._last.get(ident, "") == state:
                return False
            if state:
                self._last[ident] = state
            else:
                self._last.pop(ident, None)
            return bool(state)

    def _emit(self, obj: Obj, reason: str, message: str, type_: EventType, *,
              limited: bool = False) -> None:
        if (type_ is EventType.NORMAL or limited) and not self._admitted():
            return
        self._queue(obj, reason, message, type_)

    def _admitted(self) -> bool:
        """Whether the token bucket lets one more event through (else it is dropped)."""
        with self._lock:
            if self._bucket.reserve() > 0:
                self._bucket.refund()
                self.dropped += 1
                return False
            return True

    def _queue(self, obj: Obj, reason: str, message: str, type_: EventType) -> None:
        with self._ready:
            if len(self._warnings) + len(self._normal) >= BACKLOG:
                log.warning("event backlog full, dropped: %s %s", reason, message)
                return
            item = (obj, reason, message, type_, self._clock.wall())
            if type_ is EventType.NORMAL:
                self._normal.append((self._clock.now(), item))
            else:
                self._warnings.append(item)
            self._ready.notify()

    def _next(self) -> Item | None:
        """The next event to post: a Warning at once, a Normal one when the work queue
        is empty (or it has waited `max_delay`); None when stopped with nothing left."""
        with self._ready:
            while True:
                if self._warnings:
                    return self._warnings.popleft()
                if self._normal:
                    queued_at, item = self._normal[0]
                    waited = self._clock.now() - queued_at
                    if self._stopping or waited >= self._max_delay or not self._busy():
                        self._normal.popleft()
                        return item
                    self._clock.wait(self._ready, min(POLL, self._max_delay - waited))
                elif self._stopping:
                    return None
                else:
                    self._ready.wait()

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            obj, reason, message, type_, when = item
            try:
                self._cluster.create_event(obj, reason=reason, message=message, type=type_,
                                           instance=self._instance, when=when)
                self._failing.reset()
            except ApiError as error:
                log.warning("could not record event %s on %s: %s", reason, key_of(obj), error)
                if error.retryable:  # the server is failing: do not drain the backlog into it
                    self._wait(self._failing.next())

    def _wait(self, seconds: float) -> None:
        deadline = self._clock.now() + seconds
        with self._ready:
            while not self._stopping and self._clock.now() < deadline:
                self._clock.wait(self._ready, deadline - self._clock.now())


def _digest(patch: Any) -> str:
    return hashlib.sha256(repr(patch).encode()).hexdigest()[:16] if patch else ""
