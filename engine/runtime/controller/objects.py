"""The object controller: worker threads that hand queue keys to the reconciler.

The manager builds one `ObjectController` around the work queue and the `Reconciler`
and calls `start()` when it becomes the leader (every replica watches, only the leader
writes). Each worker takes a key, reconciles it and acts on the `Decision` — the queue
is the only thing a decision touches, see `followup`:

* DONE: the key's backoff is forgotten;
* REQUEUE: the key comes back after its per-key exponential backoff (and never before
  a Retry-After the reconciler put on it with `queue.hold`);
* RETRY_LATER: the key comes back after `refused_retry` seconds (the server refused).

`stop()` shuts the queue down; workers finish the key in hand and exit. Elapsed time is
read from the injected clock.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import StrEnum

from engine.objects import ObjectKey

from ..clock import Clock
from ..metrics import EngineMetrics, ReconcileResult
from .queue import WorkQueue
from .reconciler import Decision, Reconciler

log = logging.getLogger(__name__)


class Followup(StrEnum):
    FORGET = "forget"
    RATE_LIMITED = "rate-limited"
    AFTER_REFUSED = "after-refused"


@dataclass(frozen=True)
class Action:
    """What the queue does with a key after a decision, and how it is counted."""

    followup: Followup
    result: ReconcileResult


FOLLOWUPS = {
    Decision.DONE: Action(Followup.FORGET, ReconcileResult.SUCCESS),
    Decision.REQUEUE: Action(Followup.RATE_LIMITED, ReconcileResult.REQUEUE),
    Decision.RETRY_LATER: Action(Followup.AFTER_REFUSED, ReconcileResult.ERROR),
}


def followup(decision: Decision) -> Action:
    return FOLLOWUPS[decision]


class ObjectController:
    def __init__(self, *, queue: WorkQueue[ObjectKey], reconciler: Reconciler,
                 metrics: EngineMetrics, clock: Clock, refused_retry: float) -> None:
        self.queue = queue
        self.reconciler = reconciler
        self._metrics = metrics
        self._clock = clock
        self._refused_retry = refused_retry
        self._workers: list[threading.Thread] = []

    def start(self, workers: int) -> None:
        for number in range(workers):
            thread = threading.Thread(target=self._work, name=f"worker-{number}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self, *, timeout: float = 30.0) -> None:
        """Shut the queue down and wait for the workers to finish the keys in hand."""
        self.queue.shutdown()
        for thread in self._workers:
            thread.join(timeout=timeout)

    def _work(self) -> None:
        while True:
            key = self.queue.get(timeout=0.5)
            if key is None:
                if self.queue.shutting_down:
                    return
                continue
            self.process(key)

    def process(self, key: ObjectKey) -> Decision:
        """Reconcile one key taken from the queue and act on the decision."""
        started = self._clock.now()
        decision = Decision.REQUEUE
        try:
            decision = self.reconciler.reconcile(key)
        except Exception:  # a bug in one reconcile must not kill the worker
            log.exception("reconciling %s failed", key)
        finally:
            action = followup(decision)
            # done, and its backoff reset when it succeeded: one turn of the queue's lock
            self.queue.done(key, forget=action.followup is Followup.FORGET)
        if action.followup is Followup.RATE_LIMITED:
            self.queue.add_rate_limited(key)
        elif action.followup is not Followup.FORGET:
            self.queue.add_after(key, self._refused_retry)
        self._metrics.reconciled(action.result, self._clock.now() - started)
        return decision
